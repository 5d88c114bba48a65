"""Camera signals of any fluorophore distribution from two fields (docs/adjoint.md, "Signals").

An emitter (a QD species, or tissue autofluorescence) emits q(v) photons in voxel v per launched
excitation photon, with spectrum s_b over the camera band's wavelength bins b. A detector region R
(a set of camera pixels) collects from it

    D_R(v) = sum_b s_b eta_b P_b(v -> R)       photoelectrons per emitted photon,

eta_b = filter x QE. One photonqd.CameraLaunch over R with bin_weights s_b eta_b gives
sum_b p_b P_b(v -> R) (photonqd.adjoint), so D_R = (sum_b s_b eta_b) x that. The region's signal,
in electrons per binned pixel over the exposure (the units of FluorescenceResult.signal_e), is

    S_R = N_ex t / n_R * sum_v q(v) D_R(v)
    q(v) = QY mu_a,QD(lambda_ex) c(v) Phi_ex(v) V          (QDs, c in µM)
    q(v) = Y_AF absorbed_tissue(v)                          (autofluorescence of the tissue in v)

with N_ex the excitation photons per second, t the exposure and n_R the region's binned pixels.
Excitation leakage comes from the excitation stage's own exit map, as in the forward path. S is
linear in c, QY, irradiance and exposure: ``SignalModel`` evaluates any of them without transport.

The phantoms' targets are of a tissue other than their surroundings, so the media are not
laterally invariant: every adjoint launch runs in the scene's full medium (target included), one
launch per detector region, the region cut into rectangles of pixels (one CameraLaunch each,
photons in proportion to area). The emission medium holds no QD: re-absorption of QD emission by
the QD itself is left out (first order in c, as the excitation through the stored fluence is).

Errors: the excitation run and every adjoint run are independent. S is bilinear in the two
fields, so recomputing S with one excitation batch (adjoint fields at their mean) gives batch
values whose batch-means variance is the excitation's share, and likewise for the adjoint batches;
var(S) = var_ex + sum over independent adjoint runs of var_adj (first order: the product of the
two relative errors is left out). ``RegionSignal`` keeps the batch values, so sums and differences
of signals (contrast, CNR numerators) carry the correlations of shared runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .adjoint import etendue, inverse_n2
from .camera import Camera
from .kernel_abi import rng_stream_id
from .fluorescence import ExcitationStage, _bin_weights
from .optics.quantum_dots import QuantumDot
from .scene import Scene
from .simulation import Simulation
from .sources import CameraLaunch
from .tallies import batch_mean_error

#: Batches of every adjoint run (each region's batch j sums the rectangles' batch j).
DEFAULT_BATCHES = 10


@dataclass
class RegionSignal:
    """Mean electrons per binned pixel of a region, with the batch values its error comes from.

    excitation: (K,) the value recomputed with each excitation batch; excitation_photons: (K,).
    adjoint:    {run key: ((J,) values with each adjoint batch, (J,) photons)}; runs with
                different keys are independent.
    """

    value: float
    excitation: np.ndarray | None = None
    excitation_photons: np.ndarray | None = None
    adjoint: dict = field(default_factory=dict)

    @property
    def excitation_error(self) -> float:
        """The excitation run's share of the standard error (0 without its batches)."""
        if self.excitation is None:
            return 0.0
        return batch_mean_error(self.excitation, self.excitation_photons)[1]

    @property
    def adjoint_error(self) -> float:
        """The adjoint runs' share of the standard error (independent runs add in quadrature)."""
        return math.sqrt(sum(batch_mean_error(v, w)[1] ** 2 for v, w in self.adjoint.values()))

    @property
    def error(self) -> float:
        """Batch-means standard error: excitation and adjoint shares added in quadrature."""
        return math.hypot(self.excitation_error, self.adjoint_error)

    @property
    def rel_error(self) -> float:
        return self.error / abs(self.value) if self.value != 0 else float("inf")

    def scaled(self, factor: float) -> "RegionSignal":
        """The signal times ``factor`` (a concentration, QY, irradiance or exposure ratio)."""
        return self.combine(factor, None, 0.0)

    def combine(self, a: float, other: "RegionSignal | None", b: float) -> "RegionSignal":
        """a x self + b x other, batch by batch where the two share runs."""
        def lin(x, y):
            if x is None:
                return None if y is None else b * y
            return a * x if y is None else a * x + b * y

        ex = lin(self.excitation, None if other is None else other.excitation)
        photons = self.excitation_photons if self.excitation_photons is not None else \
            (None if other is None else other.excitation_photons)
        adjoint = {k: (a * v, w) for k, (v, w) in self.adjoint.items()}
        for k, (v, w) in ({} if other is None else other.adjoint).items():
            adjoint[k] = (adjoint[k][0] + b * v, w) if k in adjoint else (b * v, w)
        value = a * self.value + (0.0 if other is None else b * other.value)
        return RegionSignal(value, ex, photons, adjoint)

    def __add__(self, other):
        return self.combine(1.0, other, 1.0)

    def __sub__(self, other):
        return self.combine(1.0, other, -1.0)


@dataclass
class Emitter:
    """An emission spectrum restricted to the band: s_b per bin and the camera's eta_b."""

    name: str
    weights: np.ndarray        # s_b: emission probability of each bin (all wavelengths sum to 1)
    efficiency: np.ndarray     # eta_b: filter x QE averaged over the bin

    @property
    def detected_weight(self) -> np.ndarray:
        return self.weights * self.efficiency


@dataclass
class DetectionFields:
    """D_R(v) per emitter and region: mean (nx, ny, nz) and per-batch float32 (J, nx, ny, nz)."""

    camera: Camera
    regions: dict               # name -> binned-pixel boolean mask
    emitters: dict              # name -> Emitter
    mean: dict                  # (emitter, region) -> D_R
    batches: dict               # (emitter, region) -> (D_R per batch, photons per batch)
    photons: dict               # (emitter, region) -> photons launched
    seconds: dict = field(default_factory=dict)   # (emitter, region) -> transport wall time, s
    notes: list = field(default_factory=list)


def pixel_rectangles(mask) -> list[tuple[int, int, int, int]]:
    """Cover a boolean pixel mask with disjoint rectangles (i0, i1, j0, j1), half-open: runs of
    each row, merged with identical runs of the following rows."""
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2 or not m.any():
        raise ValueError("mask: need a 2-D boolean pixel mask that selects at least one pixel")
    used = np.zeros_like(m)
    out = []
    for i in range(m.shape[0]):
        j = 0
        while j < m.shape[1]:
            if not m[i, j] or used[i, j]:
                j += 1
                continue
            j1 = j
            while j1 < m.shape[1] and m[i, j1] and not used[i, j1]:
                j1 += 1
            i1 = i + 1
            while i1 < m.shape[0] and m[i1, j:j1].all() and not used[i1, j:j1].any() \
                    and (j == 0 or not m[i1, j - 1]) and (j1 == m.shape[1] or not m[i1, j1]):
                i1 += 1
            used[i:i1, j:j1] = True
            out.append((i, i1, j, j1))
            j = j1
    return out


def _unbinned(camera: Camera, mask) -> np.ndarray:
    m = np.asarray(mask, dtype=bool)
    if m.shape != camera.binned_pixels:
        raise ValueError(f"regions: masks must have the camera's binned shape {camera.binned_pixels}, got {m.shape}")
    b = camera.binning
    return np.kron(m, np.ones((b, b), dtype=bool))


def _band_bins(camera: Camera, bin_width_nm: float):
    """The camera band's bins as photonqd.fluorescence.image cuts them: (edges, centres)."""
    if not bin_width_nm > 0:
        raise ValueError(f"bin_width_nm: must be > 0 nm, got {bin_width_nm}")
    lo, hi = camera.detection_band  # the nominal band widened by the filter's blue shift at the cone's rim
    n = max(1, int(math.ceil((hi - lo) / bin_width_nm)))
    edges = np.linspace(lo, hi, n + 1)
    return edges, 0.5 * (edges[:-1] + edges[1:])


def _autofluorescence_groups(scene: Scene) -> list[tuple[object, list[int]]]:
    """(emission spectrum, labels) per distinct autofluorescence spectrum of the scene."""
    groups = []
    for label in sorted(scene.tissues):
        af = scene.autofluorescence_of(label)
        if af is None or af.yield_per_absorbed == 0:
            continue
        for spectrum, labels in groups:
            if spectrum == af.emission:
                labels.append(label)
                break
        else:
            groups.append((af.emission, [label]))
    return groups


def detection_fields(scene: Scene, camera: Camera, regions: dict, photons: int,
                     quantum_dots=(), autofluorescence: bool = True, backend=None, seed: int = 1,
                     bin_width_nm: float = 10.0, batches: int = DEFAULT_BATCHES,
                     progress=None) -> DetectionFields:
    """Adjoint runs: for every emitter (each of ``quantum_dots``, and each autofluorescence
    spectrum of the scene) and every region ({name: boolean mask on the binned pixels}),
    ``photons`` camera-side photons over the region (split over its rectangles by area) in the
    scene's medium at the band's bins, target included, no QD."""

    if not isinstance(scene, Scene):
        raise TypeError("scene: expected a photonqd.scene.Scene")
    if not isinstance(camera, Camera):
        raise TypeError("camera: expected a photonqd.camera.Camera")
    if not isinstance(regions, dict) or not regions:
        raise ValueError("regions: need a dict {name: boolean mask on the camera's binned pixels}")
    if not (isinstance(photons, (int, np.integer)) and photons >= 1):
        raise ValueError(f"photons: must be an integer >= 1, got {photons!r}")
    if not (isinstance(batches, (int, np.integer)) and 2 <= batches <= photons):
        raise ValueError(f"batches: must be an integer in [2, photons], got {batches!r}")
    for qd in quantum_dots:
        if not isinstance(qd, QuantumDot):
            raise TypeError("quantum_dots: expected photonqd.optics.QuantumDot objects")
    masks = {name: _unbinned(camera, m) for name, m in regions.items()}
    for name, m in masks.items():
        if not m.any():
            raise ValueError(f"regions[{name!r}]: selects no pixel")
    edges, centres = _band_bins(camera, bin_width_nm)
    medium, _ = scene.medium(centres, fluorophores=[])
    emitters = {}
    for qd in quantum_dots:
        emitters[qd.name] = Emitter(qd.name, *_bin_weights(qd.emission.pdf, edges, camera))
    if autofluorescence:
        for g, (spectrum, _) in enumerate(_autofluorescence_groups(scene)):
            emitters[f"autofluorescence {g}"] = Emitter(f"autofluorescence {g}",
                                                        *_bin_weights(spectrum.pdf, edges, camera))
    fields = DetectionFields(camera, dict(regions), emitters, {}, {}, {})
    run_index = 0
    for ename, em in emitters.items():
        weights = em.detected_weight
        if not weights.sum() > 0:
            fields.notes.append(f"{ename}: no detected weight in the band {camera.band} nm (signal 0)")
            continue
        for rname, m in masks.items():
            start = time.perf_counter()
            run = region_adjoint(medium, camera, m, weights, photons, batches, seed, run_index, backend, progress)
            run_index += run.runs
            key = (ename, rname)
            fields.mean[key] = run.mean
            fields.batches[key] = (np.stack([b.astype(np.float32) for b in run.batches]), np.full(batches, 1.0))
            fields.photons[key] = run.photons
            fields.seconds[key] = time.perf_counter() - start
    return fields


@dataclass
class RegionAdjoint:
    """One region's adjoint launch: D_R (reduced) as the mean and per batch."""

    mean: object
    batches: list
    photons: int          # camera-side photons launched
    runs: int             # CameraLaunch runs (random streams) it used


def region_adjoint(medium, camera: Camera, mask, weights, photons: int, batches: int, seed: int,
                   first_run: int = 0, backend=None, progress=None, reduce=None) -> RegionAdjoint:
    """D_R(v) of the pixels of ``mask`` (unbinned camera pixels): camera-side photons over the
    region, cut into rectangles (one CameraLaunch each, photons in proportion to area, random
    streams ``first_run``, ``first_run + 1``, ...), each carrying the bin weights s_b eta_b.
    D = (sum_b s_b eta_b) x etendue / (4 pi) / n(v)^2 x fluence (photonqd.adjoint). ``reduce``
    maps each run's D volume (mean and batches) to what is kept (default: the volume)."""
    reduce = reduce or (lambda volume: volume)
    px, py = camera.pixel_size_mm
    x0 = camera.centre_mm[0] - camera.field_of_view_mm[0] / 2
    y0 = camera.centre_mm[1] - camera.field_of_view_mm[1] / 2
    rects = pixel_rectangles(mask)
    area = np.array([(i1 - i0) * (j1 - j0) for i0, i1, j0, j1 in rects], dtype=np.float64)
    per_batch = np.maximum(1, np.round(photons * area / area.sum() / batches)).astype(int)
    mean, parts, launched = 0.0, [0.0] * batches, 0
    for run, ((i0, i1, j0, j1), nb) in enumerate(zip(rects, per_batch)):
        src = CameraLaunch((x0 + i0 * px, y0 + j0 * py, 0.0), footprint=((i1 - i0) * px, (j1 - j0) * py),
                           na=camera.numerical_aperture, bin_weights=weights)
        sim = Simulation(medium, src, photons=int(nb) * batches, seed=seed,
                         rng_stream=rng_stream_id("adjoint", first_run + run), batch_photons=int(nb),
                         keep_batches=("fluence",))
        factor = weights.sum() * etendue(src.area, src.na) / (4 * math.pi) * \
            inverse_n2(sim, np.zeros(medium.n_bins, dtype=np.int64))[0]
        sim = dataclasses.replace(sim, reduce_batch=lambda b, factor=factor: reduce(factor * b["fluence"]))
        res = sim.run(backend, progress)
        mean = mean + reduce(factor * res.fluence)
        parts = [p + b for p, b in zip(parts, res.batch_tallies)]
        launched += sim.photons
    return RegionAdjoint(mean, parts, launched, len(rects))


class SignalModel:
    """Region signals of any QD distribution, autofluorescence and leakage from one excitation
    stage (run with ``keep_batches=True`` for errors) and the detection fields of its camera.

    The stage must have run without fluorophores (QDs excited through the stored fluence), so that
    the signal is linear in their concentration.
    """

    def __init__(self, scene: Scene, stage: ExcitationStage, fields: DetectionFields):
        if not isinstance(stage, ExcitationStage):
            raise TypeError("stage: expected a photonqd.fluorescence.ExcitationStage")
        if stage.species:
            raise ValueError("stage: excited with fluorophores present; the linear signal model needs a "
                             "tissue-only excitation stage (QDs excited through the stored fluence)")
        if fields.camera.exit_map(stage_medium := _StageGeometry(scene)) != stage.exit_map:
            raise ValueError("fields.camera: its field of view, pixels and NA must match the excitation stage's")
        del stage_medium
        self.scene, self.stage, self.fields = scene, stage, fields
        self.voxel_volume = float(np.prod(np.broadcast_to(np.asarray(scene.voxel_size, float), (3,))))
        r = stage.result
        kept = r.batch_tallies or []
        self._batches = kept if len(kept) >= 2 and all("fluence" in b for b in kept) else None
        self._photons = r.batch_photons if self._batches else None

    # --- scale ---------------------------------------------------------------------------
    def electrons_per_photon(self, region: str, irradiance_mw_per_cm2: float | None = None,
                             exposure_s: float | None = None) -> float:
        """Electrons per binned region pixel per (detected electron per excitation photon)."""
        exc = self.stage.excitation
        from .noise import photon_rate

        rate = exc.photons_per_s if irradiance_mw_per_cm2 is None else \
            photon_rate(irradiance_mw_per_cm2, exc.wavelength_nm, exc.area_mm2)
        t = self.fields.camera.exposure_s if exposure_s is None else _positive("exposure_s", exposure_s)
        return rate * t / int(np.asarray(self.fields.regions[region], bool).sum())

    # --- signals -------------------------------------------------------------------------
    def quantum_dot(self, quantum_dot: QuantumDot, concentration_uM, region: str,
                    quantum_yield: float | None = None, irradiance_mw_per_cm2: float | None = None,
                    exposure_s: float | None = None) -> RegionSignal:
        """Mean QD electrons per binned pixel of ``region`` for ``concentration_uM`` (µM per voxel,
        or one number for every tissue voxel)."""
        c = np.asarray(concentration_uM, dtype=np.float64)
        if c.ndim == 0:
            c = np.where(self.scene.labels > 0, float(c), 0.0)
        if c.shape != self.scene.labels.shape or not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError(f"concentration_uM: need finite values >= 0 µM shaped like the labels "
                             f"{self.scene.labels.shape}, got shape {c.shape}")
        qy = quantum_dot.quantum_yield if quantum_yield is None else quantum_yield
        if not (math.isfinite(qy) and 0 <= qy <= 1):
            raise ValueError(f"quantum_yield: must be in [0, 1], got {qy!r}")
        mua = float(quantum_dot.mua_per_uM([self.stage.excitation.wavelength_nm])[0])
        weight = qy * mua * self.voxel_volume * c          # q(v) / Phi_ex(v)
        scale = self.electrons_per_photon(region, irradiance_mw_per_cm2, exposure_s)
        return self._signal(quantum_dot.name, region, weight, "fluence", scale)

    def autofluorescence(self, region: str, irradiance_mw_per_cm2: float | None = None,
                         exposure_s: float | None = None) -> RegionSignal:
        """Mean autofluorescence electrons per binned pixel of ``region``."""
        scale = self.electrons_per_photon(region, irradiance_mw_per_cm2, exposure_s)
        out = RegionSignal(0.0)
        for g, (_, labels) in enumerate(_autofluorescence_groups(self.scene)):
            yields = np.zeros(int(self.scene.labels.max()) + 1)
            for label in labels:
                yields[label] = self.scene.autofluorescence_of(label).yield_per_absorbed
            weight = yields[self.scene.labels]               # q(v) / absorbed_tissue(v)
            out = out + self._signal(f"autofluorescence {g}", region, weight, "absorbed", scale)
        return out

    def leakage(self, region: str, irradiance_mw_per_cm2: float | None = None,
                exposure_s: float | None = None) -> RegionSignal:
        """Excitation light through the filter's blocking, from the stage's exit map."""
        camera = self.fields.camera
        m = _unbinned(camera, self.fields.regions[region])
        eff = float(camera.detection_efficiency([self.stage.excitation.wavelength_nm])[0])
        scale = eff * self.electrons_per_photon(region, irradiance_mw_per_cm2, exposure_s)
        value = scale * float(self.stage.result.exit_map[m].sum())
        ex = None
        if self._batches and all("exit_map" in b for b in self._batches):
            ex = np.array([scale * float(b["exit_map"][m].sum()) for b in self._batches])
        return RegionSignal(value, ex, self._photons if ex is not None else None)

    def background(self, region: str, **scale) -> RegionSignal:
        """Autofluorescence + leakage (FluorescenceResult.background_e's definition)."""
        return self.autofluorescence(region, **scale) + self.leakage(region, **scale)

    def _signal(self, emitter: str, region: str, weight, source: str, scale: float) -> RegionSignal:
        key = (emitter, region)
        if key not in self.fields.mean:
            if emitter in self.fields.emitters:     # emitter not detected in this band
                return RegionSignal(0.0)
            raise ValueError(f"{emitter}: the detection fields have no runs for it; pass it to detection_fields")
        d = self.fields.mean[key]
        field_mean = self._excitation_field(source)
        q = weight * field_mean
        value = scale * float(np.sum(q * d))
        ex = None
        if self._batches:
            wd = weight * d
            ex = np.array([scale * float(np.sum(wd * self._excitation_field(source, b))) for b in self._batches])
        parts, photons = self.fields.batches[key]
        adj = np.array([scale * float(np.sum(q * p, dtype=np.float64)) for p in parts])
        return RegionSignal(value, ex, self._photons if ex is not None else None,
                            {key: (adj, photons)})

    def _excitation_field(self, source: str, batch: dict | None = None) -> np.ndarray:
        r = self.stage.result if batch is None else None
        if source == "fluence":
            return r.fluence if batch is None else batch["fluence"]
        absorbed = r.absorbed if batch is None else batch["absorbed"]
        return np.clip(absorbed, 0.0, None)


class _StageGeometry:
    """The z = 0 face's ambient index, all Camera.exit_map reads of a medium."""

    def __init__(self, scene):
        self.n_ambient = scene.n_ambient


def _positive(name: str, value) -> float:
    v = float(value)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return v
