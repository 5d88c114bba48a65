"""Photon budget and noise model: photon rate, electrons, SNR limits, noisy realisation statistics."""

import math

import numpy as np
import pytest

from photonqd.camera import Camera, EmissionFilter, Sensor
from photonqd.noise import electrons, photon_rate, realise, region_snr, snr


def camera(read=2.0, dark=5.0, binning=1, mode="digital", exposure=0.5, pixels=(200, 200)):
    sensor = Sensor("s", [400.0, 1700.0], [0.8, 0.8], read, dark, binning=mode)
    return Camera((20.0, 20.0), pixels, (10.0, 10.0), 0.3, EmissionFilter(1000, 1400), sensor, exposure, binning)


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
