"""The target's own optics in the adjoint depth study: correlated field pairs with and without it.

The pooled fields (photonqd.adjoint_study) hold the phantom without its target (Born). The QD
signal a camera region R collects is the overlap over the target T of the excitation fluence and
R's detection field (docs/adjoint.md, "Signals from fields"):

    S_R  proportional to  sum_{v in T} Phi_ex(v) D_R(v)        (the QD fills T uniformly)

At each depth both fields are run twice, in the phantom with its target and without it, with the
same seed, stream and photon indices: the excitation disk beam once per excitation wavelength of
the probes, and per probe an adjoint launch from the camera pixel over the target's axis. With the target: its tissue, and in the
adjoint runs its QD too (re-absorption of its own emission); the excitation is tissue only, the QD
excited through the stored fluence as in the forward path, unless the QD shadows itself
(photonqd.study.run.shadowed: then it is in the with-target excitation run, one pair per such probe). The ratio

    rho = sum_T Phi_ex,with D_with / sum_T Phi_ex,without D_without

multiplies the Born image: exact for the pixel over the axis, first order in how the ratio varies
across the field elsewhere. (A second pair from a pixel at the background annulus gave ratios
within their errors of the axis pixel's at 0.25-9 mm on the default phantom, but so few of its
photons reach a shallow target that its noise, through the ring's shot noise in the CNR, swamped
the CNR's error: it is not run.)

Photons follow identical paths until they meet the target, so each ratio carries only the noise
of what the target changes: where only absorption differs, paths stay identical and the ratio is
nearly exact. The runs use the phantom cropped around the target (``CROP_MARGIN_MM`` beyond the
beam sideways, below the target's bottom): photons that leave the crop and would
come back change both runs alike, so the crop enters the ratio only at second order.
Errors: batch pseudo-values of each ratio (linearised), one group per independent pair.
Autofluorescence, leakage and the QD's uptake outside the target are not corrected (the target's
own autofluorescence and its shadow on the tissue's are left out; ``study --verify`` measures them),
and the pairs run without the uptake: it changes both runs of a pair alike, so the ratio only at
second order.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .adjoint_imaging import _band_bins, region_adjoint
from .camera import Camera
from .fluorescence import _bin_weights
from .kernel_abi import rng_stream_id
from .study.run import shadowed, target_fluorophore
from .scene import Scene
from .simulation import Simulation
from .sources import DiskSource

#: Margin (mm) of the cropped phantom beyond the beam and below the target.
CROP_MARGIN_MM = 3.0
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
    """One depth's correction: per probe the excitation pair (of its excitation wavelength,
    shared by the probes that share it) and the adjoint pair."""

    excitation: dict              # probe -> Pair
    detection: dict               # probe -> Pair
    photons: int

    def ratio(self, probe: str, ex_batch: int | None = None, adj_batch: int | None = None) -> float:
        """rho: with each field's mean, or one batch of one of them in its place."""
        ex, adj = self.excitation[probe], self.detection[probe]
        parts = []
        for which in ("with_target", "without"):
            phi = ex.mean(which) if ex_batch is None else getattr(ex, which)[ex_batch]
            d = adj.mean(which) if adj_batch is None else getattr(adj, which)[adj_batch]
            parts.append(float(np.dot(phi, d)))
        return parts[0] / parts[1] if parts[1] > 0 else 1.0

    def ratio_batches(self, probe: str, run: str) -> np.ndarray:
        """Linearised pseudo-values of rho per batch of ``run`` ("excitation" or "detection"), the
        other field at its mean: rho + (a_j - rho b_j) / mean(b), whose batch-means error is the
        ratio's share from that run."""
        pair, fixed = (self.excitation[probe], self.detection[probe]) if run == "excitation" else \
            (self.detection[probe], self.excitation[probe])
        rho = self.ratio(probe)
        a = pair.with_target @ fixed.mean("with_target")
        b = pair.without @ fixed.mean("without")
        mean_b = float(pair.photons @ b / pair.photons.sum())
        return rho + (a - rho * b) / mean_b if mean_b > 0 else np.ones(len(b))

    def variants(self, probe: str) -> dict:
        """{run name: (rho per batch, photons per batch)} for the errors; the two pairs are independent."""
        return {"target excitation": (self.ratio_batches(probe, "excitation"), self.excitation[probe].photons),
                "target detection": (self.ratio_batches(probe, "detection"), self.detection[probe].photons)}


def run_correction(config, scene: Scene, axis, cameras: dict, photons: int, backend=None,
                   progress=None) -> Correction:
    """The correlated pairs at one depth (``scene``: the phantom with its target; ``axis``: the
    target's (x, y) in mm; ``cameras``: probe name -> Camera)."""
    radius = config.excitation.beam_radius_mm
    crop = crop_around(scene, axis, radius + CROP_MARGIN_MM)
    with_target = _cropped(scene, crop)
    without = with_target.without_target()
    target = with_target.target
    local_axis = tuple(np.asarray(axis) - np.asarray(crop.shift_mm))
    batch = -(-photons // BATCHES)

    def pair(run) -> Pair:
        a, b = run(with_target, True), run(without, False)
        return Pair(np.asarray(a[0]), np.asarray(b[0]), np.asarray(a[1], dtype=np.float64))

    source = DiskSource((local_axis[0], local_axis[1], 0.0), radius=radius)

    def excite(wavelength, shadowing_probe=None):
        def run(s, labelled):
            # a target that shadows itself holds its QD during the excitation (photonqd.study.run.shadowed)
            fluorophores = [target_fluorophore(config, s, shadowing_probe)] if labelled and shadowing_probe else []
            medium, _ = s.medium([wavelength], fluorophores=fluorophores)
            r = Simulation(medium, source, photons=photons, seed=config.seed, rng_stream=rng_stream_id("excitation"),
                           batch_photons=batch, keep_batches=("fluence",),
                           reduce_batch=lambda b: b["fluence"][target]).run(backend, progress)
            return r.batch_tallies, r.batch_photons
        return run

    pairs = {}                    # excitation wavelength, or a self-shadowing probe's name -> Pair
    ex = {}
    for probe in config.probes:
        wavelength = config.excitation_for(axis, probe).wavelength_nm
        own = shadowed(config, scene, probe)
        key = probe.name if own else wavelength
        if key not in pairs:
            pairs[key] = pair(excite(wavelength, probe if own else None))
        ex[probe.name] = pairs[key]
    detection = {}
    for index, probe in enumerate(config.probes):
        camera = cameras[probe.name]
        qd = config.quantum_dot(probe.quantum_dot)
        edges, centres = _band_bins(camera, 10.0)
        weights = np.prod(_bin_weights(qd.emission.pdf, edges, camera), axis=0)
        px, py = camera.pixel_size_mm
        pixel = Camera((px, py), (1, 1), local_axis, camera.numerical_aperture, camera.emission_filter,
                       camera.sensor, camera.exposure_s)

        def detect(s, labelled, stream=index, qd=qd, centres=centres):
            if labelled:   # the QD absorbs its own emission, as in the forward path
                s = s.with_fluorophore(qd, np.where(target, probe.concentration_uM, 0.0))
            medium, _ = s.medium(centres)
            run = region_adjoint(medium, pixel, np.ones((1, 1), bool), weights, photons, BATCHES,
                                 config.seed + 1, stream, backend, progress, reduce=lambda d: d[target])
            return run.batches, np.full(BATCHES, run.photons / BATCHES)

        detection[probe.name] = pair(detect)
    return Correction(ex, detection, photons)
