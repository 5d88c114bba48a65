"""OpenCL backend through pyopencl: PoCL on CPUs in CI, any vendor driver on GPUs."""

from __future__ import annotations

import logging

import numpy as np

from ..kernel_source import KernelPlan, kernel_file, photon_words, rng_program
from ..tallies import SCALAR_SLOTS
from .numpy_backend import BatchOutput

log = logging.getLogger(__name__)

#: A probe that needs what the transport kernel needs (64-bit atomics, the prelude).
_PROBE = """
PQ_KERNEL void probe(PQ_GLOBAL pq_i64 *out) { PQ_ATOMIC_ADD_I64(out, PQ_TO_I64(1.5f)); }
"""


def probe_devices():
    """Every OpenCL device as (device, None) if it builds the probe kernel, else (None, reason)."""
    import pyopencl as cl

    found = []
    for platform in cl.get_platforms():
        try:
            devices = platform.get_devices()
        except cl.Error as err:
            found.append((None, f"{platform.name}: cannot list devices ({err})"))
            continue
        for dev in devices:
            label = f"{platform.name.strip()} / {dev.name.strip()}"
            try:
                ctx = cl.Context([dev])
                cl.Program(ctx, kernel_file("prelude_opencl.h") + _PROBE).build()
                found.append((dev, label))
            except Exception as err:  # a driver that cannot build is skipped, not fatal
                reason = str(err).strip().splitlines()
                found.append((None, f"{label}: kernel build failed ({reason[0] if reason else err})"))
    return found


class OpenCLBackend:
    name = "opencl"
    default_batch = 1 << 18
    min_batch = 1 << 12

    def __init__(self, device=None):
        import pyopencl as cl

        self.cl = cl
        if device is None:
            usable = [d for d, _ in probe_devices() if d is not None]
            if not usable:
                raise RuntimeError("no OpenCL device builds the photonqd kernel "
                                   "(see `photonqd devices` for the reasons)")
            # GPUs before CPUs; otherwise the first platform/device that builds
            usable.sort(key=lambda d: 0 if d.type & cl.device_type.GPU else 1)
            device = usable[0]
        self.dev = device
        self.ctx = cl.Context([device])
        self.queue = cl.CommandQueue(self.ctx)
        self.device = f"{device.platform.name.strip()} / {device.name.strip()}"
        self.is_gpu = bool(device.type & cl.device_type.GPU)

    def program_source(self, plan: KernelPlan) -> str:
        return plan.source_text("prelude_opencl.h")

    def prepare(self, plan: KernelPlan) -> "OpenCLRunner":
        return OpenCLRunner(self, plan)

    def rng_stream(self, seed: int, photon_ids, count: int, as_uniform: bool = False) -> np.ndarray:
        """First ``count`` words (or uniforms) of each photon's stream, drawn on the device."""
        cl = self.cl
        ids = photon_words(photon_ids)
        n = len(ids) // 2
        program = cl.Program(self.ctx, rng_program("prelude_opencl.h")).build()
        uniforms = np.zeros((n, count), dtype=np.float32)
        words = np.zeros((n, count), dtype=np.uint32)
        mf = cl.mem_flags
        ids_buf = cl.Buffer(self.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=ids)
        u_buf = cl.Buffer(self.ctx, mf.WRITE_ONLY, uniforms.nbytes)
        w_buf = cl.Buffer(self.ctx, mf.WRITE_ONLY, words.nbytes)
        program.pq_rng_words(self.queue, (n,), None, ids_buf, np.uint32(n), np.uint32(count),
                             np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32),
                             np.uint32(as_uniform), u_buf, w_buf)
        cl.enqueue_copy(self.queue, uniforms if as_uniform else words, u_buf if as_uniform else w_buf)
        self.queue.finish()
        return uniforms if as_uniform else words


class OpenCLRunner:
    def __init__(self, backend: OpenCLBackend, plan: KernelPlan):
        cl = backend.cl
        self.cl, self.queue, self.plan = cl, backend.queue, plan
        ctx = backend.ctx
        program = cl.Program(ctx, backend.program_source(plan)).build()
        self.kernel = cl.Kernel(program, "pq_transport")
        ro = cl.mem_flags.READ_ONLY | cl.mem_flags.COPY_HOST_PTR
        self.tally = np.zeros(plan.layout.size, dtype=np.int64)
        self.tally_buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE, self.tally.nbytes)
        n_trace = max(len(plan.trace_ids), 1)
        self.trace = np.full((n_trace, plan.trace_len, 8), np.nan, dtype=np.float32)
        self.trace_buf = cl.Buffer(ctx, cl.mem_flags.READ_WRITE | cl.mem_flags.COPY_HOST_PTR,
                                   hostbuf=self.trace)
        self.records = np.zeros((max(plan.record_capacity, 1), 8), dtype=np.float32)
        self.records_buf = cl.Buffer(ctx, cl.mem_flags.WRITE_ONLY, self.records.nbytes)
        # argument order of pq_transport in kernels/transport.cl
        self.buffers = [
            cl.Buffer(ctx, ro, hostbuf=plan.labels),
            cl.Buffer(ctx, ro, hostbuf=plan.optics.ravel()),
            cl.Buffer(ctx, ro, hostbuf=plan.fp),
            cl.Buffer(ctx, ro, hostbuf=plan.ip),
            self.tally_buf, self.trace_buf,
            cl.Buffer(ctx, ro, hostbuf=plan.trace_words),
            cl.Buffer(ctx, ro, hostbuf=plan.concentration),
            cl.Buffer(ctx, ro, hostbuf=plan.species_absorption),
            cl.Buffer(ctx, ro, hostbuf=plan.emission_u32),
            cl.Buffer(ctx, ro, hostbuf=plan.emission_f32),
            cl.Buffer(ctx, ro, hostbuf=plan.bin_efficiency),
            self.records_buf,
        ]

    def run(self, first: int, n: int):
        cl, q = self.cl, self.queue
        self.tally[:] = 0
        cl.enqueue_copy(q, self.tally_buf, self.tally)
        seed = self.plan.seed
        self.kernel(q, (n,), None, *self.buffers,
                    np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32),
                    np.uint32(first & 0xFFFFFFFF), np.uint32(first >> 32), np.uint32(n))
        cl.enqueue_copy(q, self.tally, self.tally_buf)
        trace = None
        if len(self.plan.trace_ids):
            cl.enqueue_copy(q, self.trace, self.trace_buf)
            trace = self.trace.astype(np.float64)
        kept = 0
        if self.plan.record_capacity:
            cl.enqueue_copy(q, self.records, self.records_buf)
            offered = self.tally[self.plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"]]
            kept = min(int(offered), self.plan.record_capacity)
        q.finish()
        return BatchOutput(self.tally.copy(), trace, self.records[:kept].astype(np.float64))
