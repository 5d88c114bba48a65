"""Phantoms: MCX benchmarks (built from phantoms/mcx_benchmarks.json: grids, labels, voxelisation
against MCX's own counts and rules) and the fluorescence scenes (layers, target shapes and depths,
input checks, a tiny end-to-end run each)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

import photonqd as pq
from photonqd import phantom
from photonqd.camera import Camera, EmissionFilter, Sensor
from photonqd.fluorescence import Excitation
from photonqd.optics import FixedOptics, Intralipid, qd_preset
from photonqd.phantom import MCX_BENCHMARKS, benchmark
from photonqd.scene import Scene

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


def test_every_benchmark_is_recorded_and_read_from_the_installed_definition():
    assert list(phantom.BENCHMARKS) == list(DEFINITIONS["phantoms"])
    assert set(MCX_BENCHMARKS) == set(phantom.BENCHMARKS) - {"tissue60"}
    # the package reads the repository's JSON (installed as package data), not a copy of it
    assert phantom.definitions() == DEFINITIONS


@pytest.mark.parametrize("name", list(phantom.BENCHMARKS))
def test_generators_match_the_recorded_definitions(name):
    spec = DEFINITIONS["phantoms"][name]
    p = phantom.BENCHMARKS[name]()
    m, s = p.medium, p.source
    assert p.name == name and isinstance(p.scene, Scene)
    assert all(isinstance(t, FixedOptics) for t in p.scene.tissues.values())
    assert m.shape == tuple(round(v / spec["voxel_size"]) for v in spec["size"]) and m.labels.dtype == np.uint8
    assert m.voxel_size == (spec["voxel_size"],) * 3
    np.testing.assert_allclose(m.optics[0], spec["media"], rtol=1e-7)  # float32 optics table
    assert m.n_ambient == pytest.approx(spec["n_ambient"], rel=1e-7)
    assert set(m.boundary.values()) == {"escape"}
    # "no reflection" means an ambient index equal to every tissue index
    matched = np.all(m.optics[0, 1:, 3] == m.n_ambient)
    assert matched == (spec["boundary"] == "no_reflection")
    np.testing.assert_allclose(s.position, spec["source"]["position"])
    np.testing.assert_allclose(s.direction, spec["source"]["direction"])
    assert s.kind == {"pencil": "pencil", "planar": "rectangle", "disk": "disk"}[spec["source"]["type"]]
    assert s.specular is False
    if s.kind == "rectangle":
        np.testing.assert_allclose(s.edge1, spec["source"]["edge1"])
        np.testing.assert_allclose(s.edge2, spec["source"]["edge2"])
    if s.kind == "disk":
        assert s.radius == pytest.approx(spec["source"]["radius"])
    assert p.time_gate_ns == spec["time_gate_ns"]
    assert p.reference_absorbed == spec.get("reference", {}).get("absorbed_fraction")
    shapes = spec["spheres"] + spec.get("cylinders", [])
    layers = spec.get("layers", [{"label": 1}])
    assert set(np.unique(m.labels)) == {x["label"] for x in layers + shapes}
    for shape in shapes:
        assert np.count_nonzero(m.labels == shape["label"]) == shape["voxels"]
    for layer in spec.get("layers", []):
        z = (np.arange(m.shape[2]) + 0.5) * m.voxel_size[2]
        inside = (z >= layer["z"][0]) & (z < layer["z"][1])
        column = m.labels[0, 0]  # the corner column misses the vessel
        assert np.all(column[inside] == layer["label"])
        first, last = layer["mcx_zlayer"]  # MCX numbers voxels from 1, ends included
        assert np.flatnonzero(inside)[[0, -1]].tolist() == [first - 1, last - 1]


def test_sphshells_shells_follow_the_voxel_centre_rule():
    labels = benchmark("sphshells").medium.labels
    r25, r23, r10 = (count_sphere_voxels(60, 30.0, r) for r in (25, 23, 10))
    assert np.count_nonzero(labels == 2) == r25 - r23
    assert np.count_nonzero(labels == 3) == r23 - r10
    assert np.count_nonzero(labels == 4) == r10


def test_skinvessel_vessel_is_mcx_cylinder():
    p = benchmark("skinvessel")
    vessel = p.medium.labels == 2
    # MCX's rule in voxel units: (j + 0.5 - 100.5)^2 + (k + 0.5 - 100.5)^2 <= 20^2, every x
    j, k = np.meshgrid(np.arange(200), np.arange(200), indexing="ij")
    expected = (j - 100) ** 2 + (k - 100) ** 2 <= 400
    assert all(np.array_equal(vessel[i], expected) for i in (0, 99, 199))
    assert np.count_nonzero(expected) == 1257  # Gauss circle count for r = 20
    # the label-1 row is MCX's g = 1 medium written without scattering; the source lies in the grid
    assert tuple(p.medium.optics[0, 1, :2]) == (np.float32(3.564e-05), 0.0)
    p.simulation(10, fluence=False).check()


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
    p = benchmark("cubesph60b", voxel_size=0.5)
    assert p.medium.shape == (120, 120, 120)
    assert p.medium.voxel_size == (0.5, 0.5, 0.5)
    volume = np.count_nonzero(p.medium.labels == 2) * 0.5**3
    coarse = np.count_nonzero(benchmark("cubesph60b").medium.labels == 2)
    exact = 4 / 3 * math.pi * 15**3
    assert abs(volume - exact) < abs(coarse - exact)
    assert tuple(p.source.position) == (29.0, 29.0, 0.0)


def test_parameters_override_the_recorded_values():
    p = benchmark("cube60", size=20.0, voxel_size=2.0, media=[(0.01, 2.0, 0.9, 1.4)], time_gate_ns=1.0)
    assert p.medium.shape == (10, 10, 10)
    np.testing.assert_allclose(p.medium.optics[0, 1], (0.01, 2.0, 0.9, 1.4), rtol=1e-7)
    assert p.medium.n_ambient == p.medium.optics[0, 1, 3]   # "no reflection": the tissue's index
    assert benchmark("cube60b", media=[(0.01, 2.0, 0.9, 1.4)]).medium.n_ambient == 1.0   # Fresnel
    assert p.time_gate_ns == 1.0
    box = benchmark("cube60b", size=(30.0, 40.0, 50.0))
    assert box.medium.shape == (30, 40, 50)
    with pytest.raises(ValueError, match="media: cubesph60b needs 2 rows"):
        benchmark("cubesph60b", media=[(0.01, 2.0, 0.9, 1.4)])
    with pytest.raises(ValueError, match="mus: must be >= 0"):
        benchmark("cube60", media=[(0.01, -2.0, 0.9, 1.4)])
    with pytest.raises(ValueError, match="benchmark: unknown name 'cube61'"):
        benchmark("cube61")


def test_size_must_be_a_whole_number_of_voxels():
    with pytest.raises(ValueError, match="whole number of voxels"):
        benchmark("cube60", size=60.0, voxel_size=0.7)
    with pytest.raises(ValueError, match="must be > 0"):
        benchmark("cube60", voxel_size=0.0)


def test_simulation_carries_the_gate_and_options():
    sim = benchmark("spherebox").simulation(123, seed=7, fluence=False)
    assert (sim.photons, sim.seed, sim.time_gate_ns, sim.fluence) == (123, 7, 5.0, False)
    sim.check()


def test_cube60_absorbs_mcx_reference_fraction(backend, budget):
    # few photons: a smoke test of the whole chain, within 4 upper-bound standard errors
    p = benchmark("cube60")
    photons = budget(kernel=20_000, numpy=300)
    absorbed = p.simulation(photons, seed=1, fluence=False).run(backend).absorbed_fraction
    error = math.sqrt(p.reference_absorbed * (1 - p.reference_absorbed) / photons)
    assert abs(absorbed - p.reference_absorbed) < 4 * error


# --- shape helpers ----------------------------------------------------------------------------

def test_cylinder_mask_cross_section_and_axis():
    mask = phantom.cylinder_mask((3, 80, 80), 0.05, 0, (2.0, 2.0), 1.0)
    assert mask.shape == (3, 80, 80) and np.array_equal(mask[0], mask[2])
    # pi r^2 within the voxelisation error of a 20-voxel radius
    assert np.count_nonzero(mask[0]) * 0.05**2 == pytest.approx(math.pi, rel=0.01)
    along_z = phantom.cylinder_mask((80, 80, 3), 0.05, 2, (2.0, 2.0), 1.0)
    assert np.array_equal(along_z[:, :, 1], mask[0])
    with pytest.raises(ValueError, match="axis"):
        phantom.cylinder_mask((3, 3, 3), 1.0, 3, (1.0, 1.0), 1.0)


def test_ellipsoid_mask_volume_and_extent():
    mask = phantom.ellipsoid_mask((80, 40, 40), 0.1, (4.0, 2.0, 2.0), (3.0, 1.5, 1.0))
    assert np.count_nonzero(mask) * 0.1**3 == pytest.approx(4 / 3 * math.pi * 3.0 * 1.5 * 1.0, rel=0.02)
    i, j, k = (np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
    assert (i[-1] - i[0] + 1, j[-1] - j[0] + 1, k[-1] - k[0] + 1) == (60, 30, 20)
    # a sphere as an ellipsoid with equal axes
    assert np.array_equal(phantom.ellipsoid_mask((60,) * 3, 1.0, (30,) * 3, (15,) * 3),
                          phantom.sphere_mask((60,) * 3, 1.0, (30,) * 3, 15))


def test_layer_labels_take_the_layer_holding_the_voxel_centre():
    labels = phantom.layer_labels((2, 2, 10), 0.1, (0.3, 0.3), below=7)
    assert labels[0, 0].tolist() == [1, 1, 1, 2, 2, 2, 7, 7, 7, 7]


# --- fluorescence scenes ----------------------------------------------------------------------

QD = qd_preset("pbs_cds_1300")
SCENES = {
    "skin_tumour": phantom.skin_tumour,
    "intralipid_capillary": phantom.intralipid_capillary,
    "mouse_head": phantom.mouse_head,
    "lymph_node": phantom.lymph_node,
}


@pytest.mark.parametrize("name", list(SCENES))
def test_scene_target_is_highest_label_mask_and_qd_region(name):
    scene = SCENES[name](quantum_dot=QD, concentration_uM=2.5)
    assert isinstance(scene, Scene)
    top = max(scene.tissues)
    assert np.array_equal(scene.target, scene.labels == top)
    assert set(np.unique(scene.labels)) == set(scene.tissues)
    np.testing.assert_array_equal(scene.fluorophores[0].concentration_uM, np.where(scene.target, 2.5, 0))
    extent = np.array(scene.labels.shape) * np.broadcast_to(scene.voxel_size, (3,))
    # targets are centred laterally: the default camera centre is the middle of the surface
    np.testing.assert_allclose(phantom.target_centre_mm(scene)[:2], extent[:2] / 2)
    assert not SCENES[name]().fluorophores  # no QD unless given


@pytest.mark.parametrize("name, depth", [("intralipid_capillary", 1.0), ("intralipid_capillary", 3.5),
                                         ("mouse_head", 1.3), ("mouse_head", 2.6),
                                         ("lymph_node", 4.2), ("lymph_node", 10.0)])
def test_target_centre_lies_at_the_requested_depth(name, depth):
    scene = SCENES[name](depth_mm=depth)
    dz = np.broadcast_to(scene.voxel_size, (3,))[2]
    assert phantom.target_centre_mm(scene)[2] == pytest.approx(depth, abs=dz / 2)


def test_a_tumour_shallower_than_its_radius_is_cut_off_by_the_surface():
    full = phantom.skin_tumour(depth_mm=1.0, radius_mm=0.5, size_mm=(4.0, 4.0, 3.0))
    cut = phantom.skin_tumour(depth_mm=0.25, radius_mm=0.5, size_mm=(4.0, 4.0, 3.0))
    z = (np.arange(cut.labels.shape[2]) + 0.5) * 0.1
    k = np.flatnonzero(cut.target.any(axis=(0, 1)))
    assert z[k[0]] == pytest.approx(0.05) and 0.6 < z[k[-1]] <= 0.75   # from the surface to about 0.75 mm
    # the part of the sphere above the surface is missing: a cap of height 0.25 mm of the 0.5 mm sphere
    cap = np.pi * 0.25**2 * (3 * 0.5 - 0.25) / 3
    volume = lambda s: np.count_nonzero(s.target) * 0.25 * 0.25 * 0.1
    assert volume(full) - volume(cut) == pytest.approx(cap, rel=0.1)
    assert np.all(cut.labels[cut.target] == max(cut.tissues))   # the tumour replaces the epidermis above it


def test_intralipid_capillary_geometry_and_media():
    scene = phantom.intralipid_capillary(depth_mm=2.0, inner_radius_mm=0.25, intralipid_percent=1.0)
    tank, contents = scene.tissues[1], scene.tissues[2]
    assert isinstance(tank, Intralipid) and tank.stock == "Intralipid 20%"
    # 1 % = 1 g soybean oil per 100 mL at 0.92 g/mL
    assert tank.lipid_volume_fraction == pytest.approx(0.01 / 0.92)
    assert (contents.name, contents.water, contents.blood, contents.fat) == ("water", 1.0, 0.0, 0.0)
    # the same circular cross-section in every x slice, area pi r^2 within voxelisation error
    assert all(np.array_equal(scene.target[0], scene.target[i]) for i in range(scene.labels.shape[0]))
    assert np.count_nonzero(scene.target[0]) * 0.05**2 == pytest.approx(math.pi * 0.25**2, rel=0.03)
    assert phantom.intralipid_capillary(intralipid_percent=2.0).tissues[1].dilution == pytest.approx(0.1)


def test_water_tissue_is_clear_water():
    props = phantom.water_tissue().properties([532.0, 1300.0])
    assert np.all(props.mus < 1e-5) and np.all(props.g == 0)
    np.testing.assert_allclose(props.mua, Intralipid(1e-9).mua([532.0, 1300.0]), rtol=1e-6)
    assert 1.31 < props.n[0] < 1.34 and 1.31 < props.n[1] < 1.34


def test_mouse_head_layers_and_target_in_brain():
    scene = phantom.mouse_head(depth_mm=1.5, radius_mm=0.5)
    assert [scene.tissues[i].name for i in (1, 2, 3, 4)] == ["dermis", "skull", "brain_grey_matter",
                                                              "tumour_generic"]
    column = scene.labels[0, 0]  # away from the target
    z = (np.arange(column.size) + 0.5) * 0.05
    assert np.all(column[z < 0.5] == 1) and np.all(column[(z > 0.5) & (z < 0.7)] == 2)
    assert np.all(column[z > 0.7] == 3)
    k = np.flatnonzero(scene.target.any(axis=(0, 1)))
    assert z[k[0]] > 0.7  # wholly in the brain
    volume = np.count_nonzero(scene.target) * 0.1 * 0.1 * 0.05
    assert volume == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.03)


def test_lymph_node_ellipsoid_in_fat_under_skin():
    scene = phantom.lymph_node()
    assert [scene.tissues[i].name for i in (1, 2, 3)] == ["epidermis", "dermis", "subcutaneous_fat"]
    a, b, c = phantom.LYMPH_NODE_SEMI_AXES_MM
    volume = np.count_nonzero(scene.target) * 0.25 * 0.25 * 0.1
    assert volume == pytest.approx(4 / 3 * math.pi * a * b * c, rel=0.02)
    z = (np.arange(scene.labels.shape[2]) + 0.5) * 0.1
    k = np.flatnonzero(scene.target.any(axis=(0, 1)))
    assert z[k[0]] > 1.5 and z[k[-1]] < 15.0
    assert set(np.unique(scene.labels[~scene.target])) == {1, 2, 3}


@pytest.mark.parametrize("call, match", [
    (lambda: phantom.skin_tumour(depth_mm=-0.1), r"depth_mm: must be in \[0, 14\] mm"),
    (lambda: phantom.intralipid_capillary(depth_mm=0.1), r"depth_mm: must be in \[0.25, 5.75\] mm"),
    (lambda: phantom.intralipid_capillary(intralipid_percent=25.0), r"intralipid_percent: must be in .*20"),
    (lambda: phantom.intralipid_capillary(intralipid_percent=0.0), "intralipid_percent"),
    (lambda: phantom.intralipid_capillary(stock="Intralipid 5%"), "stock"),
    (lambda: phantom.intralipid_capillary(inner_radius_mm=-1.0), "inner_radius_mm"),
    (lambda: phantom.intralipid_capillary(inner_radius_mm=0.01), "voxel_size: too coarse"),
    (lambda: phantom.mouse_head(depth_mm=0.9), r"depth_mm: must be in \[1.2, 4.5\] mm"),
    (lambda: phantom.mouse_head(depth_mm=float("nan")), "depth_mm"),
    (lambda: phantom.mouse_head(radius_mm=0.0), "radius_mm"),
    (lambda: phantom.mouse_head(radius_mm=2.5), "size_mm: a volume 5 mm deep cannot hold"),
    (lambda: phantom.mouse_head(layers=(("dermis", 0.0),)), "layers"),
    (lambda: phantom.mouse_head(concentration_uM=-1.0), "concentration_uM"),
    (lambda: phantom.mouse_head(voxel_size=0.3), "whole number of voxels"),
    (lambda: phantom.lymph_node(depth_mm=3.0), r"depth_mm: must be in \[4, 12.5\] mm"),
    (lambda: phantom.lymph_node(semi_axes_mm=(5.0, 2.5)), "semi_axes_mm"),
    (lambda: phantom.lymph_node(semi_axes_mm=(20.0, 2.5, 2.5)), r"semi_axes_mm\[0\]"),
    (lambda: phantom.lymph_node(node_tissue="lymph"), "unknown tissue preset"),
])
def test_scene_inputs_are_checked(call, match):
    with pytest.raises(ValueError, match=match):
        call()


IDEAL = Sensor("ideal", np.array([300.0, 2000.0]), np.array([1.0, 1.0]), read_noise_e=0.0,
               dark_current_e_per_s=0.0)
SMALL = {  # coarse, small versions: a smoke test of each scene through both stages
    "intralipid_capillary": dict(depth_mm=1.0, size_mm=(4.0, 4.0, 2.0), voxel_size=(0.5, 0.1, 0.1)),
    "mouse_head": dict(depth_mm=1.2, radius_mm=0.3, size_mm=(4.0, 4.0, 2.0), voxel_size=(0.2, 0.2, 0.1)),
    "lymph_node": dict(depth_mm=3.0, semi_axes_mm=(1.0, 0.5, 0.5), size_mm=(6.0, 6.0, 5.0),
                       voxel_size=(0.5, 0.5, 0.1)),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_scene_runs_end_to_end_on_numpy(name):
    scene = SCENES[name](quantum_dot=QD, **SMALL[name])
    cx, cy, _ = phantom.target_centre_mm(scene)
    camera = Camera(field_of_view_mm=(4.0, 4.0), pixels=(8, 8), centre_mm=(cx, cy), numerical_aperture=1.0,
                    emission_filter=EmissionFilter(1250, 1400, transmission_in_band=1.0), sensor=IDEAL,
                    exposure_s=1.0)
    result = scene.run(Excitation(pq.DiskSource((cx, cy, 0.0), radius=1.0), 808.0, 10.0), camera,
                       photons=50, backend="numpy")
    assert result.signal_per_photon.shape == (1, 8, 8)
    assert result.emitted[0] > 0 and np.all(np.isfinite(result.signal_per_photon))
