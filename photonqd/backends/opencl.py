"""OpenCL backend through pyopencl: PoCL on CPUs in CI, any vendor driver on GPUs."""

from __future__ import annotations

import logging
import time

import numpy as np

from ..kernel_source import KernelPlan, kernel_file, rng_program
from .base import KernelBackend, KernelRunner

log = logging.getLogger(__name__)

#: A probe that needs what the transport kernel needs (64-bit atomics, the prelude).
_PROBE = """
PQ_KERNEL void probe(PQ_GLOBAL pq_i64 *out) { PQ_ATOMIC_ADD_I64(out, PQ_TO_I64(1.5f)); }
"""
#: Persistent work-groups per compute unit on a CPU: a few, so that one held up by the operating
#: system does not leave a core idle; each takes photons from the launch's counter.
CPU_GROUPS_PER_UNIT = 4
#: Persistent work-items per compute unit on a GPU.
GPU_ITEMS_PER_UNIT = 2048
#: Seconds between checks for a finished launch: the host stays responsive to Ctrl-C.
POLL_SECONDS = 0.01


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


class OpenCLBackend(KernelBackend):
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

    def persistent_shape(self, n: int) -> tuple[int, int]:
        """(global, local) work size of a launch of n photons."""
        units = self.dev.max_compute_units
        if self.is_gpu:
            return min(n, units * GPU_ITEMS_PER_UNIT), None
        # one work-item per group: a group's items run one after another on a CPU core, so the
        # first would take every photon and leave the rest of its group nothing to do
        return min(n, units * CPU_GROUPS_PER_UNIT), 1

    def _rng_words(self, ids, n, count, seed, as_uniform):
        cl = self.cl
        program = cl.Program(self.ctx, rng_program("prelude_opencl.h")).build()
        out = np.zeros((n, count), dtype=np.float32 if as_uniform else np.uint32)
        mf = cl.mem_flags
        ids_buf = cl.Buffer(self.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=ids)
        u_buf = cl.Buffer(self.ctx, mf.WRITE_ONLY, out.nbytes)
        w_buf = cl.Buffer(self.ctx, mf.WRITE_ONLY, out.nbytes)
        program.pq_rng_words(self.queue, (n,), None, ids_buf, np.uint32(n), np.uint32(count),
                             np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32),
                             np.uint32(as_uniform), u_buf, w_buf)
        cl.enqueue_copy(self.queue, out, u_buf if as_uniform else w_buf)
        self.queue.finish()
        return out


class OpenCLRunner(KernelRunner):
    def __init__(self, backend: OpenCLBackend, plan: KernelPlan):
        self.backend, self.cl, self.queue = backend, backend.cl, backend.queue
        program = self.cl.Program(backend.ctx, backend.program_source(plan)).build()
        self.kernel = self.cl.Kernel(program, "pq_transport")
        super().__init__(plan)

    def _upload(self, name, array):
        mf = self.cl.mem_flags
        return self.cl.Buffer(self.backend.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=array)

    def _zero(self, name):
        array = self.plan.buffers[name]
        self.cl.enqueue_fill_buffer(self.queue, self.dev[name], np.zeros(1, array.dtype), 0, array.nbytes)

    def _run(self, args, n):
        global_size, local_size = self.backend.persistent_shape(n)
        done = self.kernel(self.queue, (global_size,), None if local_size is None else (local_size,), *args)
        self.queue.flush()
        # wait in small sleeps rather than one blocking call, so that Ctrl-C is seen
        while done.command_execution_status != self.cl.command_execution_status.COMPLETE:
            time.sleep(POLL_SECONDS)

    def _download(self, name):
        out = np.empty_like(self.plan.buffers[name])
        self.cl.enqueue_copy(self.queue, out, self.dev[name])
        self.queue.finish()
        return out
