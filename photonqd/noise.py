"""Photon budget and camera noise: per-photon images → electrons, signal-to-noise, noisy realisations.

The transport kernel returns images in detected electrons per launched excitation photon per (unbinned)
pixel: it has already applied the acceptance cone, the emission filter and the quantum efficiency
(:meth:`photonqd.camera.Camera.detection_efficiency`). This module supplies the absolute scale — how many
excitation photons per second enter the tissue — and the noise model of the sensor.

Noise model per binned pixel, exposure t, binning b, N_r reads (1 for on-chip charge binning, b² for
digital binning; see :class:`photonqd.camera.Sensor`):

    variance = S + B + D·t·b² + N_r·σ_r²,      SNR = S / sqrt(variance)

with S the signal electrons, B the background electrons (autofluorescence, excitation leakage), D the dark
current per unbinned pixel and σ_r the read noise per read. Shot noise of S, B and the dark charge is
Poisson; read noise is Gaussian. Fixed-pattern noise, excess noise factors (EMCCD, InGaAs gain) and
saturation are not modelled.
"""

from __future__ import annotations

import math

import numpy as np

from .camera import Camera

PLANCK_J_S = 6.62607015e-34  # h, exact in the SI since 2019 (CODATA 2018)
SPEED_OF_LIGHT_M_S = 299792458.0  # c, exact


def photon_rate(irradiance_mw_per_cm2: float, wavelength_nm: float, area_mm2: float) -> float:
    """Excitation photons per second: E·A·λ/(h c) for irradiance E [mW/cm²] over area A [mm²] at λ [nm]."""
    for name, v in (("irradiance_mw_per_cm2", irradiance_mw_per_cm2), ("wavelength_nm", wavelength_nm),
                    ("area_mm2", area_mm2)):
        if not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name}: must be > 0, got {v!r}")
    power_w = irradiance_mw_per_cm2 * 1e-3 * area_mm2 * 1e-2  # 1 mm² = 1e-2 cm²
    return power_w * wavelength_nm * 1e-9 / (PLANCK_J_S * SPEED_OF_LIGHT_M_S)


def electrons(detected_per_excitation_photon_image, photons_per_s: float, camera: Camera) -> np.ndarray:
    """Expected electrons per binned pixel over the exposure.

    detected_per_excitation_photon_image : (nx, ny) kernel image in detected electrons per launched
        excitation photon (QE and filter already applied), on the camera's unbinned pixels.
    photons_per_s : excitation photons per second launched (see :func:`photon_rate`).
    """
    if not (math.isfinite(photons_per_s) and photons_per_s >= 0):
        raise ValueError(f"photons_per_s: must be >= 0, got {photons_per_s!r}")
    img = np.asarray(detected_per_excitation_photon_image, dtype=float)
    if np.any(img < 0) or not np.all(np.isfinite(img)):
        raise ValueError("detected_per_excitation_photon_image: values must be finite and >= 0")
    return camera.bin_image(img) * photons_per_s * camera.exposure_s


def _noise_floor(camera: Camera) -> float:
    """Dark-charge and read-noise variance of one binned pixel [e⁻²]."""
    s, b = camera.sensor, camera.binning
    return s.dark_current_e_per_s * camera.exposure_s * b * b + s.reads_per_binned_pixel(b) * s.read_noise_e**2


def _electron_arrays(signal_e, background_e):
    s = np.asarray(signal_e, dtype=float)
    bg = np.broadcast_to(np.asarray(background_e, dtype=float), s.shape)
    if np.any(s < 0) or np.any(bg < 0) or not (np.all(np.isfinite(s)) and np.all(np.isfinite(bg))):
        raise ValueError("signal_e, background_e: electrons must be finite and >= 0")
    return s, bg


def pixel_variance(electrons_e, camera: Camera) -> np.ndarray:
    """Noise variance [e⁻²] of binned pixels collecting ``electrons_e`` (shot + dark + read)."""
    e = np.asarray(electrons_e, dtype=float)
    if np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ValueError("electrons_e: electrons must be finite and >= 0")
    return e + _noise_floor(camera)


def snr(signal_e, background_e, camera: Camera) -> np.ndarray:
    """Per-pixel SNR = S / sqrt(S + B + D·t·b² + N_r·σ_r²) (electrons per binned pixel)."""
    s, bg = _electron_arrays(signal_e, background_e)
    variance = s + bg + _noise_floor(camera)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(variance > 0, s / np.sqrt(variance), 0.0)


def region_snr(signal_e, background_e, mask, camera: Camera) -> float:
    """SNR of the summed signal over the binned pixels where ``mask`` is True.

    Noise adds in quadrature over the region's N pixels: S_tot / sqrt(S_tot + B_tot + N·floor).
    """
    s, bg = _electron_arrays(signal_e, background_e)
    m = np.asarray(mask, dtype=bool)
    if m.shape != s.shape:
        raise ValueError(f"mask: expected shape {s.shape}, got {m.shape}")
    if not m.any():
        raise ValueError("mask: selects no pixels")
    s_tot = float(s[m].sum())
    variance = s_tot + float(bg[m].sum()) + int(m.sum()) * _noise_floor(camera)
    return s_tot / math.sqrt(variance) if variance > 0 else 0.0


def realise(signal_e, background_e, camera: Camera, seed: int) -> np.ndarray:
    """One noisy image in electrons: Poisson(S + B + D·t·b²) + Normal(0, σ_r·sqrt(N_r)).

    Uses ``numpy.random.default_rng(seed)``; no offset or clipping, so values may be negative.
    """
    s, bg = _electron_arrays(signal_e, background_e)
    sensor, b = camera.sensor, camera.binning
    rng = np.random.default_rng(seed)
    mean = s + bg + sensor.dark_current_e_per_s * camera.exposure_s * b * b
    read_sigma = sensor.read_noise_e * math.sqrt(sensor.reads_per_binned_pixel(b))
    return rng.poisson(mean).astype(float) + rng.normal(0.0, read_sigma, size=s.shape)
