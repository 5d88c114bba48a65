"""A run's launches grouped into chunks, and checkpoints of finished chunks.

A chunk is a run of consecutive launches (photonqd.simulation.Chunk): its integer tallies are an
exact sum, so a run's chunks merge into the same Result however the launches were grouped and
wherever they ran. A checkpoint folder keeps every finished chunk of a run in a file named by the
run's key (everything that decides its tallies) and its launches; a later run of the same
simulation loads them instead of transporting those photons again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import integer
from .tallies import MAX_PHOTONS, ExactSum

#: Buffers the kernel writes: not part of a run's identity.
OUTPUT_BUFFERS = ("tally", "trace", "records", "work")
SUFFIX = ".chunk"


@dataclass
class Chunk:
    """Consecutive launches of one run, transported together (in this process or on a cluster
    worker): the exact sum of their integer tallies, one row (photons, batch scalars, kept batch
    arrays or reduce_batch's value) per launch, the trace and the detected-photon records they
    produced, and the device that ran them."""

    launches: tuple
    total: ExactSum | None
    rows: list
    trace: np.ndarray | None
    records: np.ndarray | None
    device: str = ""

    @property
    def photons(self) -> int:
        return sum(n for _, n in self.launches)


class ChunkMerge:
    """A run's chunks merged as they arrive, in any order: each chunk's tallies are added to the
    exact sum at once and dropped (a cluster's client holds one tally, not one per chunk); the
    rows, traces and records wait for ``whole`` to put them in launch order."""

    def __init__(self, size: int, record_capacity: int):
        self.total, self.capacity, self.parts = ExactSum(size), record_capacity, []

    def add(self, chunk: Chunk) -> None:
        self.total.merge(chunk.total)
        self.parts.append(dataclasses.replace(chunk, total=None))

    @property
    def photons(self) -> int:
        return sum(c.photons for c in self.parts)

    def whole(self) -> Chunk:
        """One chunk of every launch added: rows, trace and records in launch order (records kept
        up to the capacity, as one process running the launches in order keeps them)."""
        parts = sorted(self.parts, key=lambda c: c.launches[0][0])
        rows, records, trace = [], [], None
        for c in parts:
            rows.extend(c.rows)
            if c.trace is not None:
                trace = c.trace if trace is None else np.where(np.isnan(trace), c.trace, trace)
            if self.capacity:
                records.append(c.records[:self.capacity - sum(len(r) for r in records)])
        return Chunk(tuple(launch for c in parts for launch in c.launches), self.total, rows, trace,
                     np.concatenate(records) if self.capacity else None,
                     " + ".join(sorted({c.device for c in parts if c.device})))


def split(launches: list, chunk_photons: int) -> list[list]:
    """``launches`` ((first, n), ...) in consecutive groups of whole launches, each holding at
    least one launch and closing once it reaches ``chunk_photons`` photons."""
    chunk_photons = integer("chunk_photons", chunk_photons, 1, MAX_PHOTONS)
    parts, part, count = [], [], 0
    for launch in launches:
        part.append(tuple(launch))
        count += launch[1]
        if count >= chunk_photons:
            parts.append(part)
            part, count = [], 0
    return parts + [part] if part else parts


def run_key(sim, plan, backend: str, launches: list) -> str:
    """A digest of everything that decides a run's chunks: the backend, photonqd's version and
    kernel source, the kernel's defines and input buffers, the seed and stream, the traced
    photons, the launches, and what is kept of each batch (reduce_batch pickled by value)."""
    from . import __version__

    h = hashlib.sha256()

    def put(*parts):
        for part in parts:
            data = part if isinstance(part, bytes) else repr(part).encode()
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)

    put(backend, __version__, plan.source_text("prelude_opencl.h"), sorted(plan.defines().items()))
    for name in sorted(plan.buffers):
        if name not in OUTPUT_BUFFERS:
            array = np.ascontiguousarray(plan.buffers[name])
            put(name, array.dtype.str, array.shape, array.tobytes())
    put(plan.seed, plan.trace_ids.tobytes(), plan.trace_len, sim.trace_events, tuple(launches),
        sim.keep_batches if isinstance(sim.keep_batches, bool) else tuple(sim.keep_batches),
        _function_bytes(sim.reduce_batch))
    return h.hexdigest()


def _function_bytes(fn) -> bytes:
    if fn is None:
        return b""
    try:
        import cloudpickle
        return cloudpickle.dumps(fn)
    except ImportError:
        pass
    try:
        return pickle.dumps(fn)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ValueError(f"checkpoint: reduce_batch cannot be pickled ({err}); install cloudpickle "
                         "or give a module-level function") from None


class ChunkStore:
    """Finished chunks of one run (key: run_key) in ``folder``/<key>/, one file per chunk,
    each written atomically (a temporary name renamed over the final one)."""

    def __init__(self, folder, key: str):
        self.folder = Path(folder) / key[:40]
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"checkpoint: {self.folder} is a file, not a folder")

    def resume(self, launches: list, merge: ChunkMerge) -> list:
        """Add to ``merge`` the saved chunks whose launches are all among ``launches``, without
        overlaps (one at a time: a big run's chunks are never all in memory), and return the
        launches still to run, in order. A file that cannot be read is ignored: its photons run
        again."""
        wanted, taken = set(map(tuple, launches)), set()
        for path in self._files():
            try:
                with open(path, "rb") as fh:
                    chunk = pickle.load(fh)
                mine = set(map(tuple, chunk.launches))
            except Exception:       # truncated or foreign file: recompute rather than trust it
                continue
            if mine and mine <= wanted and not mine & taken:
                taken |= mine
                merge.add(chunk)
        return [launch for launch in map(tuple, launches) if launch not in taken]

    def _files(self) -> list:
        """Chunk files by first photon, the longest first (a compacted run before the parts an
        interruption left beside it)."""
        def span(path):
            try:
                first, end = (int(v) for v in path.name[:-len(SUFFIX)].split("-"))
            except ValueError:
                return (float("inf"), 0)
            return (first, -end)
        return sorted(self.folder.glob(f"*{SUFFIX}"), key=span) if self.folder.is_dir() else []

    def compact(self, whole: Chunk) -> None:
        """Replace the run's chunk files by ``whole`` (every launch: ChunkMerge.whole), so that a
        finished run waiting for the rest of its study keeps one tally on disk, not one per chunk."""
        parts = self._files()
        kept = self.save(whole)
        for path in parts:
            if path != kept:
                path.unlink(missing_ok=True)

    def save(self, chunk: Chunk) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        (first, _), (last, n) = chunk.launches[0], chunk.launches[-1]
        path = self.folder / f"{first:020d}-{last + n:020d}{SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(chunk, fh, protocol=pickle.HIGHEST_PROTOCOL)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
