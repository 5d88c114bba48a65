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
    with pytest.raises(TypeError, match="sensor"):
        camera(sensor="ingaas")
    with pytest.raises(ValueError, match="unknown sensor preset"):
        sensor_preset("nope")


def test_flat_spectrum_through_band_filter():
    # a flat spectrum (1 photon/nm) through an ideal 800-900 nm filter, T = 0.9, on a sensor whose QE
    # rises linearly from 0.2 to 0.6 over the band: detected = width * T * mean QE = 100 * 0.9 * 0.4
    sensor = Sensor("ramp", [800.0, 900.0], [0.2, 0.6], 1.0, 0.0)
    cam = camera(sensor=sensor)
    wl = np.linspace(700, 1000, 300_001)
    detected = np.trapezoid(cam.detection_efficiency(wl), wl)
    assert detected == pytest.approx(100 * 0.9 * 0.4, rel=1e-4)
    assert cam.band == (800.0, 900.0)


def test_leakage_optical_density():
    f = EmissionFilter(830, 900, 0.9, blocking_od=6)
    assert f.transmission([808.0])[0] == pytest.approx(1e-6)
    assert f.transmission([850.0])[0] == pytest.approx(0.9)
    assert EmissionFilter(830, 900).transmission([808.0])[0] == 0.0
    cam = camera(emission_filter=f)
    assert cam.detection_efficiency([808.0])[0] == pytest.approx(1e-6 * 0.5)


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
