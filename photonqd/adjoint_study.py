"""The depth study by reciprocity: every target depth from one excitation run and one adjoint run
per probe and emitter (docs/adjoint.md, "The depth study").

The phantom without its target is laterally invariant (layers). There:

* the excitation fluence Phi_ex and tissue absorption of a disk beam centred on the target's axis
  depend on (rho, z) only: one pencil-beam run on the axis, pooled in rings
  (photonqd.pooled_fields), gives the disk beam's as its disk average;
* the detection density of an isotropic emitter at lateral offset s and depth z, per unit detector
  area, is d(s, z) = (sum_b s_b eta_b) NA^2 Phi+(s, z) / (4 n(z)^2) (photonqd.adjoint) from one
  point launch from the camera side on the axis, pooled the same way; a pixel collects
  P_p(v) = integral of d over the pixel (2 x 2 Gauss points).

A QD target at depth D (the generator's own target mask at D) emits q(v) = QY mu_a,QD c V Phi_ex
per excitation photon from each of its voxels, and the image is S_p = N_ex t sum_v q(v) P_p(v).
Autofluorescence (q = Y_AF x absorbed, every voxel) and excitation leakage (the excitation run's
pooled escape) do not depend on D. So every depth costs a sum over the target's voxels, no
transport. The target's own optics (tumour tissue instead of its host layer) are left out of the
fields (Born approximation): ``--verify`` measures what that costs against the forward path,
which includes them, and study.correction_photons adds them by correlated pairs
(photonqd.target_correction).

Errors: the excitation run and each adjoint run are independent runs of K batches. Every metric
is recomputed with one run's batch k in place of its mean (the others at their means); the
batch-means variance of those values is that run's share, and the shares add.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import numpy as np

from .adjoint import etendue
from .adjoint_imaging import _autofluorescence_groups, _band_bins
from .camera import Camera
from .fluorescence import _bin_weights
from .kernel_abi import rng_stream_id
from .exposure import exposure_for, recorded
from .metrics import TargetMetrics, auto_annulus, target_metrics
from .pooled_fields import PooledField, RingGeometry, disk_average_matrix, interpolate
from .scene import Fluorophore, NotLaterallyInvariant, Scene
from .simulation import ExitMap, Simulation
from .sources import CameraLaunch, PencilBeam

#: Batches of every field run (batch-means errors).
BATCHES = 10
#: Metrics that get a Monte Carlo error.
METRIC_NAMES = ("sbr", "contrast", "cnr", "snr", "fwhm_mm", "signal_target_e", "background_target_e",
                "signal_ring_e", "background_ring_e", "background_spread")


@dataclass
class Emission:
    """One emitter seen through one probe's camera: its pooled detection density d(s, z) (per mm²
    of detector) and, for autofluorescence, its yield per absorbed excitation photon per layer."""

    name: str
    density: PooledField
    layer_yield: np.ndarray | None      # (nz,) autofluorescence only
    simulation: Simulation              # the adjoint run (extended by more photons on demand)
    scale: np.ndarray                   # (nz,) fluence -> density factor per layer

    @property
    def photons(self) -> int:
        return int(self.density.photons.sum())


def _pool(rings: RingGeometry, names):
    def pooled(name, array):
        if name == "exit_map":
            return rings.pool_map(array)
        return rings.pool(array.sum(axis=0) if name == "species" else array)    # every species together
    def reduce(arrays: dict) -> dict:
        return {k: pooled(k, arrays[k]) for k in names}
    return reduce


def _batches(result, name: str, transform=lambda x: x) -> PooledField:
    return PooledField(np.stack([transform(b[name]) for b in result.batch_tallies]),
                       np.asarray(result.batch_photons, dtype=np.float64))


def _more(sim: Simulation, photons: int, backend, progress):
    """``photons`` more photons of a run, continuing its photon sequence (same stream)."""
    first = sim.first_photon + sim.photons
    more = dataclasses.replace(sim, photons=int(photons), first_photon=first,
                               batch_photons=-(-int(photons) // BATCHES))
    return more, more.run(backend, progress)


@dataclass
class ExcitationField:
    """One excitation run, pooled: a pencil beam on the target's axis at one wavelength, through
    the tissue with the probes' non-specific uptake (a QD at c/TBR everywhere) where they have one;
    as fields of the disk beam (disk averages, by lateral invariance)."""

    key: tuple                  # StudyConfig.excitation_key: (wavelength nm, uptake QD, its µM)
    simulation: Simulation      # extended by more photons on demand
    fluence: PooledField
    absorbed: PooledField       # by the tissue (autofluorescence's source), not by the uptake
    escape: PooledField         # excitation escaping into the camera's cone, per mm²

    @property
    def photons(self) -> int:
        return int(self.fluence.photons.sum())

    @property
    def name(self) -> str:
        wavelength, qd, uptake = self.key
        return f"excitation {wavelength:g} nm" + (f", {qd} uptake {uptake:.3g} uM" if uptake else "")


class StudyFields:
    """Everything a depth study needs from transport, for every depth at once: the excitation
    runs (one per distinct probe wavelength and uptake) and one adjoint run per probe and emitter,
    all pooled in rings about the target's axis."""

    def __init__(self, config, scene: Scene, backend=None, progress=None,
                 excitation_photons: int | None = None, adjoint_photons: int | None = None):
        from .study import target_centre

        self.config, self.backend, self.progress = config, backend, progress
        self.free = free = scene.without_target()
        self.axis = target_centre(scene)
        self.rings = rings = RingGeometry(free.labels.shape, free.voxel_size, self.axis)
        self.voxel = np.broadcast_to(np.asarray(free.voxel_size, dtype=np.float64), (3,))
        self._disk = disk_average_matrix(rings, config.excitation.beam_radius_mm)
        self.seconds = {}
        self.excitations = {}               # excitation key -> ExcitationField
        n_ex = int(excitation_photons or config.photons)
        for probe in config.probes:
            key = config.excitation_key(probe)
            if key not in self.excitations:
                start = time.perf_counter()
                field = self._excite(key, n_ex)
                self.excitations[key] = field
                self.seconds[field.name] = time.perf_counter() - start
        self.emissions = {}                 # probe name -> {emitter name: Emission}
        n_adj = int(adjoint_photons or config.adjoint_photons)
        shared = {}                         # detection key -> the first probe's emissions
        shared_af = {}                      # autofluorescence: (window, sensor, uptake, emitter) -> its run
        for probe in config.probes:
            key = self.detection_key(probe)
            if key in shared:               # e.g. a gated and an ungated probe: the same runs
                self.emissions[probe.name] = shared[key]
                continue
            self.emissions[probe.name] = shared[key] = {}
            for name, pdf, layer_yield in self._emitters(probe):
                # autofluorescence does not depend on the probe's QD (but for its uptake, which absorbs):
                # probes that share a window and sensor share its runs (multiplexed species, photonqd.multiplex)
                af_key = (probe.window_nm, probe.sensor, self._uptake_key(probe), name)
                if layer_yield is not None and af_key in shared_af:
                    self.emissions[probe.name][name] = shared_af[af_key]
                    continue
                start = time.perf_counter()
                emission = self._adjoint(probe, name, pdf, layer_yield, n_adj)
                if emission is not None:
                    self.emissions[probe.name][name] = emission
                    if layer_yield is not None:
                        shared_af[af_key] = emission
                self.seconds[f"{probe.name}: {name}"] = time.perf_counter() - start

    @staticmethod
    def _uptake_key(probe) -> tuple:
        uptake = probe.background_concentration_uM
        return (probe.quantum_dot, uptake) if uptake > 0 else ("", 0.0)

    def detection_key(self, probe) -> tuple:
        """What a probe's adjoint runs depend on: its QD's spectrum, window, sensor and uptake."""
        return (probe.quantum_dot, probe.window_nm, probe.sensor, probe.background_concentration_uM)

    def excitation_of(self, probe) -> ExcitationField:
        return self.excitations[self.config.excitation_key(probe)]

    def _uptake(self, qd: str, uptake_uM: float) -> list:
        """The uptake as the medium's fluorophores: c/TBR in every tissue voxel (none: [])."""
        if not uptake_uM:
            return []
        labels = self.free.labels
        return [Fluorophore(self.config.quantum_dot(qd), np.where(labels > 0, uptake_uM, 0.0))]

    def _excite(self, key: tuple, photons: int) -> ExcitationField:
        wavelength, qd, uptake = key
        fluorophores = self._uptake(qd, uptake)
        medium, _ = self.free.medium([wavelength], fluorophores=fluorophores)
        camera = self.config.camera_for(self.config.probes[0], self.axis)
        surface = ExitMap(self.free.labels.shape[:2], tuple(self.voxel[:2]), (0.0, 0.0),
                          camera.acceptance_half_angle_deg(medium.n_ambient))
        names = ("fluence", "absorbed", "exit_map") + (("species",) if fluorophores else ())
        sim = Simulation(medium, PencilBeam((self.axis[0], self.axis[1], 0.0)), photons=photons,
                         seed=self.config.seed, exit_map=surface, rng_stream=rng_stream_id("excitation"),
                         batch_photons=-(-photons // BATCHES), keep_batches=names,
                         reduce_batch=_pool(self.rings, names))
        return ExcitationField(key, sim, *self._excitation_fields(sim.run(self.backend, self.progress)))

    def _excitation_fields(self, result):
        disk, area = self._disk, float(np.prod(self.voxel[:2]))

        def tissue_absorbed(batch):        # the uptake's share is the QD's, not autofluorescence's
            return batch["absorbed"] - batch["species"] if "species" in batch else batch["absorbed"]

        return (_batches(result, "fluence", lambda f: f @ disk.T),
                PooledField(np.stack([tissue_absorbed(b) @ disk.T for b in result.batch_tallies]),
                            np.asarray(result.batch_photons, dtype=np.float64)),
                _batches(result, "exit_map", lambda f: f @ disk.T / area))

    def _emitters(self, probe):
        """(name, emission pdf, autofluorescence yield per layer or None) seen by ``probe``."""
        free = self.free
        out = [(probe.quantum_dot, self.config.quantum_dot(probe.quantum_dot).emission.pdf, None)]
        for g, (spectrum, labels) in enumerate(_autofluorescence_groups(free)):
            per_label = np.zeros(max(free.tissues) + 1)
            for label in labels:
                per_label[label] = free.autofluorescence_of(label).yield_per_absorbed
            out.append((f"autofluorescence {g}", spectrum.pdf, per_label[free.labels[0, 0, :]]))
        return out

    def _adjoint(self, probe, name, pdf, layer_yield, photons) -> Emission | None:
        """The point launch on the axis for one emitter spectrum through ``probe``'s camera (None
        when the camera detects none of it): d = (sum_b s_b eta_b) x etendue per unit area /
        (4 pi) / n(z)^2 x fluence (photonqd.adjoint)."""
        camera = self.config.camera_for(probe, self.axis)
        edges, centres = _band_bins(camera, 10.0)
        weights, efficiency = _bin_weights(pdf, edges, camera)
        detected = weights * efficiency
        if not detected.sum() > 0:
            return None
        # the uptake absorbs emission too (the target's own QD: photonqd.target_correction)
        medium, _ = self.free.medium(centres, fluorophores=self._uptake(probe.quantum_dot,
                                                                        probe.background_concentration_uM))
        source = CameraLaunch((self.axis[0], self.axis[1], 0.0), na=camera.numerical_aperture,
                              bin_weights=detected)
        index = sum(len(e) for e in self.emissions.values())
        sim = Simulation(medium, source, photons=photons, seed=self.config.seed,
                         rng_stream=rng_stream_id("adjoint", index), batch_photons=-(-photons // BATCHES),
                         keep_batches=("fluence",), reduce_batch=_pool(self.rings, ("fluence",)))
        result = sim.run(self.backend, self.progress)
        p = source.bin_probabilities(medium.n_bins)
        n = medium.optics[:, :, 3].astype(np.float64)                   # (bins, labels)
        inv_n2 = (p[:, None] / n**2).sum(axis=0)[self.free.labels[0, 0, :]]
        scale = detected.sum() * etendue(1.0, camera.numerical_aperture) / (4 * math.pi) * inv_n2
        density = _batches(result, "fluence", lambda f: f * scale[:, None])
        return Emission(name, density, layer_yield, sim, scale)

    # --- more photons ----------------------------------------------------------------------
    def extend_excitation(self, key: tuple, photons: int) -> None:
        field = self.excitations[key]
        start = time.perf_counter()
        field.simulation, result = _more(field.simulation, photons, self.backend, self.progress)
        fluence, absorbed, escape = self._excitation_fields(result)
        field.fluence = field.fluence.extended(fluence)
        field.absorbed = field.absorbed.extended(absorbed)
        field.escape = field.escape.extended(escape)
        self.seconds[field.name] += time.perf_counter() - start

    def extend_adjoint(self, probe: str, emitter: str, photons: int) -> None:
        e = self.emissions[probe][emitter]
        start = time.perf_counter()
        self.seconds.setdefault(f"{probe}: {emitter}", 0.0)
        e.simulation, result = _more(e.simulation, photons, self.backend, self.progress)
        e.density = e.density.extended(_batches(result, "fluence", lambda f: f * e.scale[:, None]))
        self.seconds[f"{probe}: {emitter}"] += time.perf_counter() - start


# --- images ----------------------------------------------------------------------------------
def gauss_points(camera: Camera, axis) -> tuple[np.ndarray, np.ndarray, float]:
    """2 x 2 Gauss-Legendre points of every unbinned pixel, relative to the axis: x, y of shape
    (nx, ny, 4), and each point's area weight (mm²)."""
    (px, py), (nx, ny) = camera.pixel_size_mm, camera.pixels
    x0 = camera.centre_mm[0] - camera.field_of_view_mm[0] / 2 - axis[0]
    y0 = camera.centre_mm[1] - camera.field_of_view_mm[1] / 2 - axis[1]
    g = 0.5 / math.sqrt(3.0)
    offsets = np.array([(-g, -g), (-g, g), (g, -g), (g, g)])
    x = x0 + (np.arange(nx)[:, None, None] + 0.5 + offsets[None, None, :, 0]) * px
    y = y0 + (np.arange(ny)[None, :, None] + 0.5 + offsets[None, None, :, 1]) * py
    x, y = np.broadcast_arrays(x, y)
    return x, y, px * py / 4


def _autofluorescence_weights(rings: RingGeometry, gx, gy, area) -> np.ndarray:
    """W (pixels, rings x rings) so that a pixel collects sum_{i,j} W[p, i, j] A[i] d[j] from a
    layer with pooled source A and detection density d. d enters through its voxel columns u
    (ring j = ring(u), area kept: it is peaked under the launch point near the surface), the
    smooth source A at |a - u| by interpolation (ring i), for each Gauss point a of pixel p."""
    key = (id(rings), gx.shape, float(gx[0, 0, 0]), float(gy[0, 0, 0]), area)
    if key in _W_CACHE:
        return _W_CACHE[key]
    n = rings.n_rings
    pixels = gx.shape[0] * gx.shape[1]
    w = np.zeros((pixels, n * n))
    gx, gy = gx.reshape(pixels, 4), gy.reshape(pixels, 4)
    for p in range(pixels):
        for g in range(4):
            i, f = rings.weights(np.hypot(gx[p, g] - rings.column_x, gy[p, g] - rings.column_y))
            ok = ~np.isnan(f)
            base = i[ok] * n + rings.ring[ok]
            w[p] += np.bincount(base, weights=(1 - f[ok]) * area, minlength=n * n)
            w[p] += np.bincount(base + n, weights=f[ok] * area, minlength=n * n)
    _W_CACHE.clear()   # one camera geometry at a time (tens of MB)
    _W_CACHE[key] = w
    return w


_W_CACHE: dict = {}


class DepthImages:
    """Per-photon images (unbinned pixels) of one probe from the fields, for any target."""

    def __init__(self, fields: StudyFields, probe, camera: Camera, scene_voxel_size):
        self.fields, self.probe, self.camera = fields, probe, camera
        rings = fields.rings
        self.gx, self.gy, self.area = gauss_points(camera, rings.axis_mm)
        self.voxel = np.broadcast_to(np.asarray(scene_voxel_size, dtype=np.float64), (3,))
        emissions = fields.emissions[probe.name]
        self.qd = emissions.get(probe.quantum_dot)
        self.autofluorescence = [e for e in emissions.values() if e.layer_yield is not None]
        self._diffuse_weights = None

    def surface_image(self, profile: np.ndarray) -> np.ndarray:
        """(nx, ny) integral over each pixel of a pooled surface density (1, rings) (per mm²)."""
        j, f = self.fields.rings.weights(np.hypot(self.gx, self.gy))
        return (interpolate(profile, np.zeros(j.shape, dtype=np.int64), j, f) * self.area).sum(axis=-1)

    def diffuse_image(self, source: np.ndarray, density: np.ndarray) -> np.ndarray:
        """(nx, ny) detected light per excitation photon of an emitter spread through the layers:
        its pooled source (photons emitted per voxel, (nz, rings)) seen through its pooled
        detection density (nz, rings)."""
        if self._diffuse_weights is None:
            self._diffuse_weights = _autofluorescence_weights(self.fields.rings, self.gx, self.gy, self.area)
        return (self._diffuse_weights @ (source.T @ density).ravel()).reshape(self.gx.shape[:2])

    def autofluorescence_image(self, absorbed: np.ndarray, densities: list) -> np.ndarray:
        """(nx, ny) detected autofluorescence per excitation photon, from pooled absorption
        (nz, rings) and each emitter's pooled density (nz, rings)."""
        total = np.zeros(self.gx.shape[:2])
        for emission, density in zip(self.autofluorescence, densities):
            total += self.diffuse_image(absorbed * emission.layer_yield[:, None], density)
        return total

    def target(self, voxels: np.ndarray) -> "TargetOperator":
        """The linear map from (source per target voxel, pooled density) to the image."""
        return TargetOperator(self, voxels)


class TargetOperator:
    """Image of one target (voxel indices (m, 3)): image_p = sum_v q_v P_p(v), P_p(v) the pooled
    density integrated over pixel p at the voxel's offset. Built once per depth; evaluated for the
    mean fields and for each batch of either field by matrix products."""

    def __init__(self, images: DepthImages, voxels: np.ndarray):
        rings = images.fields.rings
        self.shape = images.gx.shape[:2]
        vx = (voxels[:, 0] + 0.5) * images.voxel[0] - rings.axis_mm[0]
        vy = (voxels[:, 1] + 0.5) * images.voxel[1] - rings.axis_mm[1]
        self.layers, layer_of = np.unique(voxels[:, 2], return_inverse=True)
        d = np.hypot(images.gx[None] - vx[:, None, None, None], images.gy[None] - vy[:, None, None, None])
        j, f = rings.weights(d)                                           # (m, nx, ny, 4)
        outside = np.isnan(f)
        f = np.where(outside, 0.0, f)
        lo = np.where(outside, 0.0, 1.0 - f) * images.area
        hi = f * images.area
        self.n_rings, self.m = rings.n_rings, len(voxels)
        pixels = self.shape[0] * self.shape[1]
        column = layer_of[:, None, None, None] * self.n_rings + j          # (layer, ring) column
        pixel = np.broadcast_to(np.arange(pixels).reshape(self.shape)[None, :, :, None], d.shape)
        voxel = np.broadcast_to(np.arange(self.m)[:, None, None, None], d.shape)
        self._index = (voxel.ravel(), pixel.ravel(), column.ravel())
        self._lo, self._hi = lo.ravel(), hi.ravel()
        self.pixels = pixels

    def _columns(self, density: np.ndarray) -> np.ndarray:
        """(..., layers x rings) of the target's layers."""
        return density[..., self.layers, :].reshape(density.shape[:-2] + (-1,))

    def per_voxel(self, density: np.ndarray) -> np.ndarray:
        """(m, pixels) detection of each target voxel by each pixel."""
        cols = self._columns(density)
        v, p, c = self._index
        values = self._lo * cols[c] + self._hi * cols[c + 1]
        return np.bincount(v * self.pixels + p, weights=values,
                           minlength=self.m * self.pixels).reshape(self.m, self.pixels)

    def per_column(self, source: np.ndarray) -> np.ndarray:
        """(pixels, layers x rings) with the target's sources summed in."""
        v, p, c = self._index
        q = source[v]
        width = len(self.layers) * self.n_rings
        flat = np.bincount(p * width + c, weights=self._lo * q, minlength=self.pixels * width) + \
            np.bincount(p * width + c + 1, weights=self._hi * q, minlength=self.pixels * width)
        return flat.reshape(self.pixels, width)

    def images(self, sources: np.ndarray, density: np.ndarray) -> np.ndarray:
        """(k, nx, ny) images of k source vectors (k, m) with one density."""
        return (sources @ self.per_voxel(density)).reshape((-1,) + self.shape)

    def images_of_densities(self, source: np.ndarray, densities: np.ndarray) -> np.ndarray:
        """(k, nx, ny) images of one source vector with k densities (k, nz, rings)."""
        return (self._columns(densities) @ self.per_column(source).T).reshape((-1,) + self.shape)


# --- the study -------------------------------------------------------------------------------
@dataclass
class _Variant:
    """One image pair (per excitation photon): the means, or one run's batch in place of its mean."""

    signal: np.ndarray
    background: np.ndarray
    leakage: np.ndarray | None = None   # the background's excitation leakage (None: as the mean's)


class ProbeDepths:
    """One probe's images at any depth: the background (autofluorescence + leakage) once, the
    target's image per depth; each with its batch variants for errors."""

    def __init__(self, config, fields: StudyFields, probe, scene_voxel_size):
        from .study.run import gate_factors

        axis = fields.rings.axis_mm
        self.config, self.fields, self.probe = config, fields, probe
        self.gate = gate_factors(config, probe, fields.free)
        self.camera = self.gate.camera(config.camera_for(probe, axis))
        self.excitation = config.excitation_for(axis, probe)
        self.field = fields.excitation_of(probe)
        self.images = DepthImages(fields, probe, self.camera, scene_voxel_size)
        qd = config.quantum_dot(probe.quantum_dot)
        # QD photons emitted per voxel per unit fluence and µM: the uptake is in the excitation's
        # medium; the target's excess over it is excited through the fluence (first order)
        per_uM = qd.quantum_yield * float(qd.mua_per_uM([self.excitation.wavelength_nm])[0]) * \
            float(np.prod(self.images.voxel))
        # non-specific uptake: c / TBR in every voxel, so the target holds the excess over it
        uptake = probe.background_concentration_uM
        # each emitter's image times what the probe's time gate keeps of it (1 ungated)
        self.source_per_fluence = per_uM * (probe.concentration_uM - uptake) * self.gate.qd
        self.uptake_per_fluence = per_uM * uptake * self.gate.qd if self.images.qd is not None else 0.0
        leak = float(self.camera.detection_efficiency([self.excitation.wavelength_nm])[0]) * self.gate.leakage
        af = self.images.autofluorescence
        af_mean = [e.density.mean for e in af]
        absorbed, fluence, escape = self.field.absorbed, self.field.fluence, self.field.escape
        qd_mean = self.images.qd.density.mean if self.images.qd is not None else None
        self.leak_mean = leak * self.images.surface_image(escape.mean)
        self.background = self._background(absorbed.mean, af_mean, self.leak_mean, fluence.mean, qd_mean)
        # excitation batches move autofluorescence, uptake and leakage together
        self.leak_ex = [leak * self.images.surface_image(b) for b in escape.batches]
        self.background_ex = [self._background(absorbed.batches[k], af_mean, self.leak_ex[k], fluence.batches[k],
                                               qd_mean) for k in range(len(absorbed.photons))]
        self.background_af = [[self._background(absorbed.mean, [e.density.batches[j] if i == g else m
                                                                for i, (e, m) in enumerate(zip(af, af_mean))],
                                                self.leak_mean, fluence.mean, qd_mean)
                               for j in range(len(emission.density.photons))]
                              for g, emission in enumerate(af)]
        # the QD's adjoint batches move the target's image and the uptake's together
        self.background_qd = [self._background(absorbed.mean, af_mean, self.leak_mean, fluence.mean, d)
                              for d in self.images.qd.density.batches] if self.uptake_per_fluence else None

    def _background(self, absorbed, densities, leakage, fluence, qd_density) -> np.ndarray:
        """Autofluorescence + the QD's non-specific uptake + excitation leakage, per excitation photon."""
        image = leakage.copy()
        if self.images.autofluorescence:
            image += self.images.autofluorescence_image(absorbed, densities) * self.gate.autofluorescence
        if self.uptake_per_fluence:
            image += self.images.diffuse_image(fluence * self.uptake_per_fluence, qd_density)
        return image

    def target_source(self, voxels: np.ndarray, profile: np.ndarray | None = None) -> np.ndarray:
        """QD photons emitted per excitation photon by each target voxel (m,), from the pooled
        excitation fluence (its mean, or one batch's profile)."""
        rings = self.fields.rings
        vx = (voxels[:, 0] + 0.5) * self.images.voxel[0] - rings.axis_mm[0]
        vy = (voxels[:, 1] + 0.5) * self.images.voxel[1] - rings.axis_mm[1]
        j, f = rings.weights(np.hypot(vx, vy))
        fluence = self.field.fluence.mean if profile is None else profile
        return self.source_per_fluence * interpolate(fluence, voxels[:, 2], j, f)

    def variants(self, voxels: np.ndarray, op: "TargetOperator", correction=None) -> tuple:
        """The images of a target (voxel indices (m, 3), its TargetOperator) per excitation photon:
        the mean (a _Variant: QD signal, background) and, per run, each batch's variant and the
        runs' batch photons ({run: ([_Variant], photons)}); ``correction``
        (photonqd.target_correction.Correction) adds the target's own optics: the QD image is
        multiplied by its ratio."""
        fluence = self.field.fluence
        qd = self.images.qd
        q_mean = self.target_source(voxels)
        q_batches = np.stack([self.target_source(voxels, b) for b in fluence.batches])
        if qd is None:
            zero = np.zeros((len(q_batches) + 1,) + self.camera.pixels)
            signal_ex, signal_adj = zero, np.zeros((0,) + self.camera.pixels)
        else:
            signal_ex = op.images(np.vstack([q_mean[None], q_batches]), qd.density.mean)
            signal_adj = op.images_of_densities(q_mean, qd.density.batches)
        corrected = correction is not None and self.probe.name in correction.detection
        factor = correction.ratio(self.probe.name) if corrected else 1.0
        mean = _Variant(signal_ex[0] * factor, self.background, self.leak_mean)
        groups = {"excitation": ([_Variant(signal_ex[k + 1] * factor, self.background_ex[k], self.leak_ex[k])
                                  for k in range(len(fluence.photons))], fluence.photons)}
        if qd is not None:
            backgrounds = self.background_qd or [self.background] * len(signal_adj)
            groups[f"adjoint {qd.name}"] = ([_Variant(s * factor, b) for s, b in zip(signal_adj, backgrounds)],
                                            qd.density.photons)
        for e, variants in zip(self.images.autofluorescence, self.background_af):
            groups[f"adjoint {e.name}"] = ([_Variant(mean.signal, b) for b in variants], e.density.photons)
        if corrected:
            for run, (ratios, photons) in correction.variants(self.probe.name).items():
                groups[run] = ([_Variant(signal_ex[0] * r, self.background) for r in ratios], photons)
        return mean, groups

    def at(self, voxels: np.ndarray, op: "TargetOperator", depth_mm: float, seconds: float = 0.0,
           correction=None):
        """ProbeImage of a target (voxel indices (m, 3), its TargetOperator) at ``depth_mm``
        (see ``variants``)."""
        from .study import ProbeImage

        mean, groups = self.variants(voxels, op, correction)
        qd = self.images.qd
        cam, rate = self.config.camera, self.excitation.photons_per_s
        # the exposure and the background region: from the mean image, the same for every batch variant
        camera = exposure_for(cam, mean.signal + mean.background, rate, self.camera)
        signal_e, background_e, saturated = recorded(mean.signal, mean.background, rate, camera)
        annulus = auto_annulus(signal_e, camera, self.fields.axis, cam.target_radius_mm) \
            if cam.auto_annulus else cam.background_annulus_mm
        metrics = self._metrics(mean, annulus, camera)
        errors, budget = _metric_errors({name: ([self._metrics(v, annulus, camera) for v in variants], photons)
                                         for name, (variants, photons) in groups.items()},
                                        self.config.criterion)
        numerator = metrics.cnr
        rel = errors["cnr"] / abs(numerator) if numerator and math.isfinite(numerator) else float("nan")
        return ProbeImage(depth_mm, self.probe.name, signal_e, background_e, mean.signal, mean.background,
                          metrics, rel, seconds, int(qd.photons if qd else 0), errors=errors,
                          error_budget=budget, background_annulus_mm=tuple(annulus),
                          exposure_s=camera.exposure_s, saturated_pixels=saturated)

    def _metrics(self, v: _Variant, annulus, camera: Camera) -> TargetMetrics:
        signal_e, background_e, _ = recorded(v.signal, v.background, self.excitation.photons_per_s, camera)
        return target_metrics(signal_e, background_e, camera, self.fields.axis,
                              self.config.camera.target_radius_mm, annulus, self.config.background.clutter)


def _metric_errors(groups: dict, criterion: str) -> tuple[dict, dict]:
    """Standard error of every metric (the batch-means variances of independent runs added), and
    each run's share of the criterion's error."""
    from .tallies import batch_mean_error

    out, budget = {}, {}
    for name in METRIC_NAMES:
        var = 0.0
        for run, (metrics, photons) in groups.items():
            values = np.array([getattr(m, name) for m in metrics], dtype=np.float64)
            if len(values) < 2:
                continue
            share = batch_mean_error(values, np.asarray(photons, dtype=np.float64))[1] \
                if np.all(np.isfinite(values)) else float("nan")
            var += share**2
            if name == criterion:
                budget[run] = share
        out[name] = math.sqrt(var) if math.isfinite(var) else float("nan")
    return out, budget


def run_adjoint_study(config, backend=None, done=None, on_depth=None, progress=None,
                      fields: StudyFields | None = None, corrections: dict | None = None):
    """Every depth of ``config`` from one set of field runs (see the module docstring), with
    photons added to the runs that limit a probe's depth limit until it is resolved to
    config.depth_resolution_mm (at config.z standard errors) or the runs reach config.max_adjoint_photons.
    ``on_depth(result)`` is called after each depth of the final pass, as in run_study.
    ``fields``: field runs to reuse; ``corrections``: target corrections per depth to reuse (another
    study's ``result.corrections``, photonqd.sensitivity), run only where missing."""
    from .study import ConfigError, StudyResult

    result = done if done is not None else StudyResult(config)
    if set(config.depths_mm) <= set(result.completed_depths()):
        return result
    first = config.scene(config.depths_mm[0])
    if first.target is None or not first.target.any():
        raise ConfigError(f"phantom: {config.phantom} defines no target to label")
    try:
        fields = fields or StudyFields(config, first, backend, progress)
    except NotLaterallyInvariant as err:
        raise ConfigError(str(err)) from None
    targets = _targets(config, first, fields)
    contrasted = contrasted_depths(config, fields, targets)
    corrected = {"all": list(targets), "contrasted": contrasted, "none": []}[config.correction]
    corrections = dict(corrections or {})
    for _ in range(MAX_ROUNDS):
        images = _all_depths(config, fields, targets, corrected, corrections)
        trial = StudyResult(config, images)
        plan = _refinement(trial, fields, config)
        if not plan:
            break
        extended = set()                      # probes may share runs: extend each once
        for (probe, emitter), photons in plan.items():
            run = fields.excitations[emitter] if probe is None else fields.emissions[probe][emitter]
            if id(run) in extended:
                continue
            extended.add(id(run))
            if probe is None:                 # emitter: the excitation's key
                fields.extend_excitation(emitter, photons)
            else:
                fields.extend_adjoint(probe, emitter, photons)
    else:
        images = _all_depths(config, fields, targets, corrected, corrections)
    result.images = []
    result.fields, result.corrections = fields, corrections
    _record_fields(result.provenance, fields, StudyResult(config, images), config, contrasted, corrected)
    for depth in config.depths_mm:
        result.images.extend(i for i in images if i.depth_mm == depth)
        if on_depth:
            on_depth(result)
    return result


#: Rounds of photon refinement at most.
MAX_ROUNDS = 4


def _targets(config, first, fields: StudyFields) -> dict:
    """depth -> (a function giving the phantom at that depth, the target's voxel indices (m, 3)),
    checked to lie on the fields' axis."""
    from .study import ConfigError, target_centre

    out = {}
    for depth in config.depths_mm:
        scene = first if depth == config.depths_mm[0] else config.scene(depth)
        if scene.labels.shape != first.labels.shape or \
                not np.allclose(target_centre(scene), fields.axis, atol=1e-6):
            raise ConfigError(f"phantom: the target moves sideways with depth ({depth:g} mm); the adjoint "
                              "study needs it on one vertical axis (use study.method = \"forward\")")
        out[depth] = (lambda depth=depth: config.scene(depth), np.argwhere(scene.target))
    return out


def _all_depths(config, fields: StudyFields, targets: dict, corrected, corrections: dict, probes=None) -> list:
    """Images of every probe at every depth; the target corrections (photonqd.target_correction)
    of the ``corrected`` depths are run once per depth, on the first call, and kept in
    ``corrections``. ``probes``: the ProbeDepths of config.probes, if the caller has them."""
    from .target_correction import run_correction

    probes = probes or [ProbeDepths(config, fields, p, fields.voxel) for p in config.probes]
    images = []
    for depth, (scene, voxels) in targets.items():
        start = time.perf_counter()
        if depth in corrected and depth not in corrections:
            corrections[depth] = run_correction(config, scene(), fields.axis, {p.probe.name: p.camera for p in probes},
                                                config.correction_photons, fields.backend, fields.progress)
        op = probes[0].images.target(voxels)     # the cameras differ only in filter and sensor
        for probe in probes:
            images.append(probe.at(voxels, op, depth, (time.perf_counter() - start) / len(probes),
                                   corrections.get(depth)))
    return images


def _refinement(result, fields: StudyFields, config) -> dict:
    """{(probe, emitter), or (None, excitation key): more photons} for the runs that dominate the
    error of a depth limit wider than config.depth_resolution_mm; {} when none is."""
    plan = {}
    for probe in config.probes:
        limit = result.depth_limit(probe.name)
        if limit.status in ("beyond", "shallower") or \
                (limit.status == "crossing" and limit.half_width <= config.depth_resolution_mm):
            continue
        factor = (limit.half_width / config.depth_resolution_mm) ** 2 * 1.3 \
            if limit.status == "crossing" and math.isfinite(limit.half_width) else 4.0
        factor = min(max(factor, 2.0), 16.0)
        images = [i for i in result.images if i.probe == probe.name]
        near = sorted(images, key=lambda i: abs(i.depth_mm - limit.estimate))[:2]
        shares = {}
        for img in near:
            total = sum(v**2 for v in img.error_budget.values() if math.isfinite(v))
            for run, v in img.error_budget.items():
                if total > 0 and math.isfinite(v):
                    shares[run] = max(shares.get(run, 0.0), v**2 / total)
        for run, share in shares.items():
            if share < 0.2:
                continue
            if run.startswith("target "):
                continue              # the correction runs of one depth: see _correction_note
            if run == "excitation":
                field = fields.excitation_of(probe)
                key, now = (None, field.key), field.photons
            else:
                emitter = run.removeprefix("adjoint ")
                key, now = (probe.name, emitter), fields.emissions[probe.name][emitter].photons
            more = min(int(now * (factor - 1)), config.max_adjoint_photons - now)
            if more >= BATCHES:
                plan[key] = max(plan.get(key, 0), more)
    return plan


#: Relative difference of the target's reduced scattering or index from its host's above which the
#: Born fields are expected to be off (paths change inside the target; measured: docs/adjoint.md).
CONTRAST = 0.05


def contrasted_depths(config, fields: StudyFields, targets: dict) -> list:
    """Depths at which the target's mu_s' or n differs from a layer it replaces by more than
    CONTRAST, at the excitation or a probe band's centre, or at which a probe's QD shadows itself
    (photonqd.study.run.shadowed): there the Born fields, excited to first order, are approximate."""
    from .study.run import shadowed

    wavelengths = sorted({config.excitation_key(p)[0] for p in config.probes}) + \
        [0.5 * sum(p.window_nm) for p in config.probes]
    first, _ = next(iter(targets.values()))
    scene = first()
    target_labels = np.unique(scene.labels[scene.target])
    medium, _ = scene.medium(wavelengths, fluorophores=[])
    optics = medium.optics.astype(np.float64)                  # (bins, labels, [mua, mus, g, n])
    reduced, n = optics[:, :, 1] * (1 - optics[:, :, 2]), optics[:, :, 3]
    host = fields.free.labels[0, 0, :]
    shadowing = {}                 # the target's size (voxels) -> does any probe's QD shadow itself
    out = []
    for depth, (_, voxels) in targets.items():
        hosts = np.unique(host[voxels[:, 2]])
        worst = max(max(abs(reduced[:, t] - reduced[:, h]).max() / max(reduced[:, h].min(), 1e-12),
                        abs(n[:, t] - n[:, h]).max() / n[:, h].min()) for t in target_labels for h in hosts)
        if len(voxels) not in shadowing:
            shadowing[len(voxels)] = any(shadowed(config, scene, p, len(voxels)) for p in config.probes)
        if worst > CONTRAST or shadowing[len(voxels)]:
            out.append(depth)
    return out


def _target_optics(config, corrected) -> str:
    """How the study treated the target's own optics, for the provenance."""
    if not corrected:
        return "left out of the fields (Born); the forward path (study --verify) includes them"
    where = "every depth" if len(corrected) == len(config.depths_mm) else \
        f"{len(corrected)} depths ({min(corrected):g}-{max(corrected):g} mm, where its scattering or index differs " \
        "from its host's; Born elsewhere)"
    return (f"included at {where} by correlated pairs of {config.correction_photons} photons per run "
            "(photonqd.target_correction)")


def _record_fields(provenance: dict, fields: StudyFields, result, config, contrasted=(), corrected=()) -> None:
    provenance.setdefault("adjoint", {}).update(
        {"excitation_photons": {f.name: f.photons for f in fields.excitations.values()},
         "adjoint_photons": {f"{p}: {e}": em.photons for p, ems in fields.emissions.items()
                             for e, em in ems.items()},
         "transport_seconds": {k: round(v, 3) for k, v in fields.seconds.items()},
         "ring_mm": fields.rings.ring_mm, "batches_per_run": BATCHES,
         "depth_resolution_mm": config.depth_resolution_mm,
         "target_optics": _target_optics(config, corrected)})
    notes = provenance.setdefault("notes", [])
    new = ["adjoint study: fields of the phantom without its target, pooled in rings about the target's axis"]
    born = sorted(set(contrasted) - set(corrected))
    if born:
        new.append(f"Born: at depths {min(born):g}-{max(born):g} mm the target's reduced scattering or "
                   f"index differs from its host layer's by more than {CONTRAST:.0%}, or its QD shadows itself "
                   "(photonqd.study.run.SHADOWING_LIMIT); its QD signal there is "
                   "approximate (docs/adjoint.md: measured up to 1.6x); set study.correction = \"contrasted\" or "
                   "check with photonqd study --verify")
    shape, voxel = fields.free.labels.shape, fields.voxel
    half = min(min(fields.axis[0], shape[0] * voxel[0] - fields.axis[0]),
               min(fields.axis[1], shape[1] * voxel[1] - fields.axis[1]))
    # light from depth D spreads about D sideways; measured: widening the default 40 mm phantom
    # (half 20 mm, reach 19.6 mm) to 60 mm moved no depth limit by more than 0.01 mm (docs/adjoint.md)
    reach = config.excitation.beam_radius_mm + config.camera.field_of_view_mm / math.sqrt(2) + \
        max(config.depths_mm) / 2
    if half < reach:
        new.append(f"adjoint study: the phantom reaches {half:g} mm sideways from the target's axis, less than the "
                   f"beam radius + half the field's diagonal + half the deepest depth ({reach:g} mm); the pooled "
                   "fields assume lateral invariance, so light reaching the sides is treated as if the "
                   "phantom were the same everywhere (compare with --verify, or widen phantom.size_mm)")
    for probe in config.probes:
        limit = result.depth_limit(probe.name)
        if limit.status == "crossing" and limit.half_width > config.depth_resolution_mm:
            new.append(f"{probe.name}: depth limit resolved to +-{limit.half_width:.2g} mm only (the runs "
                       f"reached study.max_adjoint_photons = {config.max_adjoint_photons})")
    notes.extend(n for n in new if n not in notes)
