"""Photon budget and noise model: photon rate, electrons, SNR limits, noisy realisation statistics."""

import math

import numpy as np
import pytest

from photonqd.camera import Camera, EmissionFilter, Sensor, sensor_preset
from photonqd.noise import (auto_exposure_s, electrons, gain_e_per_adu, photon_rate, pixel_variance, realise,
                            region_snr, saturated, saturation_e, snr)


def camera(read=2.0, dark=5.0, binning=1, mode="digital", exposure=0.5, pixels=(200, 200), **sensor_kw):
    # no full well unless given: an ideal ADC, so the read/dark/shot tests see no quantisation
    sensor = Sensor("s", [400.0, 1700.0], [0.8, 0.8], read, dark, binning=mode, **sensor_kw)
    return Camera((20.0, 20.0), pixels, (10.0, 10.0), 0.3, EmissionFilter(1000, 1400), sensor, exposure, binning)


def preset_camera(name, binning=1, exposure=0.05):
    return Camera((20.0, 20.0), (200, 200), (10.0, 10.0), 0.3, EmissionFilter(1000, 1400), sensor_preset(name),
                  exposure, binning)


@pytest.mark.parametrize("name, binning, sat", [
    ("silicon_scmos", 1, 30000.0),            # Zyla 4.2 PLUS 16-bit mode: 30,000 e- per pixel
    ("silicon_scmos", 2, 4 * 30000.0),        # digital: four pixels, each with its own well
    ("ingaas_standard", 2, 4 * 1e5),
    ("silicon_ccd_bidd", 1, 1e5),
    ("silicon_ccd_bidd", 2, 2e5),             # charge: 4 x 1e5 summed in a 2e5 register -> the register
    ("silicon_ccd_bidd", 4, 2e5),
])
def test_saturation_per_preset_and_binning(name, binning, sat):
    assert saturation_e(preset_camera(name, binning)) == sat


def test_adc_gain_per_read():
    # the sCMOS's 16-bit ADC over its 30,000 e- well: 0.458 e-/ADU, Andor quotes 0.45 for this mode
    assert gain_e_per_adu(preset_camera("silicon_scmos")) == pytest.approx(30000 / 65535)
    assert gain_e_per_adu(preset_camera("silicon_scmos")) == pytest.approx(0.45, rel=0.02)
    # digital binning digitises each pixel: the step does not grow with binning
    assert gain_e_per_adu(preset_camera("silicon_scmos", 2)) == pytest.approx(30000 / 65535)
    # charge binning digitises the binned charge once: the ADC spans the register
    assert gain_e_per_adu(preset_camera("silicon_ccd_bidd", 2)) == pytest.approx(2e5 / 65535)
    assert gain_e_per_adu(preset_camera("silicon_ccd_bidd", 1)) == pytest.approx(1e5 / 65535)
    # no full well: no clipping, an ideal ADC
    assert saturation_e(camera()) == math.inf and gain_e_per_adu(camera()) == 0.0


def test_quantisation_noise_enters_variance():
    # a 4-bit ADC over a 150 e- well: 10 e-/ADU, variance 100/12 per read; no read noise, no dark
    cam = camera(read=0.0, dark=0.0, full_well_e=150.0, bit_depth=4)
    assert gain_e_per_adu(cam) == 10.0
    assert pixel_variance(0.0, cam) == pytest.approx(100 / 12)
    assert snr(100.0, 0.0, cam) == pytest.approx(100 / math.sqrt(100 + 100 / 12))
    # 2x2 digital binning: four reads, each quantised
    assert pixel_variance(0.0, camera(read=0.0, dark=0.0, binning=2, full_well_e=150.0, bit_depth=4)) == \
        pytest.approx(4 * 100 / 12)
    # 2x2 charge binning without a register cap: one read of an ADC spanning 600 e- (40 e-/ADU)
    charge = camera(read=0.0, dark=0.0, binning=2, mode="charge", full_well_e=150.0, bit_depth=4)
    assert pixel_variance(0.0, charge) == pytest.approx(40.0**2 / 12)
    # with read noise they add per read
    assert pixel_variance(0.0, camera(read=3.0, dark=0.0, full_well_e=150.0, bit_depth=4)) == \
        pytest.approx(9 + 100 / 12)


def test_realisation_includes_quantisation_variance():
    cam = camera(read=0.0, dark=0.0, full_well_e=150.0, bit_depth=4)
    img = realise(np.zeros((200, 200)), 0.0, cam, seed=3)
    var = 100 / 12
    assert img.var(ddof=1) == pytest.approx(var, rel=5 * math.sqrt(2.0 / img.size))


def test_saturated_mask_counts_dark_charge():
    # well 1000 e-, dark 100 e-/s x 0.5 s = 50 e-: pixels clip at 950 e- of light
    cam = camera(read=0.0, dark=100.0, exposure=0.5, full_well_e=1000.0)
    mask = saturated(np.array([[0.0, 949.0], [950.0, 5000.0]]), cam)
    assert mask.tolist() == [[False, False], [True, True]]
    assert not saturated(np.full((2, 2), 1e12), camera()).any()  # no full well, nothing clips
    with pytest.raises(ValueError, match="electrons_e"):
        saturated(-1.0, cam)


def test_auto_exposure_fills_the_brightest_pixel():
    # 2x2 digital binning: saturation 4 x 1000 e-, dark 4 x 10 e-/s; brightest pixel 2000 e-/s
    cam = camera(read=0.0, dark=10.0, binning=2, full_well_e=1000.0, exposure=10.0)
    rate = np.array([[100.0, 2000.0], [0.0, 500.0]])
    t = auto_exposure_s(rate, cam, fill=0.8, max_exposure_s=10.0)
    assert t == pytest.approx(0.8 * 4000.0 / (2000.0 + 40.0))
    assert (2000.0 + 4 * 10.0) * t == pytest.approx(0.8 * saturation_e(cam), rel=1e-12)
    assert not saturated(rate * t, cam).any() and saturated(rate * t / 0.8, cam)[0, 1]
    # the limit binds: a faint image gets max_exposure_s; the default limit is the camera's exposure
    assert auto_exposure_s(rate * 1e-6, cam, max_exposure_s=2.0) == 2.0
    assert auto_exposure_s(rate * 1e-6, cam) == cam.exposure_s
    assert auto_exposure_s(rate, camera(), max_exposure_s=3.0) == 3.0  # nothing saturates


@pytest.mark.parametrize("kw, field", [
    (dict(fill=0.0), "fill"), (dict(fill=1.5), "fill"), (dict(fill=math.nan), "fill"),
    (dict(max_exposure_s=0.0), "max_exposure_s"), (dict(max_exposure_s=-1.0), "max_exposure_s"),
])
def test_auto_exposure_bad_inputs(kw, field):
    with pytest.raises(ValueError, match=field):
        auto_exposure_s(np.ones((2, 2)), camera(full_well_e=1000.0), **kw)
    with pytest.raises(ValueError, match="rate_e_per_s"):
        auto_exposure_s(np.array([-1.0]), camera(full_well_e=1000.0))


def test_photon_rate_hand_calculation():
    # 1 mW/cm2 over 1 cm2 = 1 mW at 808 nm: 1e-3 W / (h c / 808 nm) = 4.067e15 photons/s
    assert photon_rate(1.0, 808.0, 100.0) == pytest.approx(1e-3 * 808e-9 / (6.62607015e-34 * 299792458), rel=1e-12)
    assert photon_rate(1.0, 808.0, 100.0) == pytest.approx(4.07e15, rel=1e-3)
    with pytest.raises(ValueError, match="area_mm2"):
        photon_rate(1.0, 808.0, 0.0)


def test_electrons_scale_and_binning():
    cam = camera(binning=2, pixels=(4, 4))
    img = np.full((4, 4), 1e-9)
    e = electrons(img, 1e12, cam)
    assert e.shape == (2, 2)
    assert e == pytest.approx(np.full((2, 2), 4 * 1e-9 * 1e12 * 0.5))
    with pytest.raises(ValueError, match="photons_per_s"):
        electrons(img, -1.0, cam)


def test_snr_limits():
    cam = camera(read=0.0, dark=0.0)
    # shot-noise limited: SNR = sqrt(S)
    assert snr(1e4, 0.0, cam) == pytest.approx(100.0)
    # read-noise limited (S << sigma_r^2): SNR -> S / sigma_r
    cam = camera(read=50.0, dark=0.0)
    assert snr(5.0, 0.0, cam) == pytest.approx(5.0 / math.sqrt(5.0 + 2500.0))
    assert snr(5.0, 0.0, cam) == pytest.approx(0.1, rel=1e-3)
    # background adds variance; dark charge is D t per unbinned pixel
    cam = camera(read=0.0, dark=100.0, exposure=1.0)
    assert snr(100.0, 200.0, cam) == pytest.approx(100.0 / math.sqrt(400.0))


def test_binning_read_noise_charge_vs_digital():
    # 2x2 binning: on-chip (CCD) charge binning reads once, digital (sCMOS) binning reads 4 times
    charge = camera(read=10.0, dark=0.0, binning=2, mode="charge")
    digital = camera(read=10.0, dark=0.0, binning=2, mode="digital")
    assert snr(100.0, 0.0, charge) == pytest.approx(100.0 / math.sqrt(100.0 + 100.0))
    assert snr(100.0, 0.0, digital) == pytest.approx(100.0 / math.sqrt(100.0 + 400.0))


def test_region_snr_adds_in_quadrature():
    cam = camera(read=3.0, dark=0.0)
    s = np.full((4, 4), 25.0)
    bg = np.full((4, 4), 10.0)
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    assert region_snr(s, bg, mask, cam) == pytest.approx(100.0 / math.sqrt(100.0 + 40.0 + 4 * 9.0))
    with pytest.raises(ValueError, match="mask"):
        region_snr(s, bg, np.zeros((4, 4), bool), cam)


def test_realisation_mean_and_variance_match_model():
    # 40 000 pixels, mean mu = S + B + D t = 50 + 20 + 2.5, variance = mu + sigma_r^2 = 72.5 + 4.
    # Standard error of the sample mean: sqrt(76.5 / 4e4) = 0.044 -> tolerance 5 sigma = 0.22.
    # Sample variance of n values has relative s.e. ~ sqrt((2 + excess kurtosis) / n) ~ 0.0071
    # (kurtosis of Poisson(72.5) + Normal is ~0.013) -> 5 sigma = 3.6 %.
    cam = camera(read=2.0, dark=5.0, exposure=0.5)
    s = np.full((200, 200), 50.0)
    img = realise(s, 20.0, cam, seed=12345)
    assert img.shape == (200, 200)
    mu, var = 72.5, 72.5 + 4.0
    assert img.mean() == pytest.approx(mu, abs=5 * math.sqrt(var / img.size))
    assert img.var(ddof=1) == pytest.approx(var, rel=5 * math.sqrt(2.0 / img.size))
    # same seed, same image; different seed, different image
    assert np.array_equal(img, realise(s, 20.0, cam, seed=12345))
    assert not np.array_equal(img, realise(s, 20.0, cam, seed=1))


def test_realisation_digital_binning_reads():
    # 2x2 digital binning: read variance 4 sigma_r^2, dark 4 D t per binned pixel
    cam = camera(read=5.0, dark=2.0, exposure=1.0, binning=2, mode="digital")
    img = realise(np.zeros((100, 100)), 0.0, cam, seed=7)
    mu, var = 8.0, 8.0 + 100.0
    assert img.mean() == pytest.approx(mu, abs=5 * math.sqrt(var / img.size))
    assert img.var(ddof=1) == pytest.approx(var, rel=5 * math.sqrt(2.0 / img.size))


def test_negative_electrons_rejected():
    with pytest.raises(ValueError, match="signal_e"):
        snr(-1.0, 0.0, camera())
