"""MCX's standard benchmark phantoms, built from their one definition: phantoms/mcx_benchmarks.json.

The JSON (installed as package data, photonqd.phantom.data) records each benchmark of MCX's
src/mcx_bench.c (Fang & Boas 2009, Opt. Express 17:20178) with its citations, and photonqd's
tissue-like speed case ``tissue60`` (not one of MCX's): box size and voxel size in mm, the media
table (row 0 = ambient), layers, spheres and cylinders painted in order, the boundary semantics,
the source, the time gate and, where published, the absorbed fraction. Nothing here repeats those
numbers: ``benchmark(name)`` reads them.

Semantics (the JSON's "semantics" block): "no_reflection" (MCX DoMismatch 0) is an ambient index
equal to the tissue's; "fresnel" is an ambient index of 1; sources launch without specular loss
(DoSpecular 0). All lengths are in mm in the grid frame, so ``benchmark("cubesph60b",
voxel_size=0.5)`` is the same problem on a 120³ grid.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from dataclasses import dataclass

import numpy as np

from ..optics import FixedOptics
from ..scene import Scene
from ..simulation import Simulation
from ..sources import DiskSource, PencilBeam, RectangleSource, Source
from .shapes import cylinder_mask, grid_shape, sphere_mask, voxel_centres

AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True, eq=False)
class Benchmark:
    """A benchmark problem: a scene, a source and a time gate, ready to become a Simulation.

    name:               the benchmark's name (MCX's, for the MCX cases).
    scene:              the phantom (FixedOptics tissues).
    source:             the light source.
    time_gate_ns:       photons still propagating at this time stop (MCX's T1).
    reference_absorbed: published absorbed fraction (MCX semantics), or None.
    """

    name: str
    scene: Scene
    source: Source
    time_gate_ns: float
    reference_absorbed: float | None = None

    @functools.cached_property
    def medium(self):
        """The engine's medium of the scene (its optics do not depend on wavelength)."""
        return self.scene.medium()[0]

    def simulation(self, photons: int, seed: int = 1, **options) -> Simulation:
        """A Simulation of this benchmark; ``options`` go to Simulation (fluence, batch_photons, ...)."""
        return Simulation(self.medium, self.source, photons=photons, seed=seed,
                          time_gate_ns=self.time_gate_ns, **options)


@functools.cache
def definitions() -> dict:
    """The parsed phantoms/mcx_benchmarks.json: {"phantoms": {name: spec}, "citations": ..., ...}."""
    text = importlib.resources.files("photonqd.phantom.data").joinpath("mcx_benchmarks.json").read_text()
    return json.loads(text)


def names() -> list[str]:
    """Every benchmark's name, in the JSON's order (MCX's cases, then tissue60)."""
    return list(definitions()["phantoms"])


def benchmark(name: str, size=None, voxel_size=None, media=None, time_gate_ns=None) -> Benchmark:
    """The benchmark ``name`` as recorded, with optional overrides: ``size`` (mm, one number for a
    cube), ``voxel_size`` (mm), ``media`` (rows (mu_a [1/mm], mu_s [1/mm], g, n) for labels 1..N;
    a "no_reflection" benchmark keeps its ambient index equal to the first row's n) and
    ``time_gate_ns``. The shapes stay where they are in mm."""
    specs = definitions()["phantoms"]
    if name not in specs:
        raise ValueError(f"benchmark: unknown name {name!r}; known: {list(specs)}")
    spec = specs[name]
    size = spec["size"] if size is None else size
    voxel_size = spec["voxel_size"] if voxel_size is None else voxel_size
    rows = [tuple(r) for r in spec["media"][1:]] if media is None else [tuple(r) for r in media]
    if len(rows) != len(spec["media"]) - 1:
        raise ValueError(f"media: {name} needs {len(spec['media']) - 1} rows (mu_a, mu_s, g, n) for its labels, "
                         f"got {len(rows)}")
    citation = "; ".join(definitions()["citations"][key] for key in spec["cite"])
    tissues = {label: FixedOptics(*row, name=f"{name} label {label}", citation=citation)
               for label, row in enumerate(rows, start=1)}
    n_ambient = rows[0][3] if spec["boundary"] == "no_reflection" else spec["n_ambient"]
    shape = grid_shape(size, voxel_size)
    scene = Scene(_labels(spec, shape, voxel_size), voxel_size, tissues, n_ambient=n_ambient, boundary="escape")
    gate = spec["time_gate_ns"] if time_gate_ns is None else time_gate_ns
    return Benchmark(name, scene, _source(spec["source"]), gate,
                     spec.get("reference", {}).get("absorbed_fraction"))


def _labels(spec: dict, shape, voxel_size) -> np.ndarray:
    """Label 1 everywhere, then the layers, spheres and cylinders of ``spec`` painted in order."""
    labels = np.ones(shape, dtype=np.uint8)
    _, _, z = voxel_centres(shape, voxel_size)
    for layer in spec.get("layers", []):
        top, bottom = layer["z"]
        labels[:, :, (z >= top) & (z < bottom)] = layer["label"]
    for sphere in spec.get("spheres", []):
        labels[sphere_mask(shape, voxel_size, sphere["centre"], sphere["radius"])] = sphere["label"]
    for cylinder in spec.get("cylinders", []):
        mask = cylinder_mask(shape, voxel_size, AXES[cylinder["axis"]], cylinder["centre"], cylinder["radius"])
        labels[mask] = cylinder["label"]
    return labels


def _source(spec: dict) -> Source:
    """The benchmark's source; MCX's benchmarks launch without specular loss (DoSpecular 0)."""
    common = dict(position=tuple(spec["position"]), direction=tuple(spec["direction"]), specular=False)
    if spec["type"] == "pencil":
        return PencilBeam(**common)
    if spec["type"] == "planar":
        return RectangleSource(edge1=tuple(spec["edge1"]), edge2=tuple(spec["edge2"]), **common)
    if spec["type"] == "disk":
        return DiskSource(radius=spec["radius"], **common)
    raise ValueError(f"source.type: no photonqd source for {spec['type']!r}")

