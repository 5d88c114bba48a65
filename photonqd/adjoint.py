"""Detection probability of an isotropic emitter from the adjoint (camera-side) fluence.

A ``CameraLaunch`` over a detector footprint of area A, with numerical aperture
NA = n_ambient sin(theta_max), launched uniformly in projected solid angle inside the cone, gives
a fluence Phi(v) per launched photon. By reciprocity (docs/adjoint.md) the probability that a
photon emitted isotropically in voxel v (index n(v)) leaves through the footprint inside the
camera's cone is

    P(v) = G Phi(v) / (4 pi n(v)^2),   G = pi A n_ambient^2 sin^2(theta_max) = pi A NA^2,

that is P(v) = A NA^2 Phi(v) / (4 n(v)^2), exactly for the cone launch (not only at small NA).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .checks import real
from .sources import CameraLaunch


class Detection(NamedTuple):
    """P per voxel (nx, ny, nz), or (n_bands, nx, ny, nz) with Simulation.fluence_bands, and its
    batch-means standard error (None unless the run kept its fluence batches)."""

    probability: np.ndarray
    error: np.ndarray | None


def etendue(area_mm2: float, na: float) -> float:
    """Étendue (mm² sr) of a footprint of ``area_mm2`` seen through a cone of numerical aperture
    ``na`` in the ambient medium: n_ambient² A pi sin²(theta_max) = pi A NA²."""
    return math.pi * area_mm2 * na * na


def inverse_n2(sim, band_of_bin: np.ndarray) -> np.ndarray:
    """1 / n(v)² per band and voxel, averaged over the band's bins with the launch's bin
    probabilities (exact when n does not vary inside a band). Ambient voxels take n_ambient."""
    medium, source = sim.medium, sim.source
    p = source.bin_probabilities(medium.n_bins)
    n = medium.optics[:, :, 3].astype(np.float64).copy()      # (bins, labels)
    n[:, 0] = medium.n_ambient
    per_label = np.zeros((band_of_bin.max() + 1, n.shape[1]))
    for band in range(per_label.shape[0]):
        w = p * (band_of_bin == band)
        if w.sum() > 0:
            per_label[band] = (w[:, None] / n**2).sum(axis=0) / w.sum()
    return per_label[:, medium.labels]                         # (bands, nx, ny, nz)


def detection_probability(sim, result, area_mm2: float | None = None) -> Detection:
    """P(v) of docs/adjoint.md from the run ``result`` of ``sim`` (a Simulation with a
    CameraLaunch source, fluence tallied, specular reflection at entry).

    area_mm2: the footprint area A; default the CameraLaunch's own (footprint[0] x footprint[1]).
    Required for a point footprint, where it is the area the point stands for: a pixel's area when
    the medium is laterally invariant and the pixel small against the fluence's lateral scale, or
    the whole top face for a slab with mirror or cyclic sides (see docs/adjoint.md).

    The value is sum_b p_b P_b(v) over the launched bins (p_b = bin_weights / their sum). For an
    emitter whose spectrum s_b (sum 1) is detected with efficiency eta_b and a launch with
    bin_weights w_b = s_b eta_b, the detected fraction is sum_b w_b times it. With fluence_bands,
    band k holds the sum over its bins only (the bands add up to the total).
    """
    source = sim.source
    if not isinstance(source, CameraLaunch):
        raise TypeError("sim.source: detection_probability needs a photonqd.CameraLaunch run")
    if not source.specular:
        raise ValueError("sim.source.specular: must be True; reciprocity with the forward exit needs the "
                         "Fresnel loss at entry removed from the weight")
    if result.fluence is None:
        raise ValueError("result.fluence: the run did not tally fluence (Simulation.fluence=True)")
    if area_mm2 is None:
        if source.area <= 0:
            raise ValueError("area_mm2: a point footprint needs the area it stands for (mm² > 0)")
        area_mm2 = source.area
    area = real("area_mm2", area_mm2, "> 0 mm²")
    if not (math.isfinite(area) and area > 0):
        raise ValueError(f"area_mm2: must be a finite area > 0 mm², got {area_mm2!r}")

    banded = sim.fluence_bands is not None
    bands = np.asarray(sim.fluence_bands if banded else np.zeros(sim.medium.n_bins), dtype=np.int64)
    factor = etendue(area, source.na) / (4.0 * math.pi) * inverse_n2(sim, bands)
    if not banded:
        factor = factor[0]
    probability = factor * result.fluence
    error = None
    batches = result.batch_tallies or []
    if len(batches) >= 2 and all("fluence" in b for b in batches):
        _, sd = _batch_mean_error(np.stack([b["fluence"] for b in batches]), result.batch_photons)
        error = factor * sd
    return Detection(probability, error)


def _batch_mean_error(values: np.ndarray, photons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Photon-weighted mean over the first axis (batches) and its batch-means standard error,
    element by element (tallies.batch_mean_error for arrays)."""
    w = np.asarray(photons, dtype=np.float64).reshape((-1,) + (1,) * (values.ndim - 1))
    mean = (w * values).sum(axis=0) / w.sum()
    k = values.shape[0]
    var = (w * (values - mean) ** 2).sum(axis=0) / w.sum() * k / (k - 1)
    return mean, np.sqrt(var / k)
