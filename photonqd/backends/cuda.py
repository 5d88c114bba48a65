"""CUDA backend through CuPy's RawModule (NVRTC), compiled from the shared kernel source."""

from __future__ import annotations

import numpy as np

from ..kernel_source import KernelPlan, photon_words, rng_program
from ..tallies import SCALAR_SLOTS
from .numpy_backend import BatchOutput

THREADS_PER_BLOCK = 128


class CudaBackend:
    name = "cuda"
    default_batch = 1 << 22
    min_batch = 1 << 16

    def __init__(self, device_id: int = 0):
        import cupy

        self.cp = cupy
        if cupy.cuda.runtime.getDeviceCount() == 0:
            raise RuntimeError("CuPy found no CUDA device")
        self.dev = cupy.cuda.Device(device_id)
        props = cupy.cuda.runtime.getDeviceProperties(device_id)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        self.device = f"CUDA {device_id}: {name}"
        self.is_gpu = True

    def program_source(self, plan: KernelPlan) -> str:
        return plan.source_text("prelude_cuda.h")

    def prepare(self, plan: KernelPlan) -> "CudaRunner":
        return CudaRunner(self, plan)

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` words (or uniforms) of each photon's stream, drawn on the device."""
        cp = self.cp
        ids = photon_words(photon_ids)
        n = len(ids) // 2
        with self.dev:
            kernel = cp.RawModule(code=rng_program("prelude_cuda.h")).get_function("pq_rng_words")
            uniforms = cp.zeros((n, count), dtype=cp.float32)
            words = cp.zeros((n, count), dtype=cp.uint32)
            kernel(((n + 127) // 128,), (128,),
                   (cp.asarray(ids), np.uint32(n), np.uint32(count), np.uint32(seed & 0xFFFFFFFF),
                    np.uint32(seed >> 32), np.uint32(as_uniform), uniforms, words))
            return cp.asnumpy(uniforms if as_uniform else words)


class CudaRunner:
    def __init__(self, backend: CudaBackend, plan: KernelPlan):
        cp = backend.cp
        self.cp, self.plan = cp, plan
        with backend.dev:
            module = cp.RawModule(code=backend.program_source(plan), options=("--std=c++14",))
            self.kernel = module.get_function("pq_transport")
            self.tally = cp.zeros(plan.layout.size, dtype=cp.int64)
            n_trace = max(len(plan.trace_ids), 1)
            self.trace = cp.full((n_trace, plan.trace_len, 8), np.nan, dtype=cp.float32)
            self.records = cp.zeros((max(plan.record_capacity, 1), 8), dtype=cp.float32)
            # argument order of pq_transport in kernels/transport.cl
            self.args = [cp.asarray(plan.labels), cp.asarray(plan.optics.ravel()),
                         cp.asarray(plan.fp), cp.asarray(plan.ip), self.tally, self.trace,
                         cp.asarray(plan.trace_words), cp.asarray(plan.concentration),
                         cp.asarray(plan.species_absorption), cp.asarray(plan.emission_u32),
                         cp.asarray(plan.emission_f32), cp.asarray(plan.bin_efficiency),
                         self.records]
        self.dev = backend.dev

    def run(self, first: int, n: int):
        cp = self.cp
        seed = self.plan.seed
        with self.dev:
            self.tally.fill(0)
            blocks = (n + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
            self.kernel((blocks,), (THREADS_PER_BLOCK,),
                        (*self.args, np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32),
                         np.uint32(first & 0xFFFFFFFF), np.uint32(first >> 32), np.uint32(n)))
            tally = cp.asnumpy(self.tally)
            trace = cp.asnumpy(self.trace).astype(np.float64) if len(self.plan.trace_ids) else None
            offered = int(tally[self.plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"]])
            kept = min(offered, self.plan.record_capacity)
            records = cp.asnumpy(self.records[:kept]).astype(np.float64)
        return BatchOutput(tally, trace, records)
