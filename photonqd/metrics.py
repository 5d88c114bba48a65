"""Image metrics of a fluorescent target: contrast, contrast-to-noise, SNR, apparent size.

Regions on the (binned) camera image, centred on the target's projection onto the surface (a
``Footprint``: a point, or for a target that crosses the field, such as a capillary, a line; every
distance below is then measured across the line, the annulus becomes the two bands at those
distances either side of it, and the FWHM is the width across it):
  target:     pixels whose centre lies within ``target_radius_mm``;
  background: pixels in the annulus ``background_annulus_mm`` (inner, outer radius), or, "auto",
              the annulus AUTO_WIDTH_MM wide that starts where the target's own signal has
              fallen to AUTO_SPREAD of its level over the target (``auto_annulus``), so that
              the background lies outside the target's spread at any depth the field allows.
With I the mean total electrons (QD signal S + background B) per pixel in a region:
  signal-to-background ratio  SBR = I_target / I_background (as measured on an image)
  contrast (Michelson)        C   = (I_target - I_background) / (I_target + I_background)
  contrast-to-noise           CNR = (S_target - S_background) / sigma_background: the target's own
                                    fluorescence contrast over the noise per pixel in the background
                                    region: the camera's (shot noise of all collected light + dark +
                                    read + quantisation) and clutter, kappa x I of each pixel (the
                                    background's relative fluctuation between pixels: tissue
                                    heterogeneity, autofluorescence structure, residual fixed
                                    pattern; study key background.clutter).
                                    Using S rather than I keeps a smooth, beam-shaped background
                                    (autofluorescence peaks under the beam) from posing as a target.
  signal-to-noise             SNR = photonqd.noise.region_snr of the QD signal over the target
  FWHM                        full width at half maximum of the QD signal's radial profile about
                              the target centre (the image averaged over rings one pixel wide:
                              every pixel contributes, so a noisy forward image gives a usable
                              width), in mm (apparent size).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .camera import Camera
from .noise import pixel_variance, region_snr

#: Units of each metric (stored as HDF5 attributes).
UNITS = {"sbr": "1", "contrast": "1", "cnr": "1", "snr": "1", "fwhm_mm": "mm", "background_spread": "1",
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
    background_spread: float = float("nan")    # the target's own light in the annulus: S_ring / S_target

    def as_dict(self) -> dict:
        return asdict(self)


class Footprint(tuple):
    """The target's projection onto the camera: (x, y) in mm, and ``along`` = 0 or 1 when it is a
    line along x or y through that point (a capillary or vessel crossing the field), None for a
    compact target. Indexes as the (x, y) tuple it extends; a plain (x, y) tuple is a point."""

    def __new__(cls, x, y, along=None):
        if along not in (None, 0, 1):
            raise ValueError(f"along: 0 (x), 1 (y) or None (a point), got {along!r}")
        footprint = super().__new__(cls, (float(x), float(y)))
        footprint.along = along
        return footprint

    def __reduce__(self):                    # pickle calls __new__(cls, (x, y)) otherwise
        return Footprint, (self[0], self[1], self.along)


def pixel_radius(camera: Camera, centre_mm) -> np.ndarray:
    """Distance (mm) of every binned pixel's centre from the target's projection ``centre_mm``
    (a Footprint or an (x, y) point) on the surface: from the point, or across the line."""
    nx, ny = camera.binned_pixels
    fx, fy = camera.field_of_view_mm
    x0 = camera.centre_mm[0] - fx / 2
    y0 = camera.centre_mm[1] - fy / 2
    dx = x0 + (np.arange(nx) + 0.5) * fx / nx - centre_mm[0]
    dy = y0 + (np.arange(ny) + 0.5) * fy / ny - centre_mm[1]
    along = getattr(centre_mm, "along", None)
    if along is not None:
        across = np.abs(dy)[None, :] if along == 0 else np.abs(dx)[:, None]
        return np.broadcast_to(across, (nx, ny)).copy()
    return np.hypot(dx[:, None], dy[None, :])


#: "auto" background annulus: it starts where the target's own signal, averaged over rings one
#: pixel wide, has fallen to AUTO_SPREAD of its mean over the target, and is AUTO_WIDTH_MM wide.
AUTO_SPREAD = 0.05
AUTO_WIDTH_MM = 1.5


def field_reach_mm(camera: Camera, centre_mm) -> float:
    """Radius (mm) of the largest circle about ``centre_mm`` inside the field of view (for a line,
    the largest distance across it at which both sides are still in the field)."""
    (fx, fy), (cx, cy) = camera.field_of_view_mm, camera.centre_mm
    x_reach = (centre_mm[0] - (cx - fx / 2), cx + fx / 2 - centre_mm[0])
    y_reach = (centre_mm[1] - (cy - fy / 2), cy + fy / 2 - centre_mm[1])
    along = getattr(centre_mm, "along", None)
    return min(y_reach if along == 0 else x_reach if along == 1 else x_reach + y_reach)


def auto_annulus(signal_e, camera: Camera, centre_mm, target_radius_mm: float) -> tuple[float, float]:
    """(inner, outer) radius (mm) of the background annulus outside the target's own spread (see
    AUTO_SPREAD); where the field is too small for that, the outermost AUTO_WIDTH_MM of the
    largest circle in the field (the metric background_spread then says how much of the target's
    light the annulus holds)."""
    signal = np.asarray(signal_e, dtype=np.float64)
    r = pixel_radius(camera, centre_mm)
    pixel = camera.field_of_view_mm[0] / camera.binned_pixels[0]
    reach = field_reach_mm(camera, centre_mm)
    edge = (max(target_radius_mm, reach - AUTO_WIDTH_MM), reach)
    level = signal[r <= max(target_radius_mm, r.min())].mean()
    if not level > 0:
        return edge
    ring = np.floor(r / pixel).astype(np.int64).ravel()
    count = np.bincount(ring)
    mean = np.bincount(ring, weights=signal.ravel()) / np.maximum(count, 1)
    for k in range(int(math.ceil(target_radius_mm / pixel)), len(mean)):
        if count[k] and (k + 1) * pixel <= reach and mean[k] <= AUTO_SPREAD * level:
            inner = k * pixel
            return (inner, inner + AUTO_WIDTH_MM) if inner + AUTO_WIDTH_MM <= reach else edge
    return edge


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


def radial_fwhm_mm(image: np.ndarray, r: np.ndarray, ring_mm: float, reach_mm: float) -> float:
    """Full width at half maximum of ``image``'s azimuthal average about the point at distance
    ``r`` (mm, per pixel) zero: the mean over rings of width ``ring_mm``, each at its pixels' rms
    radius; the centre value extrapolated to r = 0 from the core's rings (linear in r², as a
    smooth peak is), and the half-maximum crossing interpolated linearly in r. NaN when the profile
    does not fall to half within ``reach_mm`` (the field's inscribed radius about the point, where
    every ring is complete) or there is no signal."""
    img, r = np.asarray(image, dtype=np.float64).ravel(), np.asarray(r, dtype=np.float64).ravel()
    ring = np.floor(r / ring_mm).astype(np.int64)
    n = int(ring.max()) + 1
    count = np.bincount(ring, minlength=n)
    ok = count > 0
    mean = (np.bincount(ring, weights=img, minlength=n)[ok] / count[ok])
    radius = np.sqrt(np.bincount(ring, weights=r * r, minlength=n)[ok] / count[ok])
    inside = radius <= reach_mm
    mean, radius = mean[inside], radius[inside]
    if mean.size < 3 or not mean[0] > 0:
        return float("nan")
    # the centre value: a line in r² through the core (the rings above 3/4 of the highest, at
    # least two), weighted by pixel count, so that a few noisy central pixels do not set it
    core = max(2, int(np.argmax(mean < 0.75 * mean.max())) or mean.size)
    w, x, y = count[ok][inside][:core].astype(np.float64), radius[:core] ** 2, mean[:core]
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    centre = ym - xm * float(np.sum(w * (x - xm) * (y - ym))) / sxx if sxx > 0 else mean[0]
    half = max(centre, mean[0]) / 2
    below = np.flatnonzero(mean < half)
    if not below.size or below[0] == 0:
        return float("nan")
    j = int(below[0])
    t = (mean[j - 1] - half) / (mean[j - 1] - mean[j])
    return float(2 * (radius[j - 1] + t * (radius[j] - radius[j - 1])))


def target_metrics(signal_e, background_e, camera: Camera, centre_mm, target_radius_mm: float,
                   background_annulus_mm=(3.0, 4.5), clutter: float = 0.0) -> TargetMetrics:
    """All metrics of one image pair (electrons per binned pixel); ``clutter`` is kappa, the
    background's relative pixel-to-pixel fluctuation (0: the camera's noise alone)."""
    if not (math.isfinite(clutter) and 0 <= clutter < 1):
        raise ValueError(f"clutter: must be in [0, 1) (a fraction of the background level), got {clutter!r}")
    signal_e = np.asarray(signal_e, dtype=np.float64)
    background_e = np.asarray(background_e, dtype=np.float64)
    target, ring = regions(camera, centre_mm, target_radius_mm, background_annulus_mm)
    total = signal_e + background_e
    i_t, i_b = total[target].mean(), total[ring].mean()
    # noise of a background pixel: the camera's (shot noise of everything it collects + dark + read)
    # and clutter, which scales with the pixel's level
    sigma_b = float(np.sqrt((pixel_variance(total[ring], camera) + (clutter * total[ring]) ** 2).mean()))
    pixel = camera.field_of_view_mm[0] / camera.binned_pixels[0]
    r = pixel_radius(camera, centre_mm)
    s_t, s_r = signal_e[target].mean(), signal_e[ring].mean()
    return TargetMetrics(
        sbr=float(i_t / i_b) if i_b > 0 else float("inf"),
        contrast=float((i_t - i_b) / (i_t + i_b)) if i_t + i_b > 0 else 0.0,
        cnr=float((s_t - s_r) / sigma_b) if sigma_b > 0 else float("nan"),
        snr=float(region_snr(signal_e, background_e, target, camera)),
        fwhm_mm=radial_fwhm_mm(signal_e, r, pixel, field_reach_mm(camera, centre_mm)),
        signal_target_e=float(s_t),
        background_target_e=float(background_e[target].mean()),
        signal_ring_e=float(s_r),
        background_ring_e=float(background_e[ring].mean()),
        background_spread=float(s_r / s_t) if s_t > 0 else float("nan"),
    )
