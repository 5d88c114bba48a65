"""A transport simulation: medium + source + tallies, run in batches on a chosen backend."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .kernel_source import build_plan
from .medium import FACES, Medium
from .sources import Source
from .tallies import MAX_PHOTONS, SCALAR_SLOTS, Result, TallyLayout, normalise


@dataclass
class ExitMap:
    """Escaped weight through the z = 0 face on a pixel grid.

    pixels:          (mx, my) number of pixels.
    pixel_size:      (px, py) in mm.
    origin:          (x0, y0) in mm of the map's corner in the grid frame.
    half_angle_deg:  acceptance half-angle in the ambient medium, measured from the -z axis
                     (None: accept every escaping photon).
    """

    pixels: tuple
    pixel_size: tuple
    origin: tuple = (0.0, 0.0)
    half_angle_deg: float | None = None

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

    photons:            number of photons to launch (1 .. 2**31 - 1).
    seed:               64-bit seed; with the photon index it keys every random number.
    time_gate_ns:       photons still propagating at this time of flight (ns) stop and are
                        counted as ``alive``; None: no gate.
    fluence:            tally the fluence (track-length estimator).
    exit_map:           an ExitMap for the z = 0 face, or None.
    roulette_threshold: weight below which Russian roulette is played after a scattering event.
    roulette_boost:     a survivor's weight is multiplied by this (survival probability 1/boost).
    trace_photons:      photon indices whose first ``trace_events`` events are recorded.
    batch_photons:      photons per kernel launch (None: the backend's default, at most a tenth
                        of the photons so that there are >= 10 batches for standard errors).
    keep_batches:       keep every batch's full tally (for per-voxel batch-means errors).
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
    trace_photons: tuple = ()
    trace_events: int = 32
    batch_photons: int | None = None
    keep_batches: bool = False

    def check(self) -> None:
        """Validate everything before any kernel is built or launched."""
        if not isinstance(self.medium, Medium):
            raise TypeError("medium: expected a photonqd.Medium")
        if not isinstance(self.source, Source):
            raise TypeError("source: expected a photonqd source (PencilBeam, GaussianBeam, ...)")
        if int(self.photons) != self.photons or not 1 <= self.photons <= MAX_PHOTONS:
            raise ValueError(f"photons: must be an integer in [1, {MAX_PHOTONS}] "
                             f"(the 64-bit fixed-point tally limit), got {self.photons}")
        self.photons = int(self.photons)
        if int(self.seed) != self.seed or not 0 <= self.seed < 2**64:
            raise ValueError(f"seed: must be an integer in [0, 2**64), got {self.seed}")
        if self.time_gate_ns is not None and not (math.isfinite(self.time_gate_ns) and self.time_gate_ns > 0):
            raise ValueError(f"time_gate_ns: must be > 0 ns or None, got {self.time_gate_ns}")
        if not 0 < self.roulette_threshold < 1:
            raise ValueError(f"roulette_threshold: must be in (0, 1), got {self.roulette_threshold}")
        if not self.roulette_boost > 1:
            raise ValueError(f"roulette_boost: must be > 1, got {self.roulette_boost}")
        if self.batch_photons is not None and not 1 <= self.batch_photons <= MAX_PHOTONS:
            raise ValueError(f"batch_photons: must be in [1, {MAX_PHOTONS}], got {self.batch_photons}")
        if not 1 <= self.trace_events <= 4096:
            raise ValueError(f"trace_events: must be in [1, 4096], got {self.trace_events}")
        ids = np.asarray(self.trace_photons, dtype=np.int64).ravel()
        if ids.size > 1024 or np.any(ids < 0) or np.any(ids >= self.photons) or len(set(ids)) != ids.size:
            raise ValueError("trace_photons: up to 1024 distinct photon indices in [0, photons)")
        self.trace_photons = tuple(int(i) for i in ids)
        if self.exit_map is not None and not isinstance(self.exit_map, ExitMap):
            raise TypeError("exit_map: expected a photonqd.ExitMap or None")
        self.source.check(self.medium)
        tissue = self.medium.optics[:, 1:, :]
        escape = any(bc == "escape" for bc in self.medium.boundary.values()) or \
            np.any(self.medium.labels == 0)
        if not escape and self.time_gate_ns is None and not np.any(tissue[..., 0] > 0):
            raise ValueError("medium: no face escapes, no tissue absorbs and there is no time gate; "
                             "photons would never stop")

    def run(self, backend=None, progress: Callable[[int, int], None] | None = None) -> Result:
        """Run on ``backend`` (name, instance or None for auto) and return normalised tallies.

        progress: called as progress(photons_done, photons_total) after each batch.
        """
        from .backends import get_backend

        self.check()
        be = backend if hasattr(backend, "prepare") else get_backend(backend)
        plan = build_plan(self)
        start = time.perf_counter()
        runner = be.prepare(plan)
        prepared = time.perf_counter()
        # at least 10 batches by default, so that batch means give a standard error, unless
        # that would make batches too small to keep the backend busy
        batch = int(self.batch_photons or
                    min(be.default_batch, max(-(-self.photons // 10), be.min_batch)))
        total = np.zeros(plan.layout.size, dtype=np.int64)
        batch_photons, batch_scalars, batch_tallies = [], [], []
        trace = None
        done = 0
        while done < self.photons:
            n = min(batch, self.photons - done)
            raw, tr = runner.run(done, n)
            if tr is not None:
                trace = tr if trace is None else np.where(np.isnan(trace), tr, trace)
            total += raw
            norm = normalise(raw, plan.layout, n)
            batch_photons.append(n)
            batch_scalars.append(np.append(norm["scalars"], norm["absorbed"].sum()))
            batch_scalars[-1][SCALAR_SLOTS["INTERACTIONS"]] = norm["interactions"]
            if self.keep_batches:
                batch_tallies.append(self._arrays(norm, plan.layout))
            done += n
            if progress:
                progress(done, self.photons)
        end = time.perf_counter()
        if plan.layout.fluence and np.any(total[plan.layout.off_fluence:plan.layout.off_scalar] < 0):
            raise OverflowError("fluence tally overflowed its 64-bit fixed-point range; "
                                "run fewer photons per simulation")
        norm = normalise(total, plan.layout, self.photons)
        arrays = self._arrays(norm, plan.layout)
        s = norm["scalars"]
        return Result(
            photons=self.photons, backend=be.name, device=be.device,
            absorbed=arrays["absorbed"], fluence=arrays["fluence"],
            escaped={f: float(s[SCALAR_SLOTS["ESCAPE"] + i]) for i, f in enumerate(FACES)},
            escaped_ambient=float(s[SCALAR_SLOTS["ESCAPE_AMBIENT"]]),
            specular=float(s[SCALAR_SLOTS["SPECULAR"]]), missed=float(s[SCALAR_SLOTS["MISSED"]]),
            alive=float(s[SCALAR_SLOTS["ALIVE"]]), roulette=float(s[SCALAR_SLOTS["ROULETTE"]]),
            exit_map=arrays["exit_map"], interactions=float(norm["interactions"]),
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
        }

