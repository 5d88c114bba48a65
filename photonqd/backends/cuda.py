"""CUDA backend through CuPy's RawModule (NVRTC), compiled from the shared kernel source."""

from __future__ import annotations

import numpy as np

from ..kernel_source import KernelPlan, rng_program
from .base import KernelBackend, KernelRunner

THREADS_PER_BLOCK = 128
#: Persistent threads per multiprocessor (each takes photons from the launch's counter).
THREADS_PER_SM = 2048


class CudaBackend(KernelBackend):
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
        self.sm_count = int(props["multiProcessorCount"])

    def program_source(self, plan: KernelPlan) -> str:
        return plan.source_text("prelude_cuda.h")

    def prepare(self, plan: KernelPlan) -> "CudaRunner":
        return CudaRunner(self, plan)

    def _rng_words(self, ids, n, count, seed, as_uniform):
        cp = self.cp
        with self.dev:
            kernel = cp.RawModule(code=rng_program("prelude_cuda.h")).get_function("pq_rng_words")
            uniforms = cp.zeros((n, count), dtype=cp.float32)
            words = cp.zeros((n, count), dtype=cp.uint32)
            kernel(((n + 127) // 128,), (128,),
                   (cp.asarray(ids), np.uint32(n), np.uint32(count), np.uint32(seed & 0xFFFFFFFF),
                    np.uint32(seed >> 32), np.uint32(as_uniform), uniforms, words))
            return cp.asnumpy(uniforms if as_uniform else words)


class CudaRunner(KernelRunner):
    def __init__(self, backend: CudaBackend, plan: KernelPlan):
        self.backend, self.cp = backend, backend.cp
        with backend.dev:
            module = self.cp.RawModule(code=backend.program_source(plan), options=("--std=c++14",))
            self.kernel = module.get_function("pq_transport")
            super().__init__(plan)

    def _upload(self, name, array):
        return self.cp.asarray(array)

    def _zero(self, name):
        with self.backend.dev:
            self.dev[name].fill(0)

    def _run(self, args, n):
        threads = min(n, self.backend.sm_count * THREADS_PER_SM)
        blocks = (threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
        with self.backend.dev:
            self.kernel((blocks,), (THREADS_PER_BLOCK,), tuple(args))
            self.cp.cuda.get_current_stream().synchronize()

    def _download(self, name):
        with self.backend.dev:
            return self.cp.asnumpy(self.dev[name])
