"""A transport simulation: medium + source + tallies, run in batches on a chosen backend."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .checks import FLOAT32_TINY, float_array, integer, real
from .chunks import Chunk, ChunkMerge, ChunkStore, run_key, split
from .kernel_abi import FACES, MAX_INDEX, MAX_ROULETTE_GAIN, RECORD_FIELDS, SCALAR_SLOTS
from .kernel_source import build_plan
from .medium import MAX_EXTENT_MM, Medium
from .sources import CameraLaunch, IsotropicPoint, Source, VoxelEmission
from .tallies import MAX_PHOTONS, ExactSum, Result, TallyLayout, normalise

#: Default flight-time guard (ns): a photon still in flight after this long is stopped.
MAX_FLIGHT_NS = 1000.0
#: Default guard on transport loop iterations per photon.
MAX_STEPS = 10**8
#: Most pixels an exit map may have (a 4096 x 4096 camera).
MAX_MAP_PIXELS = 2**24
#: Russian roulette bounds, applied to the float32 values the kernel uses: a threshold that is a
#: normal float32 (1e-50 would be 0 and roulette would never fire), a boost that is not 1.0 in
#: float32 (every roulette would survive) and not so large that survival becomes a rounding effect.
ROULETTE_MIN_THRESHOLD = 1e-30
ROULETTE_MIN_BOOST = 1.0 + 1e-6
ROULETTE_MAX_BOOST = 1000.0


@dataclass
class ExitMap:
    """Escaped weight through the z = 0 face on a pixel grid.

    pixels:          (mx, my) number of pixels.
    pixel_size:      (px, py) in mm.
    origin:          (x0, y0) in mm of the map's corner in the grid frame.
    half_angle_deg:  acceptance half-angle in the ambient medium, measured from the -z axis
                     (None: accept every escaping photon).
    bin_efficiency:  detection efficiency per wavelength bin in [0, 1] (e.g. filter x sensor QE)
                     multiplying the scored weight; None: 1 in every bin.
    record_capacity: keep up to this many scored photons (position, direction, bin, weight);
                     photons beyond it are counted as overflow.
    """

    pixels: tuple
    pixel_size: tuple
    origin: tuple = (0.0, 0.0)
    half_angle_deg: float | None = None
    bin_efficiency: tuple | None = None
    record_capacity: int = 0

    def __post_init__(self):
        px = float_array("exit_map.pixels", self.pixels, (2,))
        if not all(math.isfinite(v) and v.is_integer() and v >= 1 for v in px.tolist()) \
                or px.prod() > MAX_MAP_PIXELS:
            raise ValueError(f"exit_map.pixels: need two integers >= 1 with at most {MAX_MAP_PIXELS} "
                             f"pixels in all, got {self.pixels!r}")
        self.pixels = tuple(int(v) for v in px)
        size = float_array("exit_map.pixel_size", self.pixel_size, (2,))
        if not all(FLOAT32_TINY <= s <= MAX_EXTENT_MM for s in size.tolist()):
            raise ValueError(f"exit_map.pixel_size: need two numbers in [{FLOAT32_TINY:.3g}, {MAX_EXTENT_MM:g}] mm, "
                             f"got {self.pixel_size!r}")
        self.pixel_size = tuple(size.tolist())
        origin = float_array("exit_map.origin", self.origin, (2,))
        if not all(abs(v) <= MAX_EXTENT_MM for v in origin.tolist()):
            raise ValueError(f"exit_map.origin: need two finite numbers (x0, y0) within +-{MAX_EXTENT_MM:g} mm, "
                             f"got {self.origin!r}")
        self.origin = tuple(origin.tolist())
        if self.half_angle_deg is not None and \
                not 0 < real("exit_map.half_angle_deg", self.half_angle_deg, "in (0, 90] degrees") <= 90:
            raise ValueError(f"exit_map.half_angle_deg: must be in (0, 90] degrees, got {self.half_angle_deg}")
        if self.bin_efficiency is not None:
            eff = float_array("exit_map.bin_efficiency", self.bin_efficiency).ravel()
            if not np.all((eff >= 0) & (eff <= 1)):
                raise ValueError("exit_map.bin_efficiency: values must lie in [0, 1]")
            self.bin_efficiency = eff
        self.record_capacity = integer("exit_map.record_capacity", self.record_capacity, 0, 2**26)

    def efficiency(self, n_bins: int) -> np.ndarray:
        """Per-bin efficiency for a medium with ``n_bins`` wavelength bins."""
        if self.bin_efficiency is None:
            return np.ones(n_bins)
        if self.bin_efficiency.size != n_bins:
            raise ValueError(f"exit_map.bin_efficiency: one value per wavelength bin ({n_bins}), "
                             f"got {self.bin_efficiency.size}")
        return self.bin_efficiency

    @property
    def n_pixels(self) -> int:
        return self.pixels[0] * self.pixels[1]

    @property
    def cos_acceptance(self) -> float:
        return -1.0 if self.half_angle_deg is None else math.cos(math.radians(self.half_angle_deg))

    @classmethod
    def covering(cls, medium: Medium, half_angle_deg: float | None = None) -> "ExitMap":
        """One pixel per voxel column over the whole top face."""
        nx, ny, _ = medium.shape
        return cls((nx, ny), medium.voxel_size[:2], (0.0, 0.0), half_angle_deg)


@dataclass
class Simulation:
    """One transport problem.

    photons:            number of photons to launch (1 .. 2**53); a run is a sequence of launches
                        merged exactly, so any count gives the same answer however it is split.
    seed:               64-bit seed; with the photon index it keys every random number.
    time_gate_ns:       photons still propagating at this time of flight (ns) stop and are
                        counted as ``alive``; None: no gate.
    fluence:            tally the fluence (track-length estimator).
    fluence_bands:      None: one fluence volume for all wavelength bins; or the band index
                        (0 .. K-1, each used) of every wavelength bin: one fluence volume per
                        band, so Result.fluence is (K, nx, ny, nz) (e.g. the sub-bands of an
                        adjoint launch that carries several bins).
    exit_map:           an ExitMap for the z = 0 face, or None.
    roulette_threshold: weight below which Russian roulette is played after a scattering event.
    roulette_boost:     a survivor's weight is multiplied by this (survival probability 1/boost).
    max_flight_ns:      guard: a photon still in flight after this time (ns) is stopped and its
                        weight tallied as ``stopped`` (without a time gate; the gate, if shorter,
                        ends it first). Together with max_steps it ends every photon whatever the
                        input (a photon trapped in a clear, closed region, say).
    max_steps:          guard: a photon is stopped after this many transport loop iterations.
    rng_stream:         random stream id (the fourth Philox counter word): runs that must be
                        independent but share a seed, such as fluorescence stages, use different
                        streams.
    trace_photons:      photon indices whose first ``trace_events`` events are recorded.
    batch_photons:      photons per kernel launch (None: the backend's default, at most a tenth
                        of the photons so that there are >= 10 batches for standard errors).
    keep_batches:       keep every batch's tallies (for batch-means errors of derived
                        quantities): True for all of them, or a tuple of names among
                        BATCH_ARRAYS (e.g. ("exit_map",)) to keep only those.
    reduce_batch:       None, or a function applied to each kept batch's {name: array} dict;
                        Result.batch_tallies holds what it returns (a pooled profile, say), so
                        that batch errors of a large volume need not hold every batch's volume.
    first_photon:       index of the first photon launched: a run of photons [first_photon,
                        first_photon + photons) continues an earlier run of [0, first_photon)
                        with new, independent photons of the same random stream.
    """

    medium: Medium
    source: Source
    photons: int = 100_000
    seed: int = 1
    time_gate_ns: float | None = None
    fluence: bool = True
    fluence_bands: tuple | None = None
    exit_map: ExitMap | None = None
    roulette_threshold: float = 1e-4
    roulette_boost: float = 10.0
    max_flight_ns: float = MAX_FLIGHT_NS
    max_steps: int = MAX_STEPS
    rng_stream: int = 0
    trace_photons: tuple = ()
    trace_events: int = 32
    batch_photons: int | None = None
    keep_batches: bool | tuple = False
    reduce_batch: Callable[[dict], object] | None = None
    first_photon: int = 0

    def check(self) -> None:
        """Validate everything before any kernel is built or launched."""
        if not isinstance(self.medium, Medium):
            raise TypeError("medium: expected a photonqd.Medium")
        if not isinstance(self.source, Source):
            raise TypeError("source: expected a photonqd source (PencilBeam, GaussianBeam, ...)")
        self.photons = integer("photons", self.photons, 1, MAX_PHOTONS)
        self.first_photon = integer("first_photon", self.first_photon, 0, MAX_PHOTONS - self.photons)
        if self.reduce_batch is not None and not callable(self.reduce_batch):
            raise TypeError("reduce_batch: expected a function of a batch's {name: array} dict, or None")
        self.seed = integer("seed", self.seed, 0, 2**64 - 1)
        if self.time_gate_ns is not None:
            gate = real("time_gate_ns", self.time_gate_ns, "> 0 ns or None")
            if not (math.isfinite(gate) and gate > 0):
                raise ValueError(f"time_gate_ns: must be > 0 ns or None, got {self.time_gate_ns}")
        self._check_roulette()
        if not (isinstance(self.keep_batches, bool) or (isinstance(self.keep_batches, (tuple, list))
                                                        and set(self.keep_batches) <= set(BATCH_ARRAYS))):
            raise ValueError(f"keep_batches: True, False or names among {BATCH_ARRAYS}, got {self.keep_batches}")
        if self.batch_photons is not None:
            self.batch_photons = integer("batch_photons", self.batch_photons, 1, MAX_PHOTONS)
        flight = real("max_flight_ns", self.max_flight_ns, "in (0, 1e9] ns")
        if not 0 < flight <= 1e9:
            raise ValueError(f"max_flight_ns: must be in (0, 1e9] ns, got {self.max_flight_ns!r}")
        self.max_steps = integer("max_steps", self.max_steps, 1, 2**31 - 1)
        self.trace_events = integer("trace_events", self.trace_events, 1, 4096)
        try:
            ids = np.asarray(self.trace_photons, dtype=np.int64).ravel()
        except (TypeError, ValueError, OverflowError):
            ids = None
        first, end = self.first_photon, self.first_photon + self.photons
        if ids is None or ids.size > 1024 or np.any(ids < first) or np.any(ids >= end) \
                or len(set(ids.tolist())) != ids.size:
            raise ValueError("trace_photons: up to 1024 distinct photon indices in "
                             "[first_photon, first_photon + photons)")
        self.trace_photons = tuple(int(i) for i in ids)
        if self.exit_map is not None:
            if not isinstance(self.exit_map, ExitMap):
                raise TypeError("exit_map: expected a photonqd.ExitMap or None")
            self.exit_map.efficiency(self.medium.n_bins)
        self.rng_stream = integer("rng_stream", self.rng_stream, 0, 2**32 - 1)
        self._check_fluence_bands()
        self.source.check(self.medium)
        check_tally_size(self.medium, bool(self.fluence), self.exit_map, self.n_fluence_bands)
        self._check_termination()

    def _check_fluence_bands(self) -> None:
        if self.fluence_bands is None:
            return
        n_bins = self.medium.n_bins
        allowed = f"one band index per wavelength bin ({n_bins}), integers 0 .. K-1 using every band"
        try:
            bands = np.asarray(self.fluence_bands).ravel()
        except (TypeError, ValueError):
            raise ValueError(f"fluence_bands: {allowed}, got {self.fluence_bands!r}") from None
        if bands.size != n_bins or not np.issubdtype(bands.dtype, np.number) \
                or not np.all(np.isfinite(bands)) or np.any(bands != np.round(bands)) or np.any(bands < 0) \
                or set(bands.astype(np.int64).tolist()) != set(range(int(bands.max()) + 1)):
            raise ValueError(f"fluence_bands: {allowed}, got {self.fluence_bands!r}")
        self.fluence_bands = tuple(int(b) for b in bands)

    @property
    def n_fluence_bands(self) -> int:
        return 1 if self.fluence_bands is None else max(self.fluence_bands) + 1

    def _check_roulette(self) -> None:
        """Roulette settings as the kernel sees them (float32), bounded so that every photon ends
        and no survivor carries more than its launch weight (the tally range assumes weight <= 1)."""
        threshold = real("roulette_threshold", self.roulette_threshold,
                         f"in [{ROULETTE_MIN_THRESHOLD:g}, 1)")
        if not (threshold < 1 and ROULETTE_MIN_THRESHOLD <= float(np.float32(threshold))):
            raise ValueError(f"roulette_threshold: must be in [{ROULETTE_MIN_THRESHOLD:g}, 1) (as float32), "
                             f"got {self.roulette_threshold}")
        boost = real("roulette_boost", self.roulette_boost,
                     f"in [1 + 1e-6, {ROULETTE_MAX_BOOST:g}]")
        boost32 = float(np.float32(boost)) if abs(boost) <= ROULETTE_MAX_BOOST else boost
        if not np.float32(ROULETTE_MIN_BOOST) <= boost32 <= ROULETTE_MAX_BOOST:
            raise ValueError(f"roulette_boost: must be in [1 + 1e-6, {ROULETTE_MAX_BOOST:g}] (as float32; "
                             f"survival probability 1/boost), got {self.roulette_boost}")
        if float(np.float32(threshold)) * boost32 > 1.0 + 1e-6:  # slack: float32 rounding of both
            raise ValueError(f"roulette_threshold, roulette_boost: threshold x boost must be <= 1 so that "
                             f"no survivor carries more than its launch weight, got "
                             f"{threshold:g} x {boost:g} = {threshold * boost:g}")
        self.roulette_threshold, self.roulette_boost = float(threshold), float(boost)

    def _check_termination(self) -> None:
        """Refuse set-ups in which photons provably never stop. Roulette ends a photon only after a
        scattering event, so a photon must be able to leave, be stopped by the gate, or scatter
        and be absorbed; the kernel's per-photon event limit is the last resort for the rest."""
        if self.time_gate_ns is not None:
            return
        m = self.medium
        present = np.unique(m.labels)
        present = present[present > 0]
        bins = self._source_bins()
        tissue = m.optics[bins][:, present, :]  # (source bins, present labels, 4)
        escape = any(bc == "escape" for bc in m.boundary.values()) or bool(np.any(m.labels == 0))
        if not escape:
            if not np.any(tissue[..., 0] > 0):
                raise ValueError("medium: no face escapes, no tissue absorbs and there is no time gate; "
                                 "photons would never stop")
            clear = np.argwhere(tissue[..., 1] == 0)
            if clear.size:
                b, i = clear[0]
                raise ValueError(f"medium: label {present[i]} does not scatter (mu_s = 0 in bin {bins[b]}) and no "
                                 "face escapes: a photon in it bounces forever (roulette needs a "
                                 "scattering event); set time_gate_ns, an escape face, or mu_s > 0")
        self._check_trapped_emitter(present)

    def _source_bins(self) -> np.ndarray:
        """Wavelength bins the source launches photons in (photons keep their bin)."""
        if isinstance(self.source, VoxelEmission):
            return np.flatnonzero(self.source.bin_weights > 0)
        if isinstance(self.source, CameraLaunch):
            return np.flatnonzero(self.source.bin_probabilities(self.medium.n_bins) > 0)
        return np.array([self.source.wavelength_bin])

    def _check_trapped_emitter(self, present) -> None:
        """An isotropic emitter inside a non-scattering label whose index exceeds that of every
        other medium it touches by more than sqrt(3/2) sends a share of its photons into
        directions that are totally reflected at every (axis-aligned) face: they never leave."""
        m, src = self.medium, self.source
        if isinstance(src, IsotropicPoint):
            labels = [m.label_at(src.position)]
        elif isinstance(src, VoxelEmission):
            labels = np.unique(m.labels[src.density > 0]).tolist()
        else:
            return
        for b, lab in ((int(b), int(lab)) for b in self._source_bins() for lab in labels):
            _, mus, _, n = m.optics[b, lab]
            if lab == 0 or mus > 0:
                continue
            others = [m.optics[b, o, 3] for o in present if o != lab]
            if any(bc == "escape" for bc in m.boundary.values()) or np.any(m.labels == 0):
                others.append(m.n_ambient)
            if n > math.sqrt(1.5) * max(others, default=n):
                raise ValueError(f"source: emits isotropically inside label {lab}, which does not scatter "
                                 f"(mu_s = 0 in bin {b}) and whose index {n:g} traps a share of the photons "
                                 f"by total internal reflection; set time_gate_ns or give label {lab} mu_s > 0")

    def program_source(self, backend: str = "opencl") -> str:
        """The complete kernel program this simulation compiles on ``backend`` ("opencl" or
        "cuda"): prelude, generated #defines, RNG and transport, for reading or debugging."""
        if backend not in ("opencl", "cuda"):
            raise ValueError(f"backend: 'opencl' or 'cuda' (the NumPy reference compiles nothing), got {backend!r}")
        self.check()
        return build_plan(self).source_text(f"prelude_{backend}.h")

    def run(self, backend=None, progress: Callable[[int, int], None] | None = None, client=None,
            checkpoint=None, chunk_photons: int | None = None) -> Result:
        """Run on ``backend`` (name, instance or None for auto) and return normalised tallies.

        progress:      called as progress(photons_done, photons_total) after each launch (after
                       each chunk on a cluster).
        client:        a dask.distributed Client: the launches run as chunks on its workers
                       (photonqd.cluster); ``backend`` may also be a photonqd.cluster.Cluster.
        checkpoint:    a folder: each finished chunk is saved there and reused by a later run of
                       the same simulation (photonqd.chunks), so an interrupted run resumes.
        chunk_photons: photons per chunk, rounded to whole launches (default: one chunk locally,
                       about four per worker on a cluster). The tallies, batch errors and records
                       are the same for every chunking and worker count.
        """
        from .backends import get_backend
        from .cluster import Cluster

        self.check()
        if client is not None or isinstance(backend, Cluster):
            cluster = backend if isinstance(backend, Cluster) else Cluster(client, backend)
            return cluster.run(self, progress, checkpoint=checkpoint, chunk_photons=chunk_photons)
        be = backend if hasattr(backend, "prepare") else get_backend(backend)
        plan = build_plan(self)
        start = time.perf_counter()
        runner = be.prepare(plan)
        prepared = time.perf_counter()
        launches = self.launches(be.default_batch, be.min_batch, plan.max_launch_photons)
        merge = ChunkMerge(plan.layout.size, plan.record_capacity)
        store = ChunkStore(checkpoint, run_key(self, plan, be.name, launches)) if checkpoint is not None else None
        todo = store.resume(launches, merge) if store else launches
        if progress and merge.photons:
            progress(merge.photons, self.photons)
        done = merge.photons

        def step(n):
            nonlocal done
            done += n
            if progress:
                progress(done, self.photons)

        for part in split(todo, chunk_photons or self.photons) if todo else []:
            chunk = self.run_chunk(runner, plan, part, step, be.device)
            if store:
                store.save(chunk)
            merge.add(chunk)
        whole = merge.whole()
        if store and len(merge.parts) > 1:
            store.compact(whole)
        end = time.perf_counter()
        return self.assemble(plan, whole, be.name, be.device, end - start,
                             {"prepare_seconds": prepared - start, "transport_seconds": end - prepared})

    def launches(self, default_batch: int, min_batch: int, max_launch_photons: int) -> list:
        """The run's launches ((first photon, photons), ...) for a backend with these batch sizes:
        at least 10 by default, so that batch means give a standard error, unless that would make
        launches too small to keep the backend busy; never more photons per launch than the
        tallies hold without wrapping. The batches, and so the batch errors, depend on this alone."""
        batch = int(self.batch_photons or min(default_batch, max(-(-self.photons // 10), min_batch)))
        batch = min(batch, max_launch_photons)
        return [(self.first_photon + d, min(batch, self.photons - d)) for d in range(0, self.photons, batch)]

    def run_chunk(self, runner, plan, launches: list, on_launch: Callable[[int], None] | None = None,
                  device: str = "") -> Chunk:
        """Transport ``launches`` (consecutive launches of this run) on a prepared ``runner``:
        their exact tally sum, one row per launch (photons, batch scalars, kept batch arrays), and
        the trace and detected-photon records they produced. ``on_launch(n)`` after each launch."""
        total = ExactSum(plan.layout.size)
        kept = BATCH_ARRAYS if self.keep_batches is True else tuple(self.keep_batches or ())
        rows, records, trace = [], [], None
        capacity = plan.record_capacity
        for group in runner.groups(list(launches)):
            for (_, n), out in zip(group, runner.launch_many(group)):
                if out.trace is not None:
                    trace = out.trace if trace is None else np.where(np.isnan(trace), out.trace, trace)
                if capacity:
                    records.append(out.records[:capacity - sum(len(r) for r in records)])
                total.add(out.tally)
                norm = normalise(out.tally, plan.layout, n)
                species = norm["species"].reshape(plan.layout.n_species, plan.layout.n_voxels).sum(axis=1)
                scalars = np.concatenate([norm["scalars"], [norm["absorbed"].sum(), norm["map"].sum()], species])
                batch = None
                if self.keep_batches:
                    arrays = {k: v for k, v in self._arrays(norm, plan.layout).items() if k in kept}
                    batch = self.reduce_batch(arrays) if self.reduce_batch else arrays
                rows.append((n, scalars, batch))
                if on_launch:
                    on_launch(n)
        return Chunk(tuple(launches), total, rows, trace,
                     np.concatenate(records) if capacity else None, device)

    def assemble(self, plan, whole: Chunk, backend: str, device: str, seconds: float,
                 extra: dict | None = None) -> Result:
        """The normalised Result of the run from ``whole``, the chunk of all its launches
        (ChunkMerge.whole): the same whatever the chunking, because the tallies merge exactly."""
        total, rows, trace, capacity = whole.total, whole.rows, whole.trace, plan.record_capacity
        norm = normalise(total.as_float(), plan.layout, self.photons)
        arrays = self._arrays(norm, plan.layout)
        s = norm["scalars"]
        offered = total.value(plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"])
        detected = _as_records(whole.records) if capacity else None
        stopped = float(s[SCALAR_SLOTS["STOPPED"]])
        if stopped > 0:
            warnings.warn(f"{stopped:.3g} of the launched weight was stopped by a guard (flight time "
                          f"> max_flight_ns = {self.max_flight_ns:g} ns, more than max_steps = "
                          f"{self.max_steps} loop iterations, or a roulette gain above "
                          f"{MAX_ROULETTE_GAIN:g}): the "
                          "problem may trap photons (a clear, closed region); see Result.stopped",
                          RuntimeWarning, stacklevel=3)
        batches = [b for _, _, b in rows] if self.keep_batches else None
        return Result(
            photons=self.photons, backend=backend, device=device,
            absorbed=arrays["absorbed"], fluence=arrays["fluence"],
            escaped={f: float(s[SCALAR_SLOTS["ESCAPE"] + i]) for i, f in enumerate(FACES)},
            escaped_ambient=float(s[SCALAR_SLOTS["ESCAPE_AMBIENT"]]),
            specular=float(s[SCALAR_SLOTS["SPECULAR"]]), missed=float(s[SCALAR_SLOTS["MISSED"]]),
            alive=float(s[SCALAR_SLOTS["ALIVE"]]), roulette=float(s[SCALAR_SLOTS["ROULETTE"]]),
            stopped=stopped, exit_map=arrays["exit_map"],
            interactions=float(s[SCALAR_SLOTS["INTERACTIONS"]]), steps=float(s[SCALAR_SLOTS["STEPS"]]),
            fluorophore_absorbed=arrays["species"], detected=detected,
            detected_overflow=offered - (0 if detected is None else len(detected)),
            batch_photons=np.array([n for n, _, _ in rows]), batch_scalars=np.array([r for _, r, _ in rows]),
            batch_tallies=batches or None, trace=trace, seconds=seconds, extra=dict(extra or {}),
        )

    def _arrays(self, norm: dict, layout: TallyLayout) -> dict:
        shape = self.medium.shape
        volume = float(np.prod(self.medium.voxel_size))
        return {
            "absorbed": norm["absorbed"].reshape(shape),
            "fluence": None if norm["track"] is None else
            norm["track"].reshape(shape if self.fluence_bands is None else (-1, *shape)) / volume,
            "exit_map": norm["map"].reshape(self.exit_map.pixels) if self.exit_map else None,
            "species": norm["species"].reshape((-1, *shape)) if layout.n_species else None,
        }


def check_tally_size(medium: Medium, fluence: bool, exit_map: ExitMap | None, fluence_bands: int = 1) -> None:
    """Refuse a problem whose device buffers exceed what the kernels index: the tally buffer
    (TallyLayout) and the fluorophore concentration buffer (one volume per species)."""
    voxels, species = int(np.prod(medium.shape)), medium.n_species
    TallyLayout(voxels, fluence, species, exit_map.n_pixels if exit_map else 0, fluence_bands).check()
    if species * voxels > MAX_INDEX:
        raise ValueError(f"fluorophore_concentration: {species} species x {voxels} voxels exceed the "
                         f"kernels' limit of {MAX_INDEX} entries")


#: Per-batch arrays Simulation.keep_batches can keep (keys of Result.batch_tallies entries).
BATCH_ARRAYS = ("absorbed", "fluence", "exit_map", "species")


def _as_records(rows: np.ndarray) -> np.ndarray:
    """Kernel record rows (float32 x 8) as a structured array."""
    out = np.zeros(len(rows), dtype=[(f, np.int64 if f == "bin" else np.float64)
                                     for f in RECORD_FIELDS])
    for i, f in enumerate(RECORD_FIELDS):
        out[f] = rows[:, i]
    return out

