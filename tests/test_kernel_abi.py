"""The kernel contract: host and kernel agree on every constant, size and argument (PyXOpto-style
start-up check, run here as a test), and no shared constant is written by hand in kernels/."""

import re
from importlib import resources

import numpy as np
import pytest

import photonqd as pq
from photonqd import kernel_abi as abi
from photonqd.backends import available, get_backend
from photonqd.kernel_source import build_plan

KERNEL_FILES = [f.name for f in resources.files("photonqd.kernels").iterdir()
                if f.name.endswith((".cl", ".h"))]


def _kernel_text(name):
    return resources.files("photonqd.kernels").joinpath(name).read_text()


def _defined(text):
    return set(re.findall(r"^\s*#define\s+([A-Za-z_]\w*)", text, re.M))


def _plan(**options):
    m = pq.Medium.uniform((4, 5, 6), 0.5, 0.1, 1.0, 0.9, 1.4)
    sim = pq.Simulation(m, pq.PencilBeam((1, 1, 0)), photons=10,
                        exit_map=pq.ExitMap.covering(m), trace_photons=(0,), **options)
    sim.check()
    return build_plan(sim)


def test_no_shared_constant_is_defined_by_hand_in_kernels():
    generated = set(abi.constant_defines()) | {k.split("(")[0] for k in abi.argument_defines()} \
        | set(_plan().switches) | {"TRACE_LEN"}
    for name in KERNEL_FILES:
        clash = _defined(_kernel_text(name)) & generated
        assert not clash, f"kernels/{name} defines {sorted(clash)}, which kernel_abi generates"


def test_preludes_define_the_same_names():
    ocl, cuda = _defined(_kernel_text("prelude_opencl.h")), _defined(_kernel_text("prelude_cuda.h"))
    assert ocl - {"PQ_OPENCL"} == cuda - {"PQ_CUDA"}


@pytest.mark.parametrize("name", ["transport.cl", "test_functions.cl"])
def test_every_macro_the_kernel_uses_is_defined(name):
    """Every upper-case identifier of transport.cl (and of the test kernels compiled after it)
    comes from the preludes, rng.h, the generated block or transport.cl itself (a typo or a
    forgotten constant fails here)."""
    text = _kernel_text(name)
    known = (_defined(_kernel_text("transport.cl")) | _defined(_kernel_text("prelude_opencl.h"))
             | _defined(_kernel_text("rng.h")) | set(_plan().defines())
             | {k.split("(")[0] for k in abi.argument_defines()})
    used = set(re.findall(r"\b([A-Z][A-Z0-9_]{2,})\b", re.sub(r"/\*.*?\*/", "", text, flags=re.S)))
    assert used <= known, sorted(used - known)


def test_layouts_are_consistent():
    assert abi.N_SCALARS == sum(s.width for s in abi.SCALARS)
    assert abi.SCALAR_SLOTS["ESCAPE"] + len(abi.FACES) == abi.SCALAR_SLOTS["ESCAPE_AMBIENT"]
    assert abi.N_FP == sum(w for _, w in abi.FLOAT_PARAMS)
    assert len(set(abi.EVENTS.values())) == len(abi.EVENTS)
    assert [a.name for a in abi.KERNEL_ARGS][:len(abi.BUFFER_ARGS)] == [a.name for a in abi.BUFFER_ARGS]
    plan = _plan()
    assert set(plan.buffers) == {a.name for a in abi.BUFFER_ARGS}
    dtypes = {"float": np.float32, "int": np.int32, "pq_u16": np.uint16, "pq_u32": np.uint32,
              "pq_i64": np.int64}
    for arg in abi.BUFFER_ARGS:
        assert plan.buffers[arg.name].dtype == dtypes[arg.ctype], arg.name
    assert plan.buffers["tally"].size == plan.layout.size
    assert plan.buffers["records"].size % len(abi.RECORD_FIELDS) == 0


def test_rng_stream_ids_never_collide():
    ids = [abi.rng_stream_id("excitation")] + [abi.rng_stream_id("species", s) for s in range(abi.MAX_SPECIES)] \
        + [abi.rng_stream_id("autofluorescence", g) for g in range(4)]
    assert len(set(ids)) == len(ids)
    with pytest.raises(ValueError, match="species"):
        abi.rng_stream_id("species", abi.MAX_SPECIES)


def test_tally_layout_beyond_32_bit_indices_is_refused():
    from photonqd.tallies import TallyLayout
    with pytest.raises(ValueError, match="tallies"):
        TallyLayout(n_voxels=2**30, fluence=True, n_species=0, map_pixels=0).check()
    TallyLayout(n_voxels=2**29, fluence=True, n_species=0, map_pixels=0).check()


@pytest.mark.skipif("opencl" not in available(), reason="no OpenCL device")
def test_opencl_kernel_agrees_with_the_host():
    """The compiled program reports its constants, type sizes and parameter names: they are
    Python's (names and order of pq_transport's arguments from the driver's argument info)."""
    import pyopencl as cl
    backend = get_backend("opencl")
    plan = _plan(time_gate_ns=1.0)
    consts = {k: v for k, v in abi.constant_defines().items() if isinstance(v, int)}
    probe = "\n".join([
        "PQ_KERNEL void pq_abi_probe(PQ_GLOBAL long *out, PQ_GLOBAL float *fout) {",
        *[f"    out[{i}] = (long)({k});" for i, k in enumerate(consts)],
        f"    out[{len(consts)}] = sizeof(pq_i64); out[{len(consts) + 1}] = sizeof(pq_u16);",
        f"    out[{len(consts) + 2}] = sizeof(pq_u32); out[{len(consts) + 3}] = sizeof(pq_u64);",
        "    fout[0] = PQ_C0; fout[1] = PQ_FIX_W; fout[2] = PQ_FIX_L; fout[3] = PQ_MAX_ROULETTE_GAIN;",
        "}"])
    text = backend.program_source(plan) + "\n" + probe
    program = cl.Program(backend.ctx, text).build(options=["-cl-kernel-arg-info"])
    out = np.zeros(len(consts) + 4, np.int64)
    fout = np.zeros(4, np.float32)
    mf = cl.mem_flags
    ob, fb = cl.Buffer(backend.ctx, mf.WRITE_ONLY, out.nbytes), cl.Buffer(backend.ctx, mf.WRITE_ONLY, fout.nbytes)
    program.pq_abi_probe(backend.queue, (1,), None, ob, fb)
    cl.enqueue_copy(backend.queue, out, ob)
    cl.enqueue_copy(backend.queue, fout, fb)
    backend.queue.finish()
    assert dict(zip(consts, out[:len(consts)].tolist())) == consts
    assert out[len(consts):].tolist() == [8, 2, 4, 8]
    np.testing.assert_array_equal(fout, np.float32([abi.C0_MM_PER_NS, abi.FIX_WEIGHT, abi.FIX_TRACK,
                                                    abi.MAX_ROULETTE_GAIN]))
    kernel = cl.Kernel(program, "pq_transport")
    assert kernel.num_args == len(abi.KERNEL_ARGS)
    names = [kernel.get_arg_info(i, cl.kernel_arg_info.NAME) for i in range(kernel.num_args)]
    assert names == [a.name for a in abi.KERNEL_ARGS]
    types = [kernel.get_arg_info(i, cl.kernel_arg_info.TYPE_NAME) for i in range(kernel.num_args)]
    for arg, t in zip(abi.KERNEL_ARGS, types):
        assert t.rstrip("*").strip() == arg.ctype, (arg.name, t)
        assert t.endswith("*") == (arg.role != "scalar"), (arg.name, t)


def test_program_source_is_the_generated_program():
    m = pq.Medium.uniform((3, 3, 3), 1.0, 0.1, 1.0, 0.9, 1.4)
    sim = pq.Simulation(m, pq.PencilBeam((1, 1, 0)), photons=10)
    text = sim.program_source("cuda")
    assert "#define PQ_CUDA 1" in text and "#define PQ_TRANSPORT_PARAMS" in text
    assert f"#define TALLY_STOPPED {abi.SCALAR_SLOTS['STOPPED']}" in text
    with pytest.raises(ValueError, match="backend"):
        sim.program_source("numpy")
