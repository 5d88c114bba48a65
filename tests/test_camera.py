"""Camera: acceptance from the numerical aperture, filter and QE weighting, leakage, binning, presets."""

import math

import numpy as np
import pytest

from photonqd import ExitMap, Medium
from photonqd.camera import Camera, EmissionFilter, Sensor, sensor_names, sensor_preset, silicon_qe


def flat_sensor(qe=0.5, binning="digital"):
    return Sensor("flat", [400.0, 2000.0], [qe, qe], read_noise_e=2.0, dark_current_e_per_s=1.0, binning=binning)


def camera(**kw):
    args = dict(field_of_view_mm=(10.0, 8.0), pixels=(20, 16), centre_mm=(5.0, 4.0), numerical_aperture=0.5,
                emission_filter=EmissionFilter(800, 900, 0.9), sensor=flat_sensor(), exposure_s=0.1)
    args.update(kw)
    return Camera(**args)


def medium(n_ambient=1.0):
    return Medium(np.ones((20, 16, 4), np.uint8), voxel_size=0.5, optics=[[0, 0, 0, 1], [0.01, 10, 0.9, 1.37]],
                  n_ambient=n_ambient)


def test_acceptance_half_angle_from_na():
    cam = camera()
    assert cam.acceptance_half_angle_deg(1.0) == pytest.approx(30.0)  # asin(0.5)
    assert cam.acceptance_half_angle_deg(1.33) == pytest.approx(math.degrees(math.asin(0.5 / 1.33)))
    em = cam.exit_map(medium())
    assert isinstance(em, ExitMap)
    assert em.half_angle_deg == pytest.approx(30.0)
    assert em.pixels == (20, 16) and em.pixel_size == pytest.approx((0.5, 0.5))
    assert em.origin == pytest.approx((0.0, 0.0))
    # NA equal to n_ambient accepts the whole hemisphere
    assert camera(numerical_aperture=1.0).acceptance_half_angle_deg(1.0) == pytest.approx(90.0)


def test_na_above_ambient_index_raises():
    with pytest.raises(ValueError, match="numerical_aperture.*exceeds"):
        camera(numerical_aperture=1.2).exit_map(medium(1.0))
    # the same lens is fine under water immersion
    assert camera(numerical_aperture=1.2).exit_map(medium(1.33)).half_angle_deg < 90


@pytest.mark.parametrize("kw, field", [
    (dict(field_of_view_mm=(0, 8)), "field_of_view_mm"),
    (dict(pixels=(20, 0)), "pixels"),
    (dict(pixels=(20.5, 16)), "pixels"),
    (dict(centre_mm=(math.nan, 0)), "centre_mm"),
    (dict(numerical_aperture=0.0), "numerical_aperture"),
    (dict(exposure_s=-1.0), "exposure_s"),
    (dict(binning=0), "binning"),
    (dict(binning=3), "binning"),  # 3 does not divide 20
])
def test_bad_camera_inputs_name_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        camera(**kw)


def test_bad_filter_and_sensor_inputs():
    with pytest.raises(ValueError, match="lo_nm"):
        EmissionFilter(900, 800)
    with pytest.raises(ValueError, match="transmission_in_band"):
        EmissionFilter(800, 900, 1.5)
    with pytest.raises(ValueError, match="blocking_od"):
        EmissionFilter(800, 900, blocking_od=-2)
    with pytest.raises(ValueError, match="qe"):
        Sensor("bad", [800, 900], [0.5, 1.2], 1.0, 1.0)
    with pytest.raises(ValueError, match="read_noise_e"):
        Sensor("bad", [800, 900], [0.5, 0.5], -1.0, 1.0)
    with pytest.raises(ValueError, match="binning"):
        Sensor("bad", [800, 900], [0.5, 0.5], 1.0, 1.0, binning="analog")
    with pytest.raises(ValueError, match="full_well_e"):
        Sensor("bad", [800, 900], [0.5, 0.5], 1.0, 1.0, full_well_e=0)
    with pytest.raises(ValueError, match="register_well_e"):
        Sensor("bad", [800, 900], [0.5, 0.5], 1.0, 1.0, binning="charge", register_well_e=-1)
    for bits in (0, 33, 12.5, True):
        with pytest.raises(ValueError, match="bit_depth"):
            Sensor("bad", [800, 900], [0.5, 0.5], 1.0, 1.0, bit_depth=bits)
    with pytest.raises(TypeError, match="sensor"):
        camera(sensor="ingaas")
    with pytest.raises(ValueError, match="unknown sensor preset"):
        sensor_preset("nope")


def test_flat_spectrum_through_band_filter():
    # a flat spectrum (1 photon/nm) through an ideal 800-900 nm filter, T = 0.9, on a sensor whose QE
    # rises linearly from 0.2 to 0.6 over the band: detected = width * T * mean QE = 100 * 0.9 * 0.4
    # (a near-zero NA, so that the edges do not move; the cone average is tested below)
    sensor = Sensor("ramp", [800.0, 900.0], [0.2, 0.6], 1.0, 0.0)
    cam = camera(sensor=sensor, numerical_aperture=1e-4)
    wl = np.linspace(700, 1000, 300_001)
    detected = np.trapezoid(cam.detection_efficiency(wl), wl)
    assert detected == pytest.approx(100 * 0.9 * 0.4, rel=1e-4)
    assert cam.band == (800.0, 900.0)


def test_leakage_optical_density():
    f = EmissionFilter(830, 900, 0.9, blocking_od=6)
    assert f.transmission([808.0])[0] == pytest.approx(1e-6)
    assert f.transmission([850.0])[0] == pytest.approx(0.9)
    assert EmissionFilter(830, 900).transmission([808.0])[0] == 0.0
    # NA 0.1 moves the 830 nm edge only to 829 nm: still OD 6 at the laser
    narrow = camera(emission_filter=f, numerical_aperture=0.1)
    assert narrow.detection_efficiency([808.0])[0] == pytest.approx(1e-6 * 0.5)
    # NA 0.5 moves it to 830 * sqrt(1 - 0.25/4) = 803.6 nm: rays with sin²θ >= 4 (1 - (808/830)²) pass 808 nm
    f_leak = (0.25 - 4 * (1 - (808 / 830) ** 2)) / 0.25
    assert camera(emission_filter=f, numerical_aperture=0.5).detection_efficiency([808.0])[0] == pytest.approx(
        0.5 * (0.9 * f_leak + 1e-6 * (1 - f_leak)), rel=1e-12)


def brute_force_cone_average(f, wl, na, n_theta=20000):
    """The filter's transmission averaged over θ in [0, asin NA] with the weight d(sin²θ), evaluating
    the step filter with both edges moved to λ0·sqrt(1 − sin²θ/n_eff²) at each θ (midpoint rule)."""
    edges = np.linspace(0.0, math.asin(na), n_theta + 1)
    theta = 0.5 * (edges[:-1] + edges[1:])
    weight = np.diff(np.sin(edges) ** 2)
    s = np.sqrt(1 - (np.sin(theta) / f.effective_index) ** 2)[:, None]
    inside = (wl[None, :] >= f.lo_nm * s) & (wl[None, :] <= f.hi_nm * s)
    t = np.where(inside, f.transmission_in_band, 10.0 ** -f.blocking_od)
    return (weight[:, None] * t).sum(axis=0) / weight.sum()


@pytest.mark.parametrize("na, n_eff", [(0.3, 2.0), (0.5, 1.5), (0.1, 2.0)])
def test_cone_average_matches_brute_force(na, n_eff):
    f = EmissionFilter(820, 900, 0.9, blocking_od=6, effective_index=n_eff)
    wl = np.linspace(780, 910, 261)
    assert f.transmission(wl, na) == pytest.approx(brute_force_cone_average(f, wl, na), abs=2e-4)


def test_cone_average_hand_values():
    f = EmissionFilter(820, 900, 0.9, blocking_od=6, effective_index=2.0)
    # the rim ray at NA 0.3 moves the 820 nm edge to 820 * sqrt(1 - 0.09/4) = 810.71 nm; 815 nm passes
    # for sin²θ >= 4 (1 - (815/820)²) = 0.04863, i.e. 46.0 % of [0, 0.09]
    f_in = (0.09 - 4 * (1 - (815 / 820) ** 2)) / 0.09
    assert f_in == pytest.approx(0.4596, abs=1e-4)
    assert f.transmission([815.0], 0.3)[0] == pytest.approx(0.9 * f_in + 1e-6 * (1 - f_in), rel=1e-12)
    # the 808 nm laser stays below the rim's edge (810.7 nm): blocked at OD 6 as at normal incidence ...
    assert f.transmission([808.0], 0.3)[0] == pytest.approx(1e-6)
    # ... but a stack of lower effective index (1.5) moves the edge to 803.4 nm, and 27 % of the cone
    # passes the laser: sin²θ >= 2.25 (1 - (808/820)²) = 0.0654
    soft = EmissionFilter(820, 900, 0.9, blocking_od=6, effective_index=1.5)
    f_leak = (0.09 - 2.25 * (1 - (808 / 820) ** 2)) / 0.09
    assert soft.transmission([808.0], 0.3)[0] == pytest.approx(0.9 * f_leak + 1e-6 * (1 - f_leak), rel=1e-12)
    assert 0.27 < f_leak < 0.28


def test_cone_average_reduces_to_the_step_filter():
    f = EmissionFilter(800, 900, 0.9, blocking_od=5)
    wl = np.linspace(700, 1000, 3001)
    step = np.where((wl >= 800) & (wl <= 900), 0.9, 1e-5)
    assert np.array_equal(f.transmission(wl), step)
    assert np.array_equal(f.transmission(wl, 0.0), step)
    # a camera of vanishing NA: identical away from the edges themselves (a set of measure zero)
    cam = camera(emission_filter=f, numerical_aperture=1e-9)
    off_edge = (np.abs(wl - 800) > 1e-6) & (np.abs(wl - 900) > 1e-6)
    assert np.array_equal(cam.detection_efficiency(wl)[off_edge], (step * 0.5)[off_edge])


def test_camera_detection_uses_its_na():
    f = EmissionFilter(800, 900, 0.9)
    narrow, wide = camera(emission_filter=f, numerical_aperture=0.05), camera(emission_filter=f, numerical_aperture=0.5)
    # near the upper edge the wide cone loses the rays whose edge moved below 895 nm; below the lower
    # edge it gains the ones whose edge moved below 795 nm
    assert wide.detection_efficiency([895.0])[0] < narrow.detection_efficiency([895.0])[0] == pytest.approx(0.45)
    assert wide.detection_efficiency([795.0])[0] > 0 == narrow.detection_efficiency([795.0])[0]
    assert wide.detection_efficiency([895.0])[0] == pytest.approx(0.5 * f.transmission([895.0], 0.5)[0])
    # the wavelength bins start where the rim ray's edge lies
    assert wide.detection_band == pytest.approx((800 * math.sqrt(1 - 0.25 / 4), 900.0))
    assert wide.band == (800.0, 900.0)


def test_bad_cone_inputs():
    with pytest.raises(ValueError, match="effective_index"):
        EmissionFilter(800, 900, effective_index=0.8)
    with pytest.raises(ValueError, match="numerical_aperture"):
        EmissionFilter(800, 900).transmission([850.0], 1.2)
    with pytest.raises(ValueError, match="numerical_aperture"):
        EmissionFilter(800, 900).transmission([850.0], -0.1)


def test_binning_sums_blocks_and_shape():
    cam = camera(binning=4)
    img = np.arange(20 * 16, dtype=float).reshape(20, 16)
    binned = cam.bin_image(img)
    assert binned.shape == (5, 4) == cam.binned_pixels
    assert binned[1, 2] == img[4:8, 8:12].sum()
    assert binned.sum() == img.sum()
    with pytest.raises(ValueError, match="image"):
        cam.bin_image(np.zeros((16, 20)))


def test_sensor_presets():
    names = sensor_names()
    assert {"silicon_scmos", "silicon_ccd_bidd", "ingaas_standard"} <= set(names)
    for n in names:
        s = sensor_preset(n)
        assert s.sources and s.typical
        assert np.all((s.qe >= 0) & (s.qe <= 1))
    si, ccd, ingaas = (sensor_preset(n) for n in ("silicon_scmos", "silicon_ccd_bidd", "ingaas_standard"))
    # silicon is blind in NIR-II, InGaAs blind in NIR-I below 900 nm and beyond its 1.7 um cutoff
    assert si.quantum_efficiency([1300.0])[0] < 1e-3 and ingaas.quantum_efficiency([800.0])[0] == 0
    assert ingaas.quantum_efficiency([1200.0])[0] == pytest.approx(0.85)
    assert ingaas.quantum_efficiency([1750.0])[0] == 0
    # standard InGaAs holds its QE to ~1600 nm and cuts off between 1650 and 1700 nm: the mean over
    # 1500-1650 nm is ~0.77 (a straight ramp from 1500 to 1700 nm gave 0.53)
    wl = np.linspace(1500, 1650, 1501)
    assert np.trapezoid(ingaas.quantum_efficiency(wl), wl) / 150 == pytest.approx(0.77, abs=0.01)
    assert ingaas.quantum_efficiency([1600.0])[0] >= 0.7 and ingaas.quantum_efficiency([1690.0])[0] < 0.1
    # full wells and ADCs: every preset has them, the CCD's summing register is deeper than a pixel
    for s in (si, ccd, ingaas):
        assert s.full_well_e > 1e4 and s.bit_depth == 16
    assert si.full_well_e == 30000 and ccd.register_well_e > ccd.full_well_e
    # the deep-depletion CCD beats the thin sCMOS in the NIR; binning modes differ
    assert ccd.quantum_efficiency([850.0])[0] > 3 * si.quantum_efficiency([850.0])[0]
    assert ccd.reads_per_binned_pixel(2) == 1 and si.reads_per_binned_pixel(2) == 4


def test_silicon_qe_model():
    wl, qe = silicon_qe(0.9, 40.0)
    assert qe.max() == pytest.approx(0.9)
    # at 1000 nm, alpha = 4 pi k / lambda with Green's k = 5.093e-4 -> 64.0 /cm
    alpha_um = 4 * np.pi * 5.0930e-4 / 1.0
    assert np.interp(1000.0, wl, qe) == pytest.approx(0.9 * -np.expm1(-alpha_um * 40.0), rel=1e-6)
    with pytest.raises(ValueError, match="peak_qe"):
        silicon_qe(1.5, 10)
