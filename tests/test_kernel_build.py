"""The shared kernel source compiles for CUDA with nvcc even without a GPU, for every switch."""

import os
import shutil
import subprocess

import numpy as np
import pytest

import photonqd as pq
from photonqd.device_functions import TEST_KERNELS
from photonqd.kernel_source import build_plan, rng_program

NVCC = shutil.which("nvcc")
needs_nvcc = pytest.mark.skipif(NVCC is None and not os.environ.get("CI"),
                                reason="nvcc not installed (CI requires it)")

SOURCES = [pq.PencilBeam((2, 2, 0)), pq.GaussianBeam((2, 2, 0), waist=1.0), pq.DiskSource((2, 2, 0)),
           pq.RectangleSource((0, 0, 0), edge1=(2, 0, 0), edge2=(0, 2, 0)), pq.IsotropicPoint((2, 2, 2))]


def program(source, all_features, kernels=()):
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.1, 1.0, 0.9, 1.4,
                          boundary={"x-": "cyclic", "x+": "cyclic", "y-": "mirror"})
    extra = dict(time_gate_ns=1.0, exit_map=pq.ExitMap.covering(m), trace_photons=(0,)) if all_features \
        else dict(fluence=False)
    sim = pq.Simulation(m, source, photons=10, **extra)
    sim.check()
    return build_plan(sim).source_text("prelude_cuda.h", extra=kernels)


def nvcc_compile(tmp_path, text, name):
    assert NVCC is not None, "nvcc is required in CI"
    src = tmp_path / f"{name}.cu"
    src.write_text(text)
    out = subprocess.run([NVCC, "-std=c++14", "-arch=sm_80", "-c", str(src), "-o", str(tmp_path / f"{name}.o")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def fluorescence_program(extra=()):
    """Fluorophore species, a voxel emission source and the detected-photon record."""
    conc = np.ones((2, 4, 4, 4), np.float32)
    m = pq.Medium(np.ones((4, 4, 4), np.uint8), 1.0, [[[0, 0, 0, 1], [0.1, 1.0, 0.9, 1.4]]] * 2,
                  fluorophore_concentration=conc, fluorophore_absorption=[[0.01, 0.02], [0.0, 0.03]])
    source = pq.sources.VoxelEmission(density=np.ones((4, 4, 4)), bin_weights=[0.0, 1.0])
    sim = pq.Simulation(m, source, photons=10, rng_stream=1,
                        exit_map=pq.ExitMap((4, 4), 1.0, bin_efficiency=[0.0, 0.5], record_capacity=8))
    sim.check()
    return build_plan(sim).source_text("prelude_cuda.h", extra=extra)


@needs_nvcc
@pytest.mark.parametrize("all_features", [True, False])
def test_cuda_source_compiles(tmp_path, all_features):
    for i, source in enumerate(SOURCES):
        nvcc_compile(tmp_path, program(source, all_features), f"transport{i}")
    nvcc_compile(tmp_path, rng_program("prelude_cuda.h"), "rng")
    if all_features:
        nvcc_compile(tmp_path, fluorescence_program(), "fluorescence")


@needs_nvcc
def test_cuda_test_kernels_compile(tmp_path):
    """kernels/test_functions.cl (tests/test_samplers.py) after every source's transport program."""
    for i, source in enumerate(SOURCES):
        nvcc_compile(tmp_path, program(source, False, kernels=TEST_KERNELS), f"test_functions{i}")
    nvcc_compile(tmp_path, fluorescence_program(extra=TEST_KERNELS), "test_functions_emission")


def test_opencl_runs_for_real_in_ci():
    """CI must exercise OpenCL on PoCL rather than skip it."""
    from photonqd.backends import available
    if os.environ.get("CI"):
        assert "opencl" in available(), "CI has no working OpenCL device"


def test_opencl_fixed_point_rounding_is_round_half_even():
    """PQ_TO_I64 (tally fixed point) rounds like CUDA's __float2ll_rn: ties to even, any sign."""
    from photonqd.backends import available, get_backend
    from photonqd.kernel_source import kernel_file
    if "opencl" not in available():
        pytest.skip("no OpenCL device")
    cl = pytest.importorskip("pyopencl")
    backend = get_backend("opencl")
    src = kernel_file("prelude_opencl.h") + """
PQ_KERNEL void to_i64(PQ_GLOBAL const float *x, PQ_GLOBAL pq_i64 *y)
{ y[PQ_THREAD_ID] = PQ_TO_I64(x[PQ_THREAD_ID]); }"""
    rng = np.random.default_rng(3)
    ties = np.arange(-40, 40) + 0.5
    x = np.concatenate([ties, ties + 2**22, -ties - 2**22, [2**23 - 0.5, 2**23 + 2, 2**40, -2**40, 0.0, -0.0],
                        rng.uniform(-2**25, 2**25, 10**5), rng.uniform(-8, 8, 10**5)]).astype(np.float32)
    y = np.empty(x.size, np.int64)
    mf = cl.mem_flags
    x_buf = cl.Buffer(backend.ctx, mf.READ_ONLY | mf.COPY_HOST_PTR, hostbuf=x)
    y_buf = cl.Buffer(backend.ctx, mf.WRITE_ONLY, y.nbytes)
    cl.Program(backend.ctx, src).build().to_i64(backend.queue, (x.size,), None, x_buf, y_buf)
    cl.enqueue_copy(backend.queue, y, y_buf)
    backend.queue.finish()
    assert np.array_equal(y, np.rint(x.astype(np.float64)).astype(np.int64))
