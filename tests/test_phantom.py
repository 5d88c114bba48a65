"""MCX benchmark phantoms: grids, labels, sphere voxelisation, and agreement with phantoms/*.json."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from photonqd import phantom
from photonqd.phantom import MCX_BENCHMARKS

DEFINITIONS = json.loads((Path(__file__).parents[1] / "phantoms" / "mcx_benchmarks.json").read_text())


def count_sphere_voxels(n: int, centre: float, radius: float) -> int:
    """Voxels of 1 mm whose centre lies within ``radius`` of (centre, centre, centre), counted
    exactly in integers (coordinates doubled so the centres i + 0.5 become odd integers)."""
    c2, r2 = round(2 * centre), round(2 * radius) ** 2
    count = 0
    for i in range(n):
        for j in range(n):
            rest = r2 - (2 * i + 1 - c2) ** 2 - (2 * j + 1 - c2) ** 2
            count += sum(1 for k in range(n) if (2 * k + 1 - c2) ** 2 <= rest)
    return count


@pytest.mark.parametrize("name", list(MCX_BENCHMARKS))
def test_generators_match_the_recorded_definitions(name):
    spec = DEFINITIONS["phantoms"][name]
    p = MCX_BENCHMARKS[name]()
    m, s = p.medium, p.source
    assert p.name == name
    assert m.shape == tuple(spec["size"]) and m.labels.dtype == np.uint8
    assert m.voxel_size == (spec["voxel_size"],) * 3
    np.testing.assert_allclose(m.optics[0], spec["media"])
    assert m.n_ambient == spec["n_ambient"]
    assert set(m.boundary.values()) == {"escape"}
    # "no reflection" means an ambient index equal to every tissue index
    matched = np.all(m.optics[0, 1:, 3] == m.n_ambient)
    assert matched == (spec["boundary"] == "no_reflection")
    np.testing.assert_allclose(s.position, spec["source"]["position"])
    np.testing.assert_allclose(s.direction, spec["source"]["direction"])
    assert s.kind == {"pencil": "pencil", "planar": "rectangle"}[spec["source"]["type"]]
    assert s.specular is False
    if s.kind == "rectangle":
        np.testing.assert_allclose(s.edge1, spec["source"]["edge1"])
        np.testing.assert_allclose(s.edge2, spec["source"]["edge2"])
    assert p.time_gate_ns == spec["time_gate_ns"]
    assert p.reference_absorbed == spec.get("reference", {}).get("absorbed_fraction")
    labels = np.unique(m.labels)
    assert list(labels) == [1] + [sph["label"] for sph in spec["spheres"]]
    for sph in spec["spheres"]:
        assert np.count_nonzero(m.labels == sph["label"]) == sph["voxels"]


@pytest.mark.parametrize("name, radius", [("cubesph60b", 15), ("spherebox", 10)])
def test_sphere_follows_mcx_voxel_centre_rule(name, radius):
    labels = MCX_BENCHMARKS[name]().medium.labels
    inside = labels == 2
    assert np.count_nonzero(inside) == count_sphere_voxels(60, 30.0, radius)
    # voxelised volume within 2 % of the sphere's (the staircase adds a little at 1 mm)
    assert np.count_nonzero(inside) == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.02)
    # centred on a voxel corner: symmetric under every axis flip
    for axis in range(3):
        assert np.array_equal(inside, np.flip(inside, axis))


def test_sphere_boundary_is_inclusive():
    # centre on voxel (0, 0, 0)'s centre, radius 1: its face neighbours' centres lie exactly on it
    mask = phantom.sphere_mask((3, 3, 3), 1.0, (0.5, 0.5, 0.5), 1.0)
    assert mask[0, 0, 0] and mask[1, 0, 0] and mask[0, 1, 0] and mask[0, 0, 1]
    assert np.count_nonzero(mask) == 4


def test_finer_voxels_keep_the_geometry_and_approach_the_true_volume():
    p = phantom.cubesph60b(voxel_size=0.5)
    assert p.medium.shape == (120, 120, 120)
    assert p.medium.voxel_size == (0.5, 0.5, 0.5)
    volume = np.count_nonzero(p.medium.labels == 2) * 0.5**3
    coarse = np.count_nonzero(phantom.cubesph60b().medium.labels == 2)
    exact = 4 / 3 * math.pi * 15**3
    assert abs(volume - exact) < abs(coarse - exact)
    assert tuple(p.source.position) == (29.0, 29.0, 0.0)


def test_parameters_override_the_mcx_defaults():
    p = phantom.cube60(size=20.0, voxel_size=2.0, tissue=(0.01, 2.0, 0.9, 1.4),
                       source_position=(10.0, 10.0, 0.0), time_gate_ns=1.0)
    assert p.medium.shape == (10, 10, 10)
    np.testing.assert_allclose(p.medium.optics[0, 1], (0.01, 2.0, 0.9, 1.4))
    assert p.medium.n_ambient == 1.4
    assert p.time_gate_ns == 1.0
    box = phantom.cube60b(size=(30.0, 40.0, 50.0))
    assert box.medium.shape == (30, 40, 50)


def test_size_must_be_a_whole_number_of_voxels():
    with pytest.raises(ValueError, match="whole number of voxels"):
        phantom.cube60(size=60.0, voxel_size=0.7)
    with pytest.raises(ValueError, match="must be > 0"):
        phantom.cube60(voxel_size=0.0)


def test_simulation_carries_the_gate_and_options():
    sim = phantom.spherebox().simulation(123, seed=7, fluence=False)
    assert (sim.photons, sim.seed, sim.time_gate_ns, sim.fluence) == (123, 7, 5.0, False)
    sim.check()


def test_cube60_absorbs_mcx_reference_fraction(backend):
    # few photons: a smoke test of the whole chain, within 4 upper-bound standard errors
    p = phantom.cube60()
    photons = 300 if backend == "numpy" else 20_000
    absorbed = p.simulation(photons, seed=1, fluence=False).run(backend).absorbed_fraction
    error = math.sqrt(p.reference_absorbed * (1 - p.reference_absorbed) / photons)
    assert abs(absorbed - p.reference_absorbed) < 4 * error
