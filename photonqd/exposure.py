"""What a study's camera records of an image: the exposure it is taken with (fixed, or "auto": the
longest up to a limit that keeps the brightest pixel below a fraction of full well) and the clipping
of pixels whose charge exceeds the sensor's full well (docs/detection.md, "Camera limits").

Images come in detected photoelectrons per excitation photon on the camera's unbinned pixels (the
kernel's and the adjoint study's units); what leaves here is electrons per binned pixel over the
exposure, as the sensor reports them, and the camera with the exposure used.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .camera import Camera
from .noise import auto_exposure_s, electrons, saturation_e


def exposure_for(settings, image_per_photon, photons_per_s: float, camera: Camera) -> Camera:
    """``camera`` with the exposure ``settings`` (photonqd.study.config.CameraSettings) ask for: its
    exposure_s, or for "auto" the longest exposure up to max_exposure_s that keeps the brightest
    binned pixel of ``image_per_photon`` (all the light it collects, unbinned, per excitation photon)
    plus its dark charge below full_well_fraction of saturation (photonqd.noise.auto_exposure_s)."""
    if settings.exposure_s != "auto":
        return dataclasses.replace(camera, exposure_s=settings.exposure_s)
    per_second = dataclasses.replace(camera, exposure_s=1.0)
    rate = electrons(np.clip(image_per_photon, 0, None), photons_per_s, per_second)
    return dataclasses.replace(camera, exposure_s=auto_exposure_s(rate, per_second, settings.full_well_fraction,
                                                                  settings.max_exposure_s))


def recorded(signal_per_photon, background_per_photon, photons_per_s: float, camera: Camera):
    """(signal_e, background_e, saturated pixels): electrons per binned pixel over ``camera``'s
    exposure as the sensor records them. A pixel whose charge (with its dark charge) would exceed
    saturation holds saturation; its signal and background keep their proportion."""
    signal = electrons(np.clip(signal_per_photon, 0, None), photons_per_s, camera)
    background = electrons(np.clip(background_per_photon, 0, None), photons_per_s, camera)
    b = camera.binning
    room = max(saturation_e(camera) - camera.sensor.dark_current_e_per_s * camera.exposure_s * b * b, 0.0)
    total = signal + background
    over = total > room
    if not over.any():
        return signal, background, 0
    scale = np.where(over, room / np.where(total > 0, total, 1.0), 1.0)
    return signal * scale, background * scale, int(over.sum())
