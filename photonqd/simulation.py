"""A transport simulation: medium + source + tallies, run in batches on a chosen backend."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .kernel_abi import FACES, RECORD_FIELDS, SCALAR_SLOTS
from .kernel_source import build_plan
from .medium import Medium
from .sources import Source
from .tallies import MAX_PHOTONS, ExactSum, Result, TallyLayout, normalise

#: Default flight-time guard (ns): a photon still in flight after this long is stopped.
MAX_FLIGHT_NS = 1000.0
#: Default guard on transport loop iterations per photon.
MAX_STEPS = 10**8


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
        px = tuple(int(v) for v in np.broadcast_to(self.pixels, (2,)))
        if min(px) < 1:
            raise ValueError(f"exit_map.pixels: need two integers >= 1, got {self.pixels}")
        self.pixels = px
        size = tuple(float(v) for v in np.broadcast_to(self.pixel_size, (2,)))
        if not all(math.isfinite(s) and s > 0 for s in size):
            raise ValueError(f"exit_map.pixel_size: need two numbers > 0 mm, got {self.pixel_size}")
        self.pixel_size = size
        self.origin = tuple(float(v) for v in np.broadcast_to(self.origin, (2,)))
        if self.half_angle_deg is not None and not 0 < self.half_angle_deg <= 90:
            raise ValueError(f"exit_map.half_angle_deg: must be in (0, 90] degrees, got {self.half_angle_deg}")
        if self.bin_efficiency is not None:
            eff = np.asarray(self.bin_efficiency, dtype=np.float64).ravel()
            if not np.all((eff >= 0) & (eff <= 1)):
                raise ValueError("exit_map.bin_efficiency: values must lie in [0, 1]")
            self.bin_efficiency = eff
        if int(self.record_capacity) != self.record_capacity or not 0 <= self.record_capacity <= 2**26:
            raise ValueError(f"exit_map.record_capacity: must be an integer in [0, 2**26], "
                             f"got {self.record_capacity}")
        self.record_capacity = int(self.record_capacity)

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
    """

    medium: Medium
    source: Source
    photons: int = 100_000
    seed: int = 1
    time_gate_ns: float | None = None
    fluence: bool = True
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

    def check(self) -> None:
        """Validate everything before any kernel is built or launched."""
        if not isinstance(self.medium, Medium):
            raise TypeError("medium: expected a photonqd.Medium")
        if not isinstance(self.source, Source):
            raise TypeError("source: expected a photonqd source (PencilBeam, GaussianBeam, ...)")
        if int(self.photons) != self.photons or not 1 <= self.photons <= MAX_PHOTONS:
            raise ValueError(f"photons: must be an integer in [1, 2**53], got {self.photons}")
        self.photons = int(self.photons)
        if int(self.seed) != self.seed or not 0 <= self.seed < 2**64:
            raise ValueError(f"seed: must be an integer in [0, 2**64), got {self.seed}")
        if self.time_gate_ns is not None and not (math.isfinite(self.time_gate_ns) and self.time_gate_ns > 0):
            raise ValueError(f"time_gate_ns: must be > 0 ns or None, got {self.time_gate_ns}")
        if not 0 < self.roulette_threshold < 1:
            raise ValueError(f"roulette_threshold: must be in (0, 1), got {self.roulette_threshold}")
        if not self.roulette_boost > 1:
            raise ValueError(f"roulette_boost: must be > 1, got {self.roulette_boost}")
        if not self.roulette_threshold * self.roulette_boost <= 1:
            # a survivor would carry more weight than a launched photon: the per-launch tally
            # bound (kernel_source.max_launch_photons) assumes it never does
            raise ValueError(f"roulette_threshold x roulette_boost: must be <= 1 so that no "
                             f"photon's weight exceeds 1, got {self.roulette_threshold} x "
                             f"{self.roulette_boost}")
        if self.keep_batches not in (True, False) and \
                not set(self.keep_batches) <= set(BATCH_ARRAYS):
            raise ValueError(f"keep_batches: True, False or names among {BATCH_ARRAYS}, got {self.keep_batches}")
        if self.batch_photons is not None and not 1 <= self.batch_photons <= MAX_PHOTONS:
            raise ValueError(f"batch_photons: must be in [1, {MAX_PHOTONS}], got {self.batch_photons}")
        if not (isinstance(self.max_flight_ns, (int, float)) and 0 < self.max_flight_ns <= 1e9):
            raise ValueError(f"max_flight_ns: must be in (0, 1e9] ns, got {self.max_flight_ns!r}")
        if not (isinstance(self.max_steps, (int, np.integer)) and 1 <= self.max_steps <= 2**31 - 1):
            raise ValueError(f"max_steps: must be an integer in [1, 2**31 - 1], got {self.max_steps!r}")
        if not 1 <= self.trace_events <= 4096:
            raise ValueError(f"trace_events: must be in [1, 4096], got {self.trace_events}")
        ids = np.asarray(self.trace_photons, dtype=np.int64).ravel()
        if ids.size > 1024 or np.any(ids < 0) or np.any(ids >= self.photons) or len(set(ids)) != ids.size:
            raise ValueError("trace_photons: up to 1024 distinct photon indices in [0, photons)")
        self.trace_photons = tuple(int(i) for i in ids)
        if self.exit_map is not None:
            if not isinstance(self.exit_map, ExitMap):
                raise TypeError("exit_map: expected a photonqd.ExitMap or None")
            self.exit_map.efficiency(self.medium.n_bins)
        if int(self.rng_stream) != self.rng_stream or not 0 <= self.rng_stream < 2**32:
            raise ValueError(f"rng_stream: must be an integer in [0, 2**32), got {self.rng_stream}")
        self.source.check(self.medium)
        tissue = self.medium.optics[:, 1:, :]
        escape = any(bc == "escape" for bc in self.medium.boundary.values()) or \
            np.any(self.medium.labels == 0)
        if not escape and self.time_gate_ns is None and not np.any(tissue[..., 0] > 0):
            raise ValueError("medium: no face escapes, no tissue absorbs and there is no time gate; "
                             "photons would never stop")

    def run(self, backend=None, progress: Callable[[int, int], None] | None = None) -> Result:
        """Run on ``backend`` (name, instance or None for auto) and return normalised tallies.

        progress: called as progress(photons_done, photons_total) after each launch.
        """
        from .backends import get_backend

        self.check()
        be = backend if hasattr(backend, "prepare") else get_backend(backend)
        plan = build_plan(self)
        start = time.perf_counter()
        runner = be.prepare(plan)
        prepared = time.perf_counter()
        # at least 10 launches by default, so that batch means give a standard error, unless
        # that would make launches too small to keep the backend busy; never more photons per
        # launch than the tallies can hold without wrapping
        batch = int(self.batch_photons or
                    min(be.default_batch, max(-(-self.photons // 10), be.min_batch)))
        batch = min(batch, plan.max_launch_photons)
        total = ExactSum(plan.layout.size)
        kept = BATCH_ARRAYS if self.keep_batches is True else tuple(self.keep_batches or ())
        batch_photons, batch_scalars, batch_tallies, records = [], [], [], []
        capacity = plan.record_capacity
        trace = None
        done = 0
        while done < self.photons:
            n = min(batch, self.photons - done)
            out = runner.launch(done, n)
            if out.trace is not None:
                trace = out.trace if trace is None else np.where(np.isnan(trace), out.trace, trace)
            if capacity:
                records.append(out.records[:capacity - sum(len(r) for r in records)])
            total.add(out.tally)
            norm = normalise(out.tally, plan.layout, n)
            batch_photons.append(n)
            species = norm["species"].reshape(plan.layout.n_species, plan.layout.n_voxels).sum(axis=1)
            batch_scalars.append(np.concatenate([norm["scalars"], [norm["absorbed"].sum(),
                                                                   norm["map"].sum()], species]))
            if self.keep_batches:
                arrays = self._arrays(norm, plan.layout)
                batch_tallies.append({k: v for k, v in arrays.items() if k in kept})
            done += n
            if progress:
                progress(done, self.photons)
        end = time.perf_counter()
        norm = normalise(total.as_float(), plan.layout, self.photons)
        arrays = self._arrays(norm, plan.layout)
        s = norm["scalars"]
        offered = total.value(plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"])
        detected = _as_records(np.concatenate(records)) if capacity else None
        stopped = float(s[SCALAR_SLOTS["STOPPED"]])
        if stopped > 0:
            warnings.warn(f"{stopped:.3g} of the launched weight was stopped by a guard (flight time "
                          f"> max_flight_ns = {self.max_flight_ns:g} ns, more than max_steps = "
                          f"{self.max_steps} loop iterations, or a roulette gain above 64): the "
                          "problem may trap photons (a clear, closed region); see Result.stopped",
                          RuntimeWarning, stacklevel=2)
        return Result(
            photons=self.photons, backend=be.name, device=be.device,
            absorbed=arrays["absorbed"], fluence=arrays["fluence"],
            escaped={f: float(s[SCALAR_SLOTS["ESCAPE"] + i]) for i, f in enumerate(FACES)},
            escaped_ambient=float(s[SCALAR_SLOTS["ESCAPE_AMBIENT"]]),
            specular=float(s[SCALAR_SLOTS["SPECULAR"]]), missed=float(s[SCALAR_SLOTS["MISSED"]]),
            alive=float(s[SCALAR_SLOTS["ALIVE"]]), roulette=float(s[SCALAR_SLOTS["ROULETTE"]]),
            stopped=stopped, exit_map=arrays["exit_map"],
            interactions=float(s[SCALAR_SLOTS["INTERACTIONS"]]), steps=float(s[SCALAR_SLOTS["STEPS"]]),
            fluorophore_absorbed=arrays["species"], detected=detected,
            detected_overflow=offered - (0 if detected is None else len(detected)),
            batch_photons=np.array(batch_photons), batch_scalars=np.array(batch_scalars),
            batch_tallies=batch_tallies or None, trace=trace, seconds=end - start,
            extra={"prepare_seconds": prepared - start, "transport_seconds": end - prepared},
        )

    def _arrays(self, norm: dict, layout: TallyLayout) -> dict:
        shape = self.medium.shape
        volume = float(np.prod(self.medium.voxel_size))
        return {
            "absorbed": norm["absorbed"].reshape(shape),
            "fluence": None if norm["track"] is None else norm["track"].reshape(shape) / volume,
            "exit_map": norm["map"].reshape(self.exit_map.pixels) if self.exit_map else None,
            "species": norm["species"].reshape((-1, *shape)) if layout.n_species else None,
        }


#: Per-batch arrays Simulation.keep_batches can keep (keys of Result.batch_tallies entries).
BATCH_ARRAYS = ("absorbed", "fluence", "exit_map", "species")

def _as_records(rows: np.ndarray) -> np.ndarray:
    """Kernel record rows (float32 x 8) as a structured array."""
    out = np.zeros(len(rows), dtype=[(f, np.int64 if f == "bin" else np.float64)
                                     for f in RECORD_FIELDS])
    for i, f in enumerate(RECORD_FIELDS):
        out[f] = rows[:, i]
    return out

