"""Image metrics of a fluorescent target: contrast, contrast-to-noise, SNR, apparent size.

Regions on the (binned) camera image, centred on the target's projection onto the surface:
  target:     pixels whose centre lies within ``target_radius_mm``;
  background: pixels in the annulus ``background_annulus_mm`` (inner, outer radius).
With I the mean total electrons (QD signal S + background B) per pixel in a region:
  signal-to-background ratio  SBR = I_target / I_background (as measured on an image)
  contrast (Michelson)        C   = (I_target - I_background) / (I_target + I_background)
  contrast-to-noise           CNR = (S_target - S_background) / sigma_background: the target's own
                                    fluorescence contrast over the camera noise per pixel (shot noise
                                    of all collected light + dark + read) in the background region.
                                    Using S rather than I keeps a smooth, beam-shaped background
                                    (autofluorescence peaks under the beam) from posing as a target.
  signal-to-noise             SNR = photonqd.noise.region_snr of the QD signal over the target
  FWHM                        full width at half maximum of the QD signal's profile along x
                              through the target centre, in mm (apparent size).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .camera import Camera
from .noise import pixel_variance, region_snr

#: Units of each metric (stored as HDF5 attributes).
UNITS = {"sbr": "1", "contrast": "1", "cnr": "1", "snr": "1", "fwhm_mm": "mm",
         "signal_target_e": "electrons per pixel", "background_target_e": "electrons per pixel",
         "signal_ring_e": "electrons per pixel", "background_ring_e": "electrons per pixel"}


@dataclass
class TargetMetrics:
    sbr: float
    contrast: float
    cnr: float
    snr: float
    fwhm_mm: float
    signal_target_e: float
    background_target_e: float
    signal_ring_e: float = float("nan")        # the background annulus' mean signal
    background_ring_e: float = float("nan")

    def as_dict(self) -> dict:
        return asdict(self)


def pixel_radius(camera: Camera, centre_mm) -> np.ndarray:
    """Distance (mm) of every binned pixel's centre from ``centre_mm`` on the surface."""
    nx, ny = camera.binned_pixels
    fx, fy = camera.field_of_view_mm
    x0 = camera.centre_mm[0] - fx / 2
    y0 = camera.centre_mm[1] - fy / 2
    x = x0 + (np.arange(nx) + 0.5) * fx / nx
    y = y0 + (np.arange(ny) + 0.5) * fy / ny
    return np.hypot(x[:, None] - centre_mm[0], y[None, :] - centre_mm[1])


def regions(camera: Camera, centre_mm, target_radius_mm: float, background_annulus_mm):
    """Boolean masks (target, background) on the binned image."""
    inner, outer = background_annulus_mm
    if not 0 < target_radius_mm <= inner < outer:
        raise ValueError("need 0 < target_radius_mm <= background inner radius < outer radius, got "
                         f"{target_radius_mm}, {background_annulus_mm}")
    r = pixel_radius(camera, centre_mm)
    target = r <= target_radius_mm
    if not target.any():  # a target smaller than a pixel: the pixel under its centre
        target = r == r.min()
    background = (r >= inner) & (r <= outer) & ~target   # disjoint even when the radii touch
    if not background.any():
        raise ValueError(f"background_annulus_mm {background_annulus_mm}: no pixel of the field of view "
                         "lies in it")
    return target, background


def fwhm_mm(profile: np.ndarray, pixel_mm: float) -> float:
    """Full width at half maximum of a 1-D profile (linear interpolation at the half-maximum
    crossings on either side of the peak); NaN if the profile does not fall to half on both sides."""
    p = np.asarray(profile, dtype=np.float64)
    if p.size < 3 or not p.max() > 0:
        return float("nan")
    peak = int(np.argmax(p))
    half = p[peak] / 2
    left = np.flatnonzero(p[:peak] < half)
    right = np.flatnonzero(p[peak:] < half)
    if not len(left) or not len(right):
        return float("nan")
    i, j = left[-1], peak + right[0]
    x_left = i + (half - p[i]) / (p[i + 1] - p[i])
    x_right = j - 1 + (p[j - 1] - half) / (p[j - 1] - p[j])
    return float((x_right - x_left) * pixel_mm)


def target_metrics(signal_e, background_e, camera: Camera, centre_mm, target_radius_mm: float,
                   background_annulus_mm=(3.0, 4.5)) -> TargetMetrics:
    """All metrics of one image pair (electrons per binned pixel)."""
    signal_e = np.asarray(signal_e, dtype=np.float64)
    background_e = np.asarray(background_e, dtype=np.float64)
    target, ring = regions(camera, centre_mm, target_radius_mm, background_annulus_mm)
    total = signal_e + background_e
    i_t, i_b = total[target].mean(), total[ring].mean()
    # camera noise of a background pixel: shot noise of everything it collects + dark + read
    sigma_b = float(np.sqrt(pixel_variance(total[ring], camera).mean()))
    pixel = camera.field_of_view_mm[0] / camera.binned_pixels[0]
    r = pixel_radius(camera, centre_mm)
    row = np.unravel_index(np.argmin(r), r.shape)[1]
    return TargetMetrics(
        sbr=float(i_t / i_b) if i_b > 0 else float("inf"),
        contrast=float((i_t - i_b) / (i_t + i_b)) if i_t + i_b > 0 else 0.0,
        cnr=float((signal_e[target].mean() - signal_e[ring].mean()) / sigma_b) if sigma_b > 0 else float("nan"),
        snr=float(region_snr(signal_e, background_e, target, camera)),
        fwhm_mm=fwhm_mm(signal_e[:, row], pixel),
        signal_target_e=float(signal_e[target].mean()),
        background_target_e=float(background_e[target].mean()),
        signal_ring_e=float(signal_e[ring].mean()),
        background_ring_e=float(background_e[ring].mean()),
    )
