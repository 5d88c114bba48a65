"""Reliability: inputs that would hang the transport, overflow the kernels' indexing or give wrong
numbers are refused before launch; the roulette stays unbiased over its allowed range; the CLI
answers a user's mistake with one line and exit status 2. (The reproducers are those of
docs/limits.md and the reliability review.)"""

import numpy as np
import pytest

import photonqd as pq
from photonqd.simulation import MAX_MAP_PIXELS, check_tally_size
from photonqd.sources import VoxelEmission
from photonqd.testing import slab, zscore


class NoLaunch:
    """A backend that fails the test if anything reaches it."""

    name = device = "no-launch"
    default_batch = min_batch = 10

    def prepare(self, plan):
        raise AssertionError("a kernel was prepared despite invalid input")


def refused(sim, match):
    with pytest.raises((ValueError, TypeError), match=match):
        sim.run(NoLaunch())


# --- F1: photons that would never stop ----------------------------------------------------------
def test_non_scattering_label_in_a_closed_box_is_refused():
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.01, 0.0, 0.0, 1.37, boundary="mirror")
    refused(pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=100), "label 1 does not scatter")
    # a time gate makes it finite; so does an escape face
    pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=100, time_gate_ns=1.0).check()
    open_top = pq.Medium.uniform((4, 4, 4), 1.0, 0.01, 0.0, 0.0, 1.37,
                                 boundary={f: "mirror" for f in ("x-", "x+", "y-", "y+", "z+")})
    pq.Simulation(open_top, pq.PencilBeam((2, 2, 0)), photons=100).check()


def test_non_scattering_label_the_source_never_uses_is_allowed():
    optics = np.array([[[0, 0, 0, 1], [0.1, 10.0, 0.9, 1.37]],      # bin 0 scatters
                       [[0, 0, 0, 1], [0.1, 0.0, 0.0, 1.37]]])      # bin 1 does not
    m = pq.Medium(np.ones((3, 3, 3), np.uint8), 1.0, optics, boundary="mirror")
    pq.Simulation(m, pq.PencilBeam((1.5, 1.5, 0), wavelength_bin=0), photons=10).check()
    refused(pq.Simulation(m, pq.PencilBeam((1.5, 1.5, 0), wavelength_bin=1), photons=10), "bin 1")


def test_isotropic_source_trapped_by_total_internal_reflection_is_refused():
    clear = pq.Medium.uniform((4, 4, 4), 1.0, 0.01, 0.0, 0.0, 1.5)
    refused(pq.Simulation(clear, pq.IsotropicPoint((2, 2, 2)), photons=100), "total internal reflection")
    pq.Simulation(clear, pq.IsotropicPoint((2, 2, 2)), photons=100, time_gate_ns=0.5).check()
    # an index below sqrt(3/2) x the surroundings' cannot trap every component at once
    pq.Simulation(pq.Medium.uniform((4, 4, 4), 1.0, 0.01, 0.0, 0.0, 1.2), pq.IsotropicPoint((2, 2, 2)),
                  photons=100).check()
    # a pencil beam entering from outside always leaves a clear box
    pq.Simulation(clear, pq.PencilBeam((2, 2, 0), (0.3, 0.2, 1.0)), photons=100).check()


@pytest.mark.parametrize("kwargs,match", [
    ({"roulette_threshold": 1e-50}, "roulette_threshold"),        # 0 in float32
    ({"roulette_threshold": 1e-31}, "roulette_threshold"),
    ({"roulette_boost": 1 + 1e-9}, "roulette_boost"),             # 1.0 in float32
    ({"roulette_boost": float("inf")}, "roulette_boost"),         # F3
    ({"roulette_boost": 1e30}, "roulette_boost"),
    ({"roulette_boost": 1001.0}, "roulette_boost"),
    ({"roulette_threshold": 0.5, "roulette_boost": 10.0}, "threshold x boost"),
    ({"roulette_threshold": "0.1"}, "roulette_threshold"),
])
def test_roulette_settings_the_kernel_cannot_honour_are_refused(kwargs, match):
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.5, 10.0, 0.0, 1.37, boundary="mirror")
    refused(pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=200, **kwargs), match)


@pytest.mark.parametrize("threshold,boost", [(1e-3, 1000.0), (0.5, 2.0), (0.999, 1.001), (1e-30, 10.0)])
def test_roulette_is_unbiased_over_its_allowed_range(fast_backend, threshold, boost):
    """Absorbed fraction of a scattering slab with extreme but allowed roulette settings agrees
    with the default settings (z-test on batch means)."""
    m = slab(0.1, 10.0, 0.9, 1.37, 2.0)
    kw = dict(photons=20_000, seed=3, batch_photons=2_000, fluence=False)
    ref = pq.Simulation(m, pq.PencilBeam((50, 50, 0)), **kw).run(fast_backend)
    alt = pq.Simulation(m, pq.PencilBeam((50, 50, 0)), seed=4, roulette_threshold=threshold,
                        roulette_boost=boost, **{k: v for k, v in kw.items() if k != "seed"}).run(fast_backend)
    a, sa = ref.mean_and_error("absorbed")
    b, sb = alt.mean_and_error("absorbed")
    assert abs(zscore(a, sa, b, sb)) < 4
    assert abs(alt.energy_balance() - 1) < 1e-6


# --- F4: sizes the kernels index ----------------------------------------------------------------
def test_tally_layout_beyond_32_bit_offsets_is_refused_before_any_copy():
    m = pq.Medium.uniform((4, 4, 4), 0.5, 0.01, 10, 0.9, 1.37)
    m.labels = np.broadcast_to(np.uint8(1), (1024, 1024, 1024))  # 2**30 voxels, no memory used
    sim = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=100)
    refused(sim, "tallies: .* entries .* exceed")
    check_tally_size(m, False, pq.ExitMap((4096, 4096), 0.1))  # absorbed alone fits
    m.labels = np.broadcast_to(np.uint8(1), (2048, 1024, 1016))  # 2**31 - 2**24 voxels
    check_tally_size(m, False, None)
    with pytest.raises(ValueError, match="exit_map"):
        check_tally_size(m, False, pq.ExitMap((4096, 4096), 0.1))


@pytest.mark.parametrize("kwargs,match", [
    ({"pixels": (46341, 46341)}, "exit_map.pixels"),
    ({"pixels": (2.7, 3.9)}, "exit_map.pixels"),
    ({"pixels": (4, float("nan"))}, "exit_map.pixels"),
    ({"pixels": "many"}, "exit_map.pixels"),
    ({"pixels": (4, 4, 4)}, "exit_map.pixels"),
    ({"origin": (float("nan"), 0.0)}, "exit_map.origin"),
    ({"origin": (float("inf"), 0.0)}, "exit_map.origin"),
    ({"pixel_size": 1e39}, "exit_map.pixel_size"),
    ({"half_angle_deg": "wide"}, "exit_map.half_angle_deg"),
    ({"record_capacity": 2.5}, "exit_map.record_capacity"),
])
def test_bad_exit_map_is_refused(kwargs, match):
    args = dict(pixels=(8, 8), pixel_size=0.5)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        pq.ExitMap(**args)


def test_exit_map_limits_accept_a_4096_camera():
    assert pq.ExitMap((4096, 4096), 0.01).n_pixels == MAX_MAP_PIXELS
    assert pq.ExitMap((4.0, 2), 0.01).pixels == (4, 2)


# --- F12, F13: every conversion names its field ---------------------------------------------------
@pytest.mark.parametrize("kwargs,match", [
    ({"photons": float("nan")}, "photons"), ({"photons": float("inf")}, "photons"),
    ({"photons": None}, "photons"), ({"seed": "abc"}, "seed"), ({"seed": float("nan")}, "seed"),
    ({"batch_photons": 1.5}, "batch_photons"), ({"trace_events": 2.5}, "trace_events"),
    ({"time_gate_ns": "1"}, "time_gate_ns"), ({"rng_stream": 0.5}, "rng_stream"),
    ({"trace_photons": ("a",)}, "trace_photons"), ({"keep_batches": "exit_map"}, "keep_batches"),
])
def test_simulation_conversion_errors_name_the_field(kwargs, match):
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.01, 1.0, 0.9, 1.4)
    with pytest.raises((ValueError, TypeError), match=match):
        pq.Simulation(m, pq.PencilBeam((2, 2, 0)), **{"photons": 20, **kwargs}).run(NoLaunch())


@pytest.mark.parametrize("kwargs,match", [
    ({"n_ambient": "air"}, "n_ambient"),
    ({"optics": [["a", 1, 0.9, 1.4]] * 2}, "optics"),
    ({"voxel_size": (0.5, 0.5)}, "voxel_size"),
    ({"voxel_size": 1e39}, "voxel_size"),
    ({"voxel_size": 1e-40}, "voxel_size"),
    ({"boundary": 5}, "boundary"),
    ({"boundary": {"x-": 3}}, "boundary"),
])
def test_medium_conversion_errors_name_the_field(kwargs, match):
    args = dict(labels=np.ones((4, 4, 4), np.uint8), voxel_size=1.0, optics=[[0, 0, 0, 1], [0.01, 1, 0.9, 1.4]])
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        pq.Medium(**args)


@pytest.mark.parametrize("make,match", [
    (lambda: pq.PencilBeam(("a", 1, 0)), "position"),
    (lambda: pq.PencilBeam((1, 1, 0), wavelength_bin="x"), "wavelength_bin"),
    (lambda: pq.PencilBeam((1, 1, 0), wavelength_bin=0.5), "wavelength_bin"),
    (lambda: pq.GaussianBeam((1, 1, 0), waist="1"), "waist"),
    (lambda: pq.DiskSource((1, 1, 0), radius=None), "radius"),
    (lambda: VoxelEmission(density="dense"), "density"),
])
def test_source_conversion_errors_name_the_field(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()
