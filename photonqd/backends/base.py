"""The backend protocol, and the launch code the kernel backends (OpenCL, CUDA) share.

A backend turns a ``KernelPlan`` (photonqd.kernel_source) into tallies:

    runner = backend.prepare(plan)        # build the program, upload the read-only buffers
    out = runner.launch(first, n)         # photons first .. first + n - 1 -> BatchOutput
    for group in runner.groups(launches): # launches ((first, n), ...) that run best together
        outs = runner.launch_many(group)  #   -> one BatchOutput per launch

``launch`` may be called any number of times with any split of the photon indices: every photon's
random stream is keyed by (seed, index, stream), and tallies are integer sums, so the merged
result does not depend on the split, the launch configuration or the device.
"""

from __future__ import annotations

import abc
from typing import NamedTuple, Protocol

import numpy as np

from ..kernel_abi import BUFFER_ARGS, KERNEL_ARGS, RECORD_FIELDS, SCALAR_SLOTS, TRACE_FIELDS
from ..kernel_source import KernelPlan, photon_words


class BatchOutput(NamedTuple):
    """What every backend's runner returns for one launch."""

    tally: np.ndarray            # int64 fixed-point tallies (photonqd.tallies.TallyLayout)
    trace: np.ndarray | None     # (n_traced, trace_len, len(TRACE_FIELDS)), NaN where unused
    records: np.ndarray          # (n, len(RECORD_FIELDS)) detected-photon rows kept in this launch


class Runner(Protocol):
    def launch(self, first: int, n: int) -> BatchOutput:
        """Transport photons ``first`` .. ``first + n - 1``; tallies of this launch only."""

    def groups(self, launches: list) -> list:
        """``launches`` ((first, n), ...) cut into consecutive groups for launch_many."""

    def launch_many(self, launches: list) -> list:
        """One BatchOutput per launch of ``launches``, equal to launching them one by one."""


class Backend(Protocol):
    """What Simulation.run needs from a backend."""

    name: str                 # "numpy", "opencl", "cuda"
    device: str               # human-readable device description
    default_batch: int        # photons per launch when the simulation does not say
    min_batch: int            # fewer photons per launch would leave the device idle

    def prepare(self, plan: KernelPlan) -> Runner:
        """Build (or fetch from the cache) the program for ``plan`` and upload its inputs."""

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` random words (or uniforms) of each photon's stream, for cross-checks."""


def kernel_arguments(buffers: dict, seed: int, first: int, n: int) -> list:
    """pq_transport's arguments in KERNEL_ARGS order: the device ``buffers`` by name, then the
    seed, the launch's first photon index and its photon count as uint32 words."""
    scalars = {"seed_lo": seed & 0xFFFFFFFF, "seed_hi": seed >> 32,
               "first_lo": first & 0xFFFFFFFF, "first_hi": first >> 32, "n_photons": n}
    return [buffers[a.name] if a.role != "scalar" else np.uint32(scalars[a.name]) for a in KERNEL_ARGS]


class KernelRunner(abc.ABC):
    """Launch flow shared by the compiled backends: zero the outputs, launch persistent threads,
    read the tallies, trace and record back. Subclasses move memory and start the kernel."""

    def __init__(self, plan: KernelPlan):
        self.plan = plan
        self.dev = {a.name: self._upload(a.name, plan.buffers[a.name]) for a in BUFFER_ARGS}

    def groups(self, launches: list) -> list:
        """One launch per group: a launch already keeps the device busy to its end (persistent
        threads), and progress is reported between launches."""
        return [[launch] for launch in launches]

    def launch_many(self, launches: list) -> list:
        return [self.launch(first, n) for first, n in launches]

    def launch(self, first: int, n: int) -> BatchOutput:
        plan = self.plan
        self._zero("tally")
        self._zero("work")
        self._run(kernel_arguments(self.dev, plan.seed, first, n), n)
        tally = self._download("tally")
        trace = None
        if len(plan.trace_ids):
            trace = self._download("trace").reshape(len(plan.trace_ids), plan.trace_len,
                                                    len(TRACE_FIELDS)).astype(np.float64)
        offered = int(tally[plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"]])
        kept = min(offered, plan.record_capacity)
        records = np.zeros((0, len(RECORD_FIELDS)))
        if kept:
            records = self._download("records").reshape(-1, len(RECORD_FIELDS))[:kept].astype(np.float64)
        return BatchOutput(tally, trace, records)

    @abc.abstractmethod
    def _upload(self, name: str, array: np.ndarray):
        """A device buffer holding ``array``."""

    @abc.abstractmethod
    def _zero(self, name: str) -> None:
        """Set device buffer ``name`` to zero."""

    @abc.abstractmethod
    def _run(self, args: list, n: int) -> None:
        """Start pq_transport with ``args`` (KERNEL_ARGS order) for a launch of ``n`` photons
        and wait for it."""

    @abc.abstractmethod
    def _download(self, name: str) -> np.ndarray:
        """Device buffer ``name`` as a host array of its plan dtype."""


class KernelBackend(abc.ABC):
    """Shared parts of the compiled backends."""

    name: str
    device: str

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` words (or uniforms) of each photon's stream, drawn on the device by
        kernels/rng_words.cl."""
        ids = photon_words(photon_ids)
        n = len(ids) // 2
        return self._rng_words(ids, n, count, seed, as_uniform)

    @abc.abstractmethod
    def _rng_words(self, ids: np.ndarray, n: int, count: int, seed: int, as_uniform: bool) -> np.ndarray:
        """Run pq_rng_words; return its (n, count) output: float32 uniforms or uint32 words."""
