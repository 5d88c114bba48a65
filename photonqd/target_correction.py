"""The target's own optics in the adjoint depth study: correlated runs with and without it.

The pooled fields (photonqd.adjoint_study) hold the phantom without its target (Born). At each
depth the QD image is corrected by

    S = S_Born(pooled) + [S_with - S_without]

where the bracket comes from a pair of forward runs that differ only in the target voxels: the
excitation disk beam (fluence summed over the target) and, per probe, the QD emission from the
target into the camera (exit map), each pair launched with the same seed, stream and photon
indices. Photons follow identical paths until they meet the target, so the difference carries
only the noise of what the target changes; where the target's scattering and index equal its
host's (an absorption contrast only), paths stay identical and the difference is nearly exact.
E[S_without] = S_Born, so the sum is an unbiased estimate of the image with the target in place
(the excitation enters as the ratio kappa of the target's summed fluence with and without it,
first order in how that ratio varies across the target).

The runs use the phantom cropped around the target (``CROP_MARGIN_MM`` beyond the beam and the
field of view sideways, below the target's bottom): photons that leave the crop and would come
back change both runs alike, so the crop costs the difference only at second order.
Autofluorescence and leakage are not corrected (the target's own autofluorescence and its
shadow on the tissue's are left out; ``study --verify`` measures them).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .adjoint_imaging import _band_bins
from .fluorescence import _bin_weights
from .kernel_abi import rng_stream_id
from .optics import qd_preset
from .scene import Scene
from .simulation import Simulation
from .sources import DiskSource, VoxelEmission
from .tallies import batch_mean_error

#: Margin (mm) of the cropped phantom beyond the beam / field of view and below the target.
CROP_MARGIN_MM = 6.0
#: Batches of each correction run.
BATCHES = 10


@dataclasses.dataclass
class Crop:
    """Index ranges of the cropped phantom and its origin shift (mm)."""

    x: slice
    y: slice
    z: slice
    shift_mm: tuple


def crop_around(scene: Scene, axis, half_width_mm: float) -> Crop:
    voxel = np.broadcast_to(np.asarray(scene.voxel_size, dtype=np.float64), (3,))
    nx, ny, nz = scene.labels.shape
    zs = np.flatnonzero(scene.target.any(axis=(0, 1)))
    z1 = min(nz, int(zs.max()) + 1 + int(math.ceil(CROP_MARGIN_MM / voxel[2])))

    def span(centre, n, size):
        lo = max(0, int(math.floor((centre - half_width_mm) / size)))
        hi = min(n, int(math.ceil((centre + half_width_mm) / size)))
        return slice(lo, hi)

    sx, sy = span(axis[0], nx, voxel[0]), span(axis[1], ny, voxel[1])
    return Crop(sx, sy, slice(0, z1), (sx.start * voxel[0], sy.start * voxel[1]))


def _cropped(scene: Scene, crop: Crop) -> Scene:
    labels = np.ascontiguousarray(scene.labels[crop.x, crop.y, crop.z])
    target = np.ascontiguousarray(scene.target[crop.x, crop.y, crop.z])
    return scene.with_labels(labels, target)


@dataclasses.dataclass
class Correction:
    """One depth's correction: kappa (target fluence with / without the target) per excitation
    batch, and per probe the emission images with and without the target per batch (unbinned
    camera pixels, detected per launched emission photon) and their scale."""

    kappa_with: np.ndarray          # (K,) summed target fluence with the target, per batch
    kappa_without: np.ndarray       # (K,) ... without it
    kappa_photons: np.ndarray
    images: dict                    # probe -> (with (J, nx, ny), without (J, nx, ny), photons (J,))
    photons: int

    @property
    def kappa(self) -> float:
        """Ratio of the target's summed fluence with and without it (1 when no photon reached it)."""
        w = self.kappa_photons
        below = (w * self.kappa_without).sum()
        return float((w * self.kappa_with).sum() / below) if below > 0 else 1.0

    def kappa_batches(self) -> np.ndarray:
        """Pseudo-values of kappa per batch (linearised ratio: kappa + (a_k - kappa b_k) / mean b),
        whose batch-means error is the ratio's."""
        w = self.kappa_photons / self.kappa_photons.sum()
        mean_b = (w * self.kappa_without).sum()
        if not mean_b > 0:
            return np.ones_like(self.kappa_with)
        return self.kappa + (self.kappa_with - self.kappa * self.kappa_without) / mean_b

    def delta(self, probe: str, scale: float, kappa: float | None = None, batch: int | None = None) -> np.ndarray:
        """S_with - S_without (per excitation photon, unbinned pixels) for one probe; with the
        excitation ratio ``kappa`` (default its mean) and the emission pair's batch (default mean)."""
        with_, without, photons = self.images[probe]
        k = self.kappa if kappa is None else kappa
        if batch is None:
            w = photons / photons.sum()
            a, b = np.tensordot(w, with_, axes=1), np.tensordot(w, without, axes=1)
        else:
            a, b = with_[batch], without[batch]
        return scale * (k * a - b)


def run_correction(config, scene: Scene, axis, source_per_voxel: dict, cameras: dict,
                   photons: int, backend=None, progress=None) -> Correction:
    """The correlated pairs at one depth. source_per_voxel: probe -> q_Born (m,) over the target's
    voxels (np.argwhere order) in emitted photons per excitation photon; cameras: probe -> Camera."""
    from .adjoint_study import tissue_only

    excitation = config.excitation_for(axis)
    fov = max(config.camera.field_of_view_mm * math.sqrt(0.5), excitation.source.radius)
    crop = crop_around(scene, axis, fov + CROP_MARGIN_MM)
    with_target = _cropped(scene, crop)
    without = tissue_only(with_target)
    target = with_target.target
    local_axis = (axis[0] - crop.shift_mm[0], axis[1] - crop.shift_mm[1])
    batch = -(-photons // BATCHES)

    def pair(make):
        out = []
        for s in (with_target, without):
            sim = make(s)
            out.append(sim.run(backend, progress))
        return out

    source = DiskSource((local_axis[0], local_axis[1], 0.0), radius=excitation.source.radius)

    def excite(s):
        medium, _ = s.medium([excitation.wavelength_nm], fluorophores=[])
        return Simulation(medium, source, photons=photons, seed=config.seed, rng_stream=rng_stream_id("excitation"),
                          batch_photons=batch, keep_batches=("fluence",),
                          reduce_batch=lambda b: float(b["fluence"][target].sum()))

    ex_with, ex_without = pair(excite)
    images = {}
    voxels = np.argwhere(target)
    for index, probe in enumerate(config.probes):
        camera = cameras[probe.name]
        edges, centres = _band_bins(camera, 10.0)
        qd = qd_preset(probe.quantum_dot)
        weights, efficiency = _bin_weights(qd.emission.pdf, edges, camera)
        density = np.zeros(target.shape)
        density[tuple(voxels.T)] = np.clip(source_per_voxel[probe.name], 0, None)
        if not density.sum() > 0 or not weights.sum() > 0:
            continue
        emitter = VoxelEmission(density=density, bin_weights=weights)
        exit_map = dataclasses.replace(camera.exit_map(with_target),
                                       origin=(camera.centre_mm[0] - camera.field_of_view_mm[0] / 2 - crop.shift_mm[0],
                                               camera.centre_mm[1] - camera.field_of_view_mm[1] / 2 - crop.shift_mm[1]),
                                       bin_efficiency=efficiency)

        def emit(s, qd=qd, centres=centres):
            if s is with_target:   # the QD absorbs its own emission too, as in the forward path
                s = s.with_fluorophore(qd, np.where(target, probe.concentration_uM, 0.0))
            medium, _ = s.medium(centres)
            return Simulation(medium, emitter, photons=photons, seed=config.seed, fluence=False,
                              rng_stream=rng_stream_id("species", index), exit_map=exit_map,
                              batch_photons=batch, keep_batches=("exit_map",))

        em_with, em_without = pair(emit)
        images[probe.name] = (np.stack([b["exit_map"] for b in em_with.batch_tallies]),
                              np.stack([b["exit_map"] for b in em_without.batch_tallies]),
                              np.asarray(em_with.batch_photons, dtype=np.float64))
    return Correction(np.array(ex_with.batch_tallies), np.array(ex_without.batch_tallies),
                      np.asarray(ex_with.batch_photons, dtype=np.float64), images, photons)


def ratio_error(c: Correction) -> float:
    """Batch-means standard error of kappa."""
    return batch_mean_error(c.kappa_batches(), c.kappa_photons)[1]
