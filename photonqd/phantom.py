"""Phantoms: voxel volumes built from shapes, and MCX's standard benchmark problems.

The benchmark definitions follow MCX's built-in benchmarks (fangq/mcx, src/mcx_bench.c; Fang & Boas
2009, Opt. Express 17:20178); ``phantoms/mcx_benchmarks.json`` records the same numbers with their
citations, and tests/test_phantom.py checks that the two agree.

All lengths are in mm in the grid frame (origin at the volume's corner, +z into the tissue). MCX
states its geometry in voxels of 1 mm; here the geometry is physical and ``voxel_size`` only sets
the resolution, so ``cubesph60b(voxel_size=0.5)`` is the same problem on a 120³ grid.

Sphere voxelisation (MCX's rule, src/mcx_shapes.c ``mcx_raster_sphere``): a voxel belongs to the
sphere when its centre lies within the radius, boundary included (|centre - O| <= R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .medium import Medium
from .simulation import Simulation
from .sources import PencilBeam, RectangleSource, Source

#: MCX's benchmark tissue (label 1 of every cube60 case): (mu_a [1/mm], mu_s [1/mm], g, n).
MCX_TISSUE = (0.005, 1.0, 0.01, 1.37)


@dataclass(frozen=True)
class Phantom:
    """A benchmark problem: a medium, a source and a time gate, ready to become a Simulation.

    name:               the benchmark's name (MCX's, for the MCX cases).
    medium, source:     what photonqd transports.
    time_gate_ns:       photons still propagating at this time stop (MCX's T1).
    reference_absorbed: published absorbed fraction (MCX semantics), or None.
    """

    name: str
    medium: Medium
    source: Source
    time_gate_ns: float
    reference_absorbed: float | None = None

    def simulation(self, photons: int, seed: int = 1, **options) -> Simulation:
        """A Simulation of this phantom; ``options`` go to Simulation (fluence, batch_photons, ...)."""
        return Simulation(self.medium, self.source, photons=photons, seed=seed,
                          time_gate_ns=self.time_gate_ns, **options)


def grid_shape(size, voxel_size) -> tuple[int, int, int]:
    """Voxels along x, y, z for a box of ``size`` mm (one number: a cube) cut into ``voxel_size``."""
    size = np.broadcast_to(np.asarray(size, dtype=np.float64), (3,))
    voxel = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    if np.any(voxel <= 0) or np.any(size <= 0):
        raise ValueError(f"size {tuple(size)} mm and voxel_size {tuple(voxel)} mm must be > 0")
    counts = size / voxel
    if not np.allclose(counts, np.round(counts), rtol=0, atol=1e-9):
        raise ValueError(f"size {tuple(size)} mm is not a whole number of voxels of {tuple(voxel)} mm")
    return tuple(int(c) for c in np.round(counts))


def voxel_centres(shape, voxel_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable x, y, z coordinates (mm) of the voxel centres."""
    voxel = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    return tuple((np.arange(n) + 0.5) * d for n, d in zip(shape, voxel))


def sphere_mask(shape, voxel_size, centre, radius: float) -> np.ndarray:
    """Boolean (nx, ny, nz) mask of the voxels whose centre lies within ``radius`` mm of ``centre``."""
    x, y, z = voxel_centres(shape, voxel_size)
    cx, cy, cz = np.asarray(centre, dtype=np.float64)
    r2 = ((x - cx) ** 2)[:, None, None] + ((y - cy) ** 2)[None, :, None] + ((z - cz) ** 2)[None, None, :]
    return r2 <= radius * radius


def _optics(n_ambient: float, *labels) -> np.ndarray:
    """Optics table: the ambient row 0, then one (mu_a, mu_s, g, n) row per label."""
    return np.array([(0.0, 0.0, 0.0, n_ambient), *labels], dtype=np.float64)


def _pencil(position) -> PencilBeam:
    # MCX's benchmarks launch without specular loss (DoSpecular 0)
    return PencilBeam(position=position, direction=(0.0, 0.0, 1.0), specular=False)


def _cube(size, voxel_size, tissue, fresnel: bool) -> Medium:
    """A cube of label 1; without Fresnel the ambient index equals the tissue's (MCX DoMismatch 0)."""
    labels = np.ones(grid_shape(size, voxel_size), dtype=np.uint8)
    n_ambient = 1.0 if fresnel else tissue[3]
    return Medium(labels, voxel_size, _optics(n_ambient, tissue), n_ambient=n_ambient, boundary="escape")


def cube60(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, source_position=(29.0, 29.0, 0.0),
           time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60``: a homogeneous 60 mm cube, pencil beam at (29, 29, 0), no reflection at the
    surface. MCX's absorbed fraction: 17.69 %."""
    return Phantom("cube60", _cube(size, voxel_size, tissue, fresnel=False), _pencil(source_position),
                   time_gate_ns, reference_absorbed=0.1769)


def cube60b(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, source_position=(29.0, 29.0, 0.0),
            time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60b``: ``cube60`` with Fresnel reflection against air (n = 1) on all six faces."""
    return Phantom("cube60b", _cube(size, voxel_size, tissue, fresnel=True), _pencil(source_position),
                   time_gate_ns)


def cube60planar(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, corner=(10.0, 10.0, -10.0),
                 edge1=(40.0, 0.0, 0.0), edge2=(0.0, 40.0, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60planar``: ``cube60b`` lit by a uniform 40 x 40 mm planar beam launched in air
    10 mm above the top face."""
    source = RectangleSource(position=corner, direction=(0.0, 0.0, 1.0), edge1=edge1, edge2=edge2,
                             specular=False)
    return Phantom("cube60planar", _cube(size, voxel_size, tissue, fresnel=True), source, time_gate_ns)


def cubesph60b(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, sphere=(0.002, 5.0, 0.9, 1.0),
               sphere_centre=(30.0, 30.0, 30.0), sphere_radius=15.0,
               source_position=(29.0, 29.0, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``cubesph60b``: ``cube60b`` with a voxelised sphere of label 2 whose index (1.0) differs
    from the cube's, so photons refract at its staircase faces (results are voxel-specific)."""
    shape = grid_shape(size, voxel_size)
    labels = np.ones(shape, dtype=np.uint8)
    labels[sphere_mask(shape, voxel_size, sphere_centre, sphere_radius)] = 2
    medium = Medium(labels, voxel_size, _optics(1.0, tissue, sphere), n_ambient=1.0, boundary="escape")
    return Phantom("cubesph60b", medium, _pencil(source_position), time_gate_ns)


def spherebox(size=60.0, voxel_size=1.0, tissue=(0.002, 1.0, 0.01, 1.37),
              sphere=(0.05, 5.0, 0.9, 1.37), sphere_centre=(30.0, 30.0, 30.0), sphere_radius=10.0,
              source_position=(29.5, 29.5, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``spherebox``: an index-matched absorbing sphere (label 2) in a 60 mm cube, no reflection.
    (MCX records 50 time gates of 0.1 ns; only the 5 ns end of the window matters here.)"""
    shape = grid_shape(size, voxel_size)
    labels = np.ones(shape, dtype=np.uint8)
    labels[sphere_mask(shape, voxel_size, sphere_centre, sphere_radius)] = 2
    medium = Medium(labels, voxel_size, _optics(tissue[3], tissue, sphere), n_ambient=tissue[3],
                    boundary="escape")
    return Phantom("spherebox", medium, _pencil(source_position), time_gate_ns)


#: MCX benchmark generators by name.
MCX_BENCHMARKS = {f.__name__: f for f in (cube60, cube60b, cube60planar, cubesph60b, spherebox)}


#: Default skin layers over muscle (top to bottom): tissue preset and thickness in mm. Epidermis
#: 0.1 mm, dermis 1.4 mm and subcutaneous fat 2 mm are typical of human skin on the trunk
#: (S. L. Jacques, Phys. Med. Biol. 58, R37 (2013) section 5; epidermis 0.05-0.15 mm,
#: dermis 1-2 mm); muscle fills the rest.
SKIN_LAYERS = (("epidermis", 0.1), ("dermis", 1.4), ("subcutaneous_fat", 2.0))


def skin_tumour(depth_mm: float = 3.0, radius_mm: float = 1.0, size_mm=(20.0, 20.0, 15.0),
                voxel_size=(0.25, 0.25, 0.1), layers=SKIN_LAYERS, quantum_dot=None,
                concentration_uM: float = 1.0, n_ambient: float = 1.0):
    """Layered skin over skeletal muscle with a spherical tumour (``tumour_generic``) whose centre
    lies ``depth_mm`` below the surface, at the centre of the field; with ``quantum_dot`` the
    tumour holds it at ``concentration_uM``. Returns a photonqd.fluorescence.FluorescenceScene."""
    from .fluorescence import FluorescenceScene
    from .optics import tissue_preset

    if not radius_mm > 0 or not depth_mm >= radius_mm:
        raise ValueError(f"depth_mm, radius_mm: need radius > 0 and depth >= radius, got "
                         f"{depth_mm}, {radius_mm}")
    shape = grid_shape(size_mm, voxel_size)
    if depth_mm + radius_mm > size_mm[2]:
        raise ValueError(f"depth_mm: the tumour must fit inside the {size_mm[2]} mm deep volume")
    _, _, z = voxel_centres(shape, voxel_size)
    names = [name for name, _ in layers] + ["skeletal_muscle", "tumour_generic"]
    labels = np.full(shape, len(layers) + 1, dtype=np.uint8)  # muscle below the layers
    top = 0.0
    for i, (_, thickness) in enumerate(layers):
        labels[:, :, (z >= top) & (z < top + thickness)] = i + 1
        top += thickness
    centre = (size_mm[0] / 2, size_mm[1] / 2, depth_mm)
    tumour = sphere_mask(shape, voxel_size, centre, radius_mm)
    labels[tumour] = len(names)
    scene = FluorescenceScene(labels, voxel_size, {i + 1: tissue_preset(n) for i, n in enumerate(names)},
                              n_ambient=n_ambient)
    if quantum_dot is not None:
        scene.add_fluorophore(quantum_dot, np.where(tumour, concentration_uM, 0.0))
    return scene
