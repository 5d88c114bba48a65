"""Photon budget and camera noise: per-photon images → electrons, signal-to-noise, noisy realisations.

The transport kernel returns images in detected electrons per launched excitation photon per (unbinned)
pixel: it has already applied the acceptance cone, the emission filter and the quantum efficiency
(:meth:`photonqd.camera.Camera.detection_efficiency`). This module supplies the absolute scale — how many
excitation photons per second enter the tissue — and the noise model of the sensor.

Noise model per binned pixel, exposure t, binning b, N_r reads (1 for on-chip charge binning, b² for
digital binning; see :class:`photonqd.camera.Sensor`):

    variance = S + B + D·t·b² + N_r·(σ_r² + g²/12),      SNR = S / sqrt(variance)

with S the signal electrons, B the background electrons (autofluorescence, excitation leakage), D the dark
current per unbinned pixel, σ_r the read noise per read and g the ADC step of one read in electrons
(:func:`gain_e_per_adu`): rounding to whole ADU adds a uniform error of variance g²/12 per read. Shot noise
of S, B and the dark charge is Poisson; read noise is Gaussian.

Saturation: a binned pixel clips at :func:`saturation_e` (full well, and for on-chip binning the summing
register); :func:`saturated` flags pixels whose expected charge reaches it and :func:`auto_exposure_s`
picks the longest exposure that keeps the brightest pixel below a fill fraction of it. The noise formulas
themselves do not clip. Fixed-pattern noise and excess noise factors (EMCCD, InGaAs gain) are not
modelled.
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


def saturation_e(camera: Camera) -> float:
    """Electrons per binned pixel at which the pixel clips (inf when the sensor has no ``full_well_e``).

    Digital binning sums b² pixels read separately, each holding ``full_well_e``: b² × full well (reached
    when the block is evenly lit). Charge (on-chip) binning sums the charge in the serial/output register
    before the one read, so the binned charge is capped by ``register_well_e`` as well.
    """
    s, b = camera.sensor, camera.binning
    if s.full_well_e is None:
        return math.inf
    sat = b * b * s.full_well_e
    if s.binning == "charge" and s.register_well_e is not None:
        sat = min(sat, s.register_well_e)
    return float(sat)


def _read_clip_e(camera: Camera) -> float:
    """Charge at which one read clips: one pixel's well (digital binning) or the binned charge (charge)."""
    s = camera.sensor
    if s.full_well_e is None:
        return math.inf
    return s.full_well_e if s.binning == "digital" else saturation_e(camera)


def gain_e_per_adu(camera: Camera) -> float:
    """ADC step of one read [e⁻ per ADU]: the charge at which a read clips / (2^bit_depth − 1).

    The ADC is taken to span the read's saturation charge (``docs/camera.md``). For charge binning that
    is :func:`saturation_e`; for digital binning it is one pixel's full well, since each of the b² pixels
    is digitised on its own before the sum (the sum then spans saturation_e in b²(2^bits − 1) steps).
    0 for a sensor without ``full_well_e`` (an ideal ADC).
    """
    clip = _read_clip_e(camera)
    return 0.0 if math.isinf(clip) else clip / (2 ** camera.sensor.bit_depth - 1)


def _noise_floor(camera: Camera) -> float:
    """Dark-charge, read-noise and quantisation variance of one binned pixel [e⁻²]."""
    s, b = camera.sensor, camera.binning
    per_read = s.read_noise_e**2 + gain_e_per_adu(camera) ** 2 / 12.0
    return s.dark_current_e_per_s * camera.exposure_s * b * b + s.reads_per_binned_pixel(b) * per_read


def saturated(electrons_e, camera: Camera) -> np.ndarray:
    """Boolean mask of binned pixels whose expected charge clips.

    electrons_e : expected signal + background electrons per binned pixel over the camera's exposure
        (as from :func:`electrons`); the dark charge D·t·b² is added here.
    """
    e = np.asarray(electrons_e, dtype=float)
    if np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ValueError("electrons_e: electrons must be finite and >= 0")
    s, b = camera.sensor, camera.binning
    return e + s.dark_current_e_per_s * camera.exposure_s * b * b >= saturation_e(camera)


def auto_exposure_s(rate_e_per_s, camera: Camera, fill: float = 0.8, max_exposure_s: float | None = None) -> float:
    """Longest exposure [s] ≤ ``max_exposure_s`` that keeps every binned pixel below fill × saturation.

    rate_e_per_s : collected light per binned pixel [e⁻/s] (signal + background, e.g.
        ``electrons(image, photons_per_s, camera) / camera.exposure_s``); the dark current D·b² is added.
    fill : the fraction of :func:`saturation_e` the brightest pixel may reach, in (0, 1].
    max_exposure_s : upper limit [s], > 0; default the camera's own ``exposure_s``.

    The brightest pixel's expected charge is (R_max + D·b²)·t, so t = fill · saturation / (R_max + D·b²)
    when that is below the limit, and the limit otherwise (also for a sensor without a full well).
    """
    r = np.asarray(rate_e_per_s, dtype=float)
    if r.size == 0 or np.any(r < 0) or not np.all(np.isfinite(r)):
        raise ValueError("rate_e_per_s: rates must be finite, >= 0 and not empty")
    f = float(fill)
    if not (math.isfinite(f) and 0 < f <= 1):
        raise ValueError(f"fill: must be in (0, 1], got {fill!r}")
    t_max = camera.exposure_s if max_exposure_s is None else float(max_exposure_s)
    if not (math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"max_exposure_s: must be > 0 s, got {max_exposure_s!r}")
    b = camera.binning
    peak_rate = float(r.max()) + camera.sensor.dark_current_e_per_s * b * b
    limit = f * saturation_e(camera)
    if math.isinf(limit) or peak_rate * t_max < limit:
        return t_max
    return limit / peak_rate


def _electron_arrays(signal_e, background_e):
    s = np.asarray(signal_e, dtype=float)
    bg = np.broadcast_to(np.asarray(background_e, dtype=float), s.shape)
    if np.any(s < 0) or np.any(bg < 0) or not (np.all(np.isfinite(s)) and np.all(np.isfinite(bg))):
        raise ValueError("signal_e, background_e: electrons must be finite and >= 0")
    return s, bg


def pixel_variance(electrons_e, camera: Camera) -> np.ndarray:
    """Noise variance [e⁻²] of binned pixels collecting ``electrons_e`` (shot + dark + read + quantisation)."""
    e = np.asarray(electrons_e, dtype=float)
    if np.any(e < 0) or not np.all(np.isfinite(e)):
        raise ValueError("electrons_e: electrons must be finite and >= 0")
    return e + _noise_floor(camera)


def snr(signal_e, background_e, camera: Camera) -> np.ndarray:
    """Per-pixel SNR = S / sqrt(S + B + D·t·b² + N_r·(σ_r² + g²/12)) (electrons per binned pixel)."""
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
    """One noisy image in electrons: Poisson(S + B + D·t·b²) + Normal(0, sqrt(N_r·(σ_r² + g²/12))).

    Quantisation enters as Gaussian noise of its variance g²/12 per read rather than as rounding. Uses
    ``numpy.random.default_rng(seed)``; no offset or clipping (see :func:`saturated`), so values may be
    negative or above saturation.
    """
    s, bg = _electron_arrays(signal_e, background_e)
    sensor, b = camera.sensor, camera.binning
    rng = np.random.default_rng(seed)
    mean = s + bg + sensor.dark_current_e_per_s * camera.exposure_s * b * b
    per_read = sensor.read_noise_e**2 + gain_e_per_adu(camera) ** 2 / 12.0
    read_sigma = math.sqrt(sensor.reads_per_binned_pixel(b) * per_read)
    return rng.poisson(mean).astype(float) + rng.normal(0.0, read_sigma, size=s.shape)
