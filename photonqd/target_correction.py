"""The target's own optics in the adjoint depth study: correlated field pairs with and without it.

The pooled fields (photonqd.adjoint_study) hold the phantom without its target (Born). The QD
signal a camera region R collects is the overlap over the target T of the excitation fluence and
R's detection field (docs/adjoint.md, "Signals from fields"):

    S_R  proportional to  sum_{v in T} Phi_ex(v) D_R(v)        (the QD fills T uniformly)

At each depth both fields are run twice, in the phantom with its target and without it, with the
same seed, stream and photon indices: the excitation disk beam once, and per probe an adjoint
launch from one camera pixel at each of two distances s from the target's axis, the two places
the metrics read (``NODES``: on the axis, under the target region, and at the background annulus'
mean radius). With the target: its tissue, and in the adjoint runs its QD too (re-absorption of
its own emission); the excitation is tissue only, the QD excited through the stored fluence as in
the forward path. The ratio

    rho(s) = sum_T Phi_ex,with D_s,with / sum_T Phi_ex,without D_s,without

corrects the Born image: a pixel at distance s from the axis is multiplied by rho interpolated
linearly in s between the nodes (held constant beyond them). The phantom, the target and the
beam are symmetric about the axis, so one pixel stands for every pixel at its distance. The
regions' signals, from which CNR, SNR, SBR and contrast are computed, are so corrected to first
order in how rho varies inside each region, the image's shape (FWHM) to first order in s.

Photons follow identical paths until they meet the target, so each ratio carries only the noise
of what the target changes: where only absorption differs, paths stay identical and the ratio is
nearly exact. The runs use the phantom cropped around the target (``CROP_MARGIN_MM`` beyond the
beam and the annulus sideways, below the target's bottom): photons that leave the crop and would
come back change both runs alike, so the crop enters the ratio only at second order.
Errors: batch pseudo-values of each ratio (linearised), one group per independent pair.
Autofluorescence and leakage are not corrected (the target's own autofluorescence and its shadow
on the tissue's are left out; ``study --verify`` measures them).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .adjoint_imaging import _band_bins, region_adjoint
from .camera import Camera
from .fluorescence import _bin_weights
from .kernel_abi import rng_stream_id
from .optics import qd_preset
from .scene import Scene
from .simulation import Simulation
from .sources import DiskSource

#: Margin (mm) of the cropped phantom beyond the beam and the annulus, and below the target.
CROP_MARGIN_MM = 3.0
#: Batches of each correction run.
BATCHES = 10
#: Where the adjoint pairs are launched: on the target's axis, and at the background annulus.
NODES = ("axis", "background")


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
class Pair:
    """One field's runs with and without the target: the field over the target's voxels per batch
    (J, m) and the photons of each batch (J,)."""

    with_target: np.ndarray
    without: np.ndarray
    photons: np.ndarray

    def mean(self, which: str) -> np.ndarray:
        w = self.photons / self.photons.sum()
        return np.tensordot(w, getattr(self, which), axes=1)


@dataclasses.dataclass
class Correction:
    """One depth's correction: the excitation pair, and per probe the adjoint pair of each node
    (``NODES``) with the node's distance from the target's axis (mm)."""

    excitation: Pair
    detection: dict               # probe -> {node: Pair}
    radius_mm: dict               # node -> distance from the axis, mm
    photons: int

    def ratio(self, probe: str, node: str, ex_batch: int | None = None, adj_batch: int | None = None) -> float:
        """rho of one node: with each field's mean, or one batch of one of them in its place."""
        ex, adj = self.excitation, self.detection[probe][node]
        parts = []
        for which in ("with_target", "without"):
            phi = ex.mean(which) if ex_batch is None else getattr(ex, which)[ex_batch]
            d = adj.mean(which) if adj_batch is None else getattr(adj, which)[adj_batch]
            parts.append(float(np.dot(phi, d)))
        return parts[0] / parts[1] if parts[1] > 0 else 1.0

    def ratio_batches(self, probe: str, node: str, run: str) -> np.ndarray:
        """Linearised pseudo-values of rho per batch of ``run`` ("excitation" or "detection"), the
        other field at its mean: rho + (a_j - rho b_j) / mean(b), whose batch-means error is the
        ratio's share from that run."""
        pair = self.excitation if run == "excitation" else self.detection[probe][node]
        rho = self.ratio(probe, node)
        fixed = self.detection[probe][node] if run == "excitation" else self.excitation
        a = getattr(pair, "with_target") @ fixed.mean("with_target")
        b = getattr(pair, "without") @ fixed.mean("without")
        mean_b = float(pair.photons @ b / pair.photons.sum())
        return rho + (a - rho * b) / mean_b if mean_b > 0 else np.ones(len(b))

    def factor_image(self, probe: str, camera: Camera, axis, ratios: dict | None = None) -> np.ndarray:
        """Per unbinned pixel, the ratio interpolated linearly in the distance from the axis between
        the nodes (``ratios``: node -> rho, default each node's mean)."""
        ratios = ratios or {r: self.ratio(probe, r) for r in NODES}
        s = pixel_radius_unbinned(camera, axis)
        radii = [self.radius_mm[r] for r in NODES]
        return np.interp(s, radii, [ratios[r] for r in NODES])

    def variants(self, probe: str, camera: Camera, axis) -> dict:
        """{run name: (factor image per batch, photons per batch)} for the errors: the excitation
        pair's batches move every node's ratio together; each node's adjoint pair moves its own."""
        mean = {r: self.ratio(probe, r) for r in NODES}
        out = {"target excitation": (
            [self.factor_image(probe, camera, axis, dict(zip(NODES, values)))
             for values in zip(*(self.ratio_batches(probe, r, "excitation") for r in NODES))],
            self.excitation.photons)}
        for node in NODES:
            pair = self.detection[probe][node]
            out[f"target {node} detection"] = (
                [self.factor_image(probe, camera, axis, {**mean, node: v})
                 for v in self.ratio_batches(probe, node, "detection")], pair.photons)
        return out


def pixel_radius_unbinned(camera: Camera, axis) -> np.ndarray:
    """Distance (mm) of every unbinned pixel's centre from ``axis`` (x, y)."""
    px, py = camera.pixel_size_mm
    x = camera.centre_mm[0] - camera.field_of_view_mm[0] / 2 + (np.arange(camera.pixels[0]) + 0.5) * px
    y = camera.centre_mm[1] - camera.field_of_view_mm[1] / 2 + (np.arange(camera.pixels[1]) + 0.5) * py
    return np.hypot(x[:, None] - axis[0], y[None, :] - axis[1])


def run_correction(config, scene: Scene, axis, cameras: dict, photons: int, backend=None,
                   progress=None) -> Correction:
    """The correlated pairs at one depth (``scene``: the phantom with its target; ``axis``: the
    target's (x, y) in mm; ``cameras``: probe name -> Camera)."""
    excitation = config.excitation_for(axis)
    annulus = config.camera.background_annulus_mm
    radius = {"axis": 0.0, "background": 0.5 * (annulus[0] + annulus[1])}
    crop = crop_around(scene, axis, max(excitation.source.radius, annulus[1]) + CROP_MARGIN_MM)
    with_target = _cropped(scene, crop)
    without = with_target.without_target()
    target = with_target.target
    local_axis = tuple(np.asarray(axis) - np.asarray(crop.shift_mm))
    batch = -(-photons // BATCHES)

    def pair(run) -> Pair:
        a, b = run(with_target, True), run(without, False)
        return Pair(np.asarray(a[0]), np.asarray(b[0]), np.asarray(a[1], dtype=np.float64))

    source = DiskSource((local_axis[0], local_axis[1], 0.0), radius=excitation.source.radius)

    def excite(s, _):
        medium, _ = s.medium([excitation.wavelength_nm], fluorophores=[])
        r = Simulation(medium, source, photons=photons, seed=config.seed, rng_stream=rng_stream_id("excitation"),
                       batch_photons=batch, keep_batches=("fluence",),
                       reduce_batch=lambda b: b["fluence"][target]).run(backend, progress)
        return r.batch_tallies, r.batch_photons

    ex = pair(excite)
    detection = {}
    for index, probe in enumerate(config.probes):
        camera = cameras[probe.name]
        qd = qd_preset(probe.quantum_dot)
        edges, centres = _band_bins(camera, 10.0)
        weights = np.prod(_bin_weights(qd.emission.pdf, edges, camera), axis=0)
        detection[probe.name] = {}
        for k, node in enumerate(NODES):
            # one pixel centred at the node's distance from the axis, along +x
            px, py = camera.pixel_size_mm
            pixel = Camera((px, py), (1, 1), (local_axis[0] + radius[node], local_axis[1]), camera.numerical_aperture,
                           camera.emission_filter, camera.sensor, camera.exposure_s)

            def detect(s, labelled, pixel=pixel, stream=len(NODES) * index + k, qd=qd, centres=centres):
                if labelled:   # the QD absorbs its own emission, as in the forward path
                    s = s.with_fluorophore(qd, np.where(target, probe.concentration_uM, 0.0))
                medium, _ = s.medium(centres)
                run = region_adjoint(medium, pixel, np.ones((1, 1), bool), weights, photons, BATCHES,
                                     config.seed + 1, stream, backend, progress, reduce=lambda d: d[target])
                return run.batches, np.full(BATCHES, run.photons / BATCHES)

            detection[probe.name][node] = pair(detect)
    return Correction(ex, detection, radius, photons)
