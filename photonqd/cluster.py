"""Runs on a Dask cluster (dask.distributed), bit for bit the same as in one process.

A run's launches (Simulation.launches: the same batches as a single-process run on the same
backend) are grouped into chunks of whole launches (photonqd.chunks); each worker builds its own
backend and kernel once per run and returns a chunk's exact integer tally sum, its per-launch
batch rows and its records. The client merges them in launch order (Simulation.assemble), so the
Result does not depend on the chunking, the worker count or which worker ran what. A chunk whose
worker dies is rerun elsewhere by the scheduler with the same result; with a checkpoint folder
every finished chunk is saved as it arrives and a rerun of an interrupted run loads it.

A ``Cluster`` stands wherever a backend is accepted (Simulation.run, run_study, ...): a study's
runs are each spread over the workers in turn. dask and distributed are optional
(``pip install 'photonqd[cluster]'``); nothing here imports them until a cluster is used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
import pickle
import socket
import threading
import time
from collections import OrderedDict

from .chunks import ChunkMerge, ChunkStore, run_key, split

#: Seconds to wait for a scheduler before giving up on --cluster ADDRESS.
CONNECT_TIMEOUT_S = 10
#: Chunks per worker by default: enough to balance uneven workers and to checkpoint often,
#: few enough that a chunk's transfer (a whole tally) stays small beside its transport.
CHUNKS_PER_WORKER = 4
#: Prepared runs a worker keeps (kernel built, buffers uploaded) for the chunks still to come.
KEPT_RUNS = 2

_RUNNERS: OrderedDict = OrderedDict()     # on a worker: run key -> (plan, runner, device)
_DEVICE_LOCK = threading.Lock()          # one chunk at a time uses a worker's device


def _require_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError("a cluster needs dask.distributed: pip install 'photonqd[cluster]'") from None
    return distributed


class Cluster:
    """Simulations on the workers of a dask.distributed ``client``.

    backend:       "cuda", "opencl", "numpy", or None: the first in photonqd's auto order that
                   every worker can run (each worker reports what it finds).
    checkpoint:    default checkpoint folder of every run (Simulation.run's ``checkpoint``).
    chunk_photons: default photons per chunk (None: about CHUNKS_PER_WORKER chunks per worker).
    """

    def __init__(self, client, backend: str | None = None, checkpoint=None, chunk_photons: int | None = None):
        _require_distributed()
        if hasattr(backend, "prepare"):
            backend = backend.name
        if backend is not None and backend not in ("cuda", "opencl", "numpy"):
            raise ValueError(f"backend: 'cuda', 'opencl', 'numpy' or None, got {backend!r}")
        self.client, self.checkpoint, self.chunk_photons = client, checkpoint, chunk_photons
        reports = client.run(_describe_worker, backend)
        if not reports:
            raise RuntimeError(f"cluster {client.scheduler.address}: has no workers")
        if backend is None:
            common = [b for b in ("cuda", "opencl", "numpy") if all(b in r["available"] for r in reports.values())]
            backend = common[0]
            reports = client.run(_describe_worker, backend)
        mine = code_fingerprint()
        foreign = {a: r.get("code") for a, r in reports.items() if r.get("code") != mine}
        if foreign:
            address, theirs = next(iter(foreign.items()))
            raise RuntimeError(f"cluster: worker {address} runs other photonqd code ({theirs or 'unknown'}) than "
                               f"this client ({mine}); install the same version and commit everywhere")
        failed = {a: r["error"] for a, r in reports.items() if r.get("error")}
        if failed:
            address, error = next(iter(failed.items()))
            raise RuntimeError(f"cluster: worker {address} cannot run the {backend} backend: {error}")
        batches = {(r["default_batch"], r["min_batch"]) for r in reports.values()}
        if len(batches) != 1:
            raise RuntimeError(f"cluster: workers disagree on the {backend} backend's batch sizes {batches}")
        (self.default_batch, self.min_batch), = batches
        self.name = backend
        self.workers = {a: {k: r[k] for k in ("host", "device", "pid")} for a, r in sorted(reports.items())}
        # a study file resumes on the same device whatever the worker count: the device is the
        # set of worker devices, the count is provenance
        self.device = " + ".join(sorted({r["device"] for r in reports.values()}))

    @property
    def address(self) -> str:
        return self.client.scheduler.address

    def provenance(self) -> dict:
        """The scheduler, and every worker's host, process and device."""
        return {"scheduler": self.address, "backend": self.name, "workers": self.workers}

    def run(self, sim, progress=None, checkpoint=None, chunk_photons: int | None = None):
        """``sim``'s Result, from chunks run on the workers (Simulation.run with a client)."""
        from distributed import as_completed

        from .kernel_source import build_plan

        sim.check()
        start = time.perf_counter()
        plan = build_plan(sim)
        launches = sim.launches(self.default_batch, self.min_batch, plan.max_launch_photons)
        key = run_key(sim, plan, self.name, launches)
        folder = checkpoint if checkpoint is not None else self.checkpoint
        store = ChunkStore(folder, key) if folder is not None else None
        merge = ChunkMerge(plan.layout.size, plan.record_capacity)
        todo = store.resume(launches, merge) if store else list(launches)
        saved = len(merge.parts)
        if progress and merge.photons:
            progress(merge.photons, sim.photons)
        workers = max(1, len(self.client.scheduler_info()["workers"]))
        size = chunk_photons or self.chunk_photons or math.ceil(sum(n for _, n in todo) / (CHUNKS_PER_WORKER * workers))
        parts = split(todo, size) if todo else []
        # the simulation travels once as a task's input that the scheduler can recompute (a
        # scattered object would be lost with the worker holding it)
        blob = self.client.submit(pickle.loads, _dumps(sim), pure=False)
        futures = [self.client.submit(_run_chunk, blob, self.name, key, part, pure=False) for part in parts]
        try:
            for future in as_completed(futures):
                chunk = future.result()
                future.release()               # the worker may drop its copy of the tallies
                if store:
                    store.save(chunk)
                merge.add(chunk)
                if progress:
                    progress(merge.photons, sim.photons)
        finally:
            self.client.cancel(futures + [blob])
        whole = merge.whole()
        if store and len(merge.parts) > 1:
            store.compact(whole)
        seconds = time.perf_counter() - start
        extra = {"transport_seconds": seconds, "prepare_seconds": 0.0,
                 "cluster": {**self.provenance(), "chunks": len(merge.parts), "chunk_photons": size,
                             "checkpointed_chunks": saved}}
        return sim.assemble(plan, whole, self.name, whole.device or self.device, seconds, extra)


def _dumps(sim) -> bytes:
    """``sim`` pickled by value (cloudpickle: its reduce_batch may be a lambda)."""
    import cloudpickle
    return cloudpickle.dumps(sim)


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """photonqd's version and a digest of its Python and kernel sources: a cluster's workers must
    run the client's code, or their chunks would not be the single-process run's."""
    import importlib.resources
    from pathlib import Path

    from . import __version__

    digest = hashlib.sha256()
    package = Path(__file__).parent
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    kernels = importlib.resources.files("photonqd.kernels")
    for item in sorted(kernels.iterdir(), key=lambda f: f.name):
        if item.name.endswith((".cl", ".h")):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return f"{__version__}+{digest.hexdigest()[:16]}"


def _describe_worker(backend: str | None) -> dict:
    """On a worker: its host and process, its photonqd code, the backends it can run and, for
    ``backend``, the device and batch sizes (or the error that stops it)."""
    import os

    from .backends import available, get_backend

    out = {"host": socket.gethostname(), "pid": os.getpid(), "available": available(), "code": code_fingerprint()}
    if backend is not None:
        try:
            be = get_backend(backend)
            out.update(device=be.device, default_batch=be.default_batch, min_batch=be.min_batch)
        except Exception as err:  # reported to the client, which names the worker
            out["error"] = str(err) or type(err).__name__
    return out


def _run_chunk(sim, backend: str, key: str, launches: list):
    """On a worker: transport ``launches`` of ``sim`` and return the Chunk; the run's kernel is
    built once per worker and kept for its next chunks."""
    from .backends import get_backend
    from .kernel_source import build_plan

    with _DEVICE_LOCK:
        entry = _RUNNERS.get(key)
        if entry is None:
            be = get_backend(backend)
            plan = build_plan(sim)
            entry = _RUNNERS[key] = (plan, be.prepare(plan), be.device)
            while len(_RUNNERS) > KEPT_RUNS:
                _RUNNERS.popitem(last=False)
        _RUNNERS.move_to_end(key)
        plan, runner, device = entry
        return sim.run_chunk(runner, plan, launches, device=device)


@contextlib.contextmanager
def connect(address: str | None = None, workers: int | None = None, backend: str | None = None):
    """A dask.distributed Client for the ``with`` block: of the scheduler at ``address``
    ("tcp://host:8786"), or of a local cluster of ``workers`` processes (one thread each),
    started here and closed at the end: dask-cuda's LocalCUDACluster, one worker per GPU, where
    it is installed, GPUs are present and the backend is CUDA or automatic."""
    distributed = _require_distributed()
    if address is not None and workers is not None:
        raise ValueError("--cluster, --workers: give one (--workers starts a local cluster)")
    if address is not None:
        if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
            raise ValueError(f"--cluster: expected a scheduler address such as tcp://host:8786, got {address!r}")
        try:
            client = distributed.Client(address.strip(), timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, TypeError) as err:
            message = " ".join(str(err).split()) or type(err).__name__
            raise ValueError(f"--cluster {address}: no Dask scheduler answered ({message})") from None
        with client:
            yield client
        return
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 1024):
        raise ValueError(f"--workers: a whole number of worker processes in [1, 1024], got {workers!r}")
    cuda = _local_cuda_cluster(workers, backend)
    if cuda is not None:
        with cuda, distributed.Client(cuda) as client:
            yield client
        return
    n = workers or 1
    with distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  env=_worker_env(n, backend)) as local, distributed.Client(local) as client:
        yield client


def _local_cuda_cluster(workers, backend):
    if backend not in (None, "cuda"):
        return None
    try:
        from dask_cuda import LocalCUDACluster
        from .backends import available
    except ImportError:
        return None
    if "cuda" not in available():
        return None
    return LocalCUDACluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0")


def _worker_env(workers: int, backend: str | None) -> dict:
    """Environment of local worker processes: several PoCL workers on one CPU share its cores
    rather than each starting a thread per core."""
    import os

    if workers == 1 or backend == "cuda":
        return {}
    threads = max(1, (os.cpu_count() or 1) // workers)
    return {"POCL_CPU_MAX_CU_COUNT": str(threads), "POCL_MAX_PTHREAD_COUNT": str(threads)}
