"""A run's launches grouped into chunks, and checkpoints of finished chunks.

A chunk is a run of consecutive launches (photonqd.simulation.Chunk): its integer tallies are an
exact sum, so a run's chunks merge into the same Result however the launches were grouped and
wherever they ran. A checkpoint folder keeps every finished chunk of a run in a file named by the
run's key (everything that decides its tallies) and its launches; a later run of the same
simulation loads them instead of transporting those photons again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

from . import __version__
from .checks import integer
from .tallies import MAX_PHOTONS

#: Buffers the kernel writes: not part of a run's identity.
OUTPUT_BUFFERS = ("tally", "trace", "records", "work")
SUFFIX = ".chunk"


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

    def saved(self, launches: list) -> list:
        """The saved chunks whose launches are all among ``launches``, without overlaps, in
        launch order (a file that cannot be read is ignored: its photons run again)."""
        wanted, taken, out = set(map(tuple, launches)), set(), []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                with open(path, "rb") as fh:
                    chunk = pickle.load(fh)
            except Exception:       # truncated or foreign file: recompute rather than trust it
                continue
            mine = set(map(tuple, getattr(chunk, "launches", ())))
            if mine and mine <= wanted and not mine & taken:
                taken |= mine
                out.append(chunk)
        return sorted(out, key=lambda c: c.launches[0][0])

    def pending(self, launches: list) -> tuple[list, list]:
        """(saved chunks of this run, the launches they do not cover, in order)."""
        chunks = self.saved(launches)
        covered = {launch for c in chunks for launch in map(tuple, c.launches)}
        return chunks, [launch for launch in map(tuple, launches) if launch not in covered]

    def save(self, chunk) -> None:
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
