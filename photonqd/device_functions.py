"""Single device functions of the transport kernel, run on any backend, for tests.

``kernels/test_functions.cl`` wraps ``pq_scatter``, ``pq_isotropic`` and ``pq_launch`` (every source
kind, the camera launch's cone and bin draw included) in small kernels that run them for photons
0 .. n-1, each photon drawing from its own random stream (seed, photon index, stream) as
``pq_transport`` does. On the NumPy backend the same streams
(``photonqd.rng.PhotonStreams``) feed the reference functions of ``photonqd.backends.reference``.
So every backend's samplers can be held against the same distributions (tests/test_samplers.py).
"""

from __future__ import annotations

import numpy as np

from .backends import get_backend
from .backends.base import kernel_arguments
from .backends.reference import Photons, ReferenceRunner, isotropic as ref_isotropic, scatter as ref_scatter
from .kernel_abi import BUFFER_ARGS, IP, LAUNCH_SAMPLE_FIELDS
from .kernel_source import KernelPlan, build_plan
from .rng import PhotonStreams

TEST_KERNELS = ("test_functions.cl",)


def _split(seed: int) -> tuple[np.uint32, np.uint32]:
    return np.uint32(seed & 0xFFFFFFFF), np.uint32(seed >> 32)


def _function_plan() -> KernelPlan:
    """A plan to compile the test kernels with when none is given (the functions that do not
    depend on the source or the medium read nothing from it)."""
    from . import Medium, PencilBeam, Simulation
    sim = Simulation(Medium.uniform((1, 1, 1), 1.0, 0.0, 1.0, 0.0, 1.0), PencilBeam((0.5, 0.5, 0)),
                     photons=1)
    sim.check()
    return build_plan(sim)


class _OpenCL:
    def __init__(self, backend):
        self.be, self.cl = backend, backend.cl
        self.programs, self.kernels = {}, {}

    def kernel(self, plan: KernelPlan, name: str):
        text = plan.source_text("prelude_opencl.h", extra=TEST_KERNELS)
        if text not in self.programs:
            self.programs[text] = self.cl.Program(self.be.ctx, text).build()
        if (text, name) not in self.kernels:
            self.kernels[text, name] = self.cl.Kernel(self.programs[text], name)
        return self.kernels[text, name]

    def upload(self, array):
        mf = self.cl.mem_flags
        return self.cl.Buffer(self.be.ctx, mf.READ_WRITE | mf.COPY_HOST_PTR, hostbuf=np.ascontiguousarray(array))

    def output(self, size):
        return self.cl.Buffer(self.be.ctx, self.cl.mem_flags.WRITE_ONLY, 4 * size)

    def call(self, plan, name, n, args):
        self.kernel(plan, name)(self.be.queue, (n,), None, *args)

    def download(self, buf, size):
        out = np.empty(size, np.float32)
        self.cl.enqueue_copy(self.be.queue, out, buf)
        self.be.queue.finish()
        return out


class _Cuda:
    THREADS = 128

    def __init__(self, backend):
        self.be, self.cp = backend, backend.cp
        self.modules = {}

    def program(self, plan: KernelPlan):
        text = plan.source_text("prelude_cuda.h", extra=TEST_KERNELS)
        if text not in self.modules:
            with self.be.dev:
                self.modules[text] = self.cp.RawModule(code=text, options=("--std=c++14",))
        return self.modules[text]

    def upload(self, array):
        with self.be.dev:
            return self.cp.asarray(array)

    def output(self, size):
        with self.be.dev:
            return self.cp.zeros(size, self.cp.float32)

    def call(self, plan, name, n, args):
        with self.be.dev:
            kernel = self.program(plan).get_function(name)
            kernel(((n + self.THREADS - 1) // self.THREADS,), (self.THREADS,), tuple(args))
            self.cp.cuda.get_current_stream().synchronize()

    def download(self, buf, size):
        with self.be.dev:
            return self.cp.asnumpy(buf)


_DEVICES = {}


def _device(backend: str):
    if backend not in _DEVICES:
        be = get_backend(backend)
        _DEVICES[backend] = {"opencl": _OpenCL, "cuda": _Cuda}[backend](be)
    return _DEVICES[backend]


def scatter(backend: str, u_in, g: float, n: int, seed: int, stream: int = 0) -> np.ndarray:
    """Directions (n, 3) after one Henyey-Greenstein scattering (pq_scatter) of photons 0 .. n-1
    travelling along ``u_in``."""
    u = np.asarray(u_in, dtype=np.float64)
    u = u / np.linalg.norm(u)
    if backend == "numpy":
        rng, idx = PhotonStreams(seed, np.arange(n, dtype=np.uint64), stream), np.arange(n)
        return ref_scatter(np.tile(u, (n, 1)), np.full(n, float(g)), rng.uniform(idx), rng.uniform(idx))
    dev = _device(backend)
    out = dev.output(3 * n)
    dev.call(_function_plan(), "pq_test_scatter", n,
             [dev.upload(u.astype(np.float32)), np.float32(g), *_split(seed), np.uint32(stream),
              np.uint32(n), out])
    return dev.download(out, 3 * n).reshape(n, 3).astype(np.float64)


def isotropic(backend: str, n: int, seed: int, stream: int = 0) -> np.ndarray:
    """Directions (n, 3) uniform on the sphere (pq_isotropic) of photons 0 .. n-1."""
    if backend == "numpy":
        rng, idx = PhotonStreams(seed, np.arange(n, dtype=np.uint64), stream), np.arange(n)
        return ref_isotropic(rng.uniform(idx), rng.uniform(idx))
    dev = _device(backend)
    out = dev.output(3 * n)
    dev.call(_function_plan(), "pq_test_isotropic", n, [*_split(seed), np.uint32(stream), np.uint32(n), out])
    return dev.download(out, 3 * n).reshape(n, 3).astype(np.float64)


def launch(backend: str, sim, n: int, first: int = 0) -> dict:
    """Photons first .. first + n - 1 of ``sim`` as its source launches them (pq_launch), before
    they enter the tissue: {field of LAUNCH_SAMPLE_FIELDS: (n,) array}."""
    sim.check()
    plan = build_plan(sim)
    if backend == "numpy":
        runner, idx = ReferenceRunner(plan), np.arange(n)
        rng = PhotonStreams(plan.seed, np.uint64(first) + idx.astype(np.uint64),
                            stream=int(plan.ip[IP["STREAM"]]))
        ph = Photons(n, int(plan.ip[IP["SRC_BIN"]]))
        ph.v[:] = -1
        runner.launch_photons(ph, idx, rng)
        rows = np.column_stack([ph.p, ph.u, ph.bin, ph.v]).astype(np.float64)
    else:
        dev = _device(backend)
        width = len(LAUNCH_SAMPLE_FIELDS)
        buffers = {a.name: dev.upload(plan.buffers[a.name]) for a in BUFFER_ARGS}
        out = dev.output(n * width)
        dev.call(plan, "pq_test_launch", n, kernel_arguments(buffers, plan.seed, first, n) + [out])
        rows = dev.download(out, n * width).reshape(n, width).astype(np.float64)
    return dict(zip(LAUNCH_SAMPLE_FIELDS, rows.T))
