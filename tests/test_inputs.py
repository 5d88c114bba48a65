"""Bad input gets a clear error naming the field, raised before any kernel is built or launched."""

import numpy as np
import pytest

import photonqd as pq
from photonqd.tallies import MAX_PHOTONS


class NoLaunch:
    """A backend that fails the test if anything reaches it."""

    name = device = "no-launch"
    default_batch = min_batch = 10

    def prepare(self, plan):
        raise AssertionError("a kernel was prepared despite invalid input")


GOOD_OPTICS = [[0, 0, 0, 1], [0.01, 1.0, 0.9, 1.4]]


def medium(**kw):
    args = dict(labels=np.ones((4, 4, 4), np.uint8), voxel_size=1.0, optics=GOOD_OPTICS)
    args.update(kw)
    return pq.Medium(**args)


@pytest.mark.parametrize("row,field", [
    ([np.nan, 1.0, 0.9, 1.4], "mu_a"), ([-0.1, 1.0, 0.9, 1.4], "mu_a"),
    ([0.01, -1.0, 0.9, 1.4], "mu_s"), ([0.01, np.nan, 0.9, 1.4], "mu_s"),
    ([0.01, 1.0, 1.0, 1.4], "g"), ([0.01, 1.0, -1.0, 1.4], "g"),
    ([0.01, 1.0, 0.9, 0.99], "n"),
])
def test_bad_optical_properties(row, field):
    with pytest.raises(ValueError, match=field):
        medium(optics=[[0, 0, 0, 1], row])


def test_label_without_properties():
    labels = np.ones((4, 4, 4), np.uint8)
    labels[0, 0, 0] = 3
    with pytest.raises(ValueError, match="label 3"):
        medium(labels=labels)


@pytest.mark.parametrize("labels,match", [
    (np.ones((4, 4, 4), np.int32), "dtype"), (np.ones((4, 4, 4), np.float32), "dtype"),
    (np.ones((4, 4), np.uint8), "3-D"), (np.ones((0, 4, 4), np.uint8), "empty"),
])
def test_bad_label_volume(labels, match):
    with pytest.raises(ValueError, match=match):
        medium(labels=labels)


@pytest.mark.parametrize("size", [0.0, -1.0, (1.0, 0.0, 1.0), np.nan])
def test_non_positive_voxel_size(size):
    with pytest.raises(ValueError, match="voxel_size"):
        medium(voxel_size=size)


def test_bad_optics_shape_and_boundary():
    with pytest.raises(ValueError, match="optics"):
        medium(optics=[[0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="boundary"):
        medium(boundary={"x-": "absorbing"})
    with pytest.raises(ValueError, match="cyclic"):
        medium(boundary={"x-": "cyclic"})
    with pytest.raises(ValueError, match="n_ambient"):
        medium(n_ambient=0.5)


@pytest.mark.parametrize("photons", [0, -5, MAX_PHOTONS + 1, 2.5])
def test_photon_count_out_of_range(photons):
    sim = pq.Simulation(medium(), pq.PencilBeam((2, 2, 0)), photons=photons)
    with pytest.raises(ValueError, match="photons"):
        sim.run(NoLaunch())


@pytest.mark.parametrize("source,match", [
    (pq.PencilBeam((2, 2, -1), (0, 0, -1)), "does not enter"),
    (pq.PencilBeam((2, 2, 0), (0, 0, -1)), "does not enter"),
    (pq.PencilBeam((9, 9, -1), (0, 0, 1)), "does not enter"),
    (pq.IsotropicPoint((2, 2, -1)), "inside the grid"),
])
def test_source_that_cannot_enter(source, match):
    with pytest.raises(ValueError, match=match):
        pq.Simulation(medium(), source, photons=10).run(NoLaunch())


def test_source_inside_ambient_voxel():
    labels = np.ones((4, 4, 4), np.uint8)
    labels[2, 2, 2] = 0
    sim = pq.Simulation(medium(labels=labels), pq.IsotropicPoint((2.5, 2.5, 2.5)), photons=10)
    with pytest.raises(ValueError, match="label 0"):
        sim.run(NoLaunch())


@pytest.mark.parametrize("kwargs,match", [
    ({"seed": -1}, "seed"), ({"time_gate_ns": 0.0}, "time_gate_ns"),
    ({"roulette_threshold": 2.0}, "roulette_threshold"), ({"roulette_boost": 1.0}, "roulette_boost"),
    ({"trace_photons": (5, 99)}, "trace_photons"), ({"batch_photons": 0}, "batch_photons"),
])
def test_bad_run_settings(kwargs, match):
    sim = pq.Simulation(medium(), pq.PencilBeam((2, 2, 0)), photons=20, **kwargs)
    with pytest.raises(ValueError, match=match):
        sim.run(NoLaunch())


def test_bad_source_and_map_parameters():
    with pytest.raises(ValueError, match="direction"):
        pq.PencilBeam((1, 1, 0), (0, 0, 0))
    with pytest.raises(ValueError, match="waist"):
        pq.GaussianBeam((1, 1, 0), waist=-1)
    with pytest.raises(ValueError, match="radius"):
        pq.DiskSource((1, 1, 0), radius=0)
    with pytest.raises(ValueError, match="edge"):
        pq.RectangleSource((1, 1, 0), edge1=(1, 0, 0), edge2=(2, 0, 0))
    with pytest.raises(ValueError, match="half_angle"):
        pq.ExitMap((4, 4), 1.0, half_angle_deg=120)
    with pytest.raises(ValueError, match="wavelength_bin"):
        pq.Simulation(medium(), pq.PencilBeam((2, 2, 0), wavelength_bin=3), photons=5).run(NoLaunch())


def test_photons_that_could_never_stop():
    m = medium(optics=[[0, 0, 0, 1], [0.0, 1.0, 0.9, 1.4]], boundary="mirror")
    with pytest.raises(ValueError, match="never stop"):
        pq.Simulation(m, pq.IsotropicPoint((2, 2, 2)), photons=5).run(NoLaunch())


def test_unknown_backend_name():
    with pytest.raises(ValueError, match="backend"):
        pq.Simulation(medium(), pq.PencilBeam((2, 2, 0)), photons=5).run("vulkan")


def test_grid_too_large_for_32_bit_voxel_indices():
    huge = np.broadcast_to(np.uint8(1), (2048, 1024, 1024))  # 2**31 voxels, no memory used
    with pytest.raises(ValueError, match="labels: .* exceed"):
        medium(labels=huge)
