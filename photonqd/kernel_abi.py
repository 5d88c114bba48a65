"""The contract between Python and the transport kernel, owned in one place.

Every name and number that both sides of ``kernels/transport.cl`` use is defined here and nowhere
else: source and boundary codes, tally slots, event codes, fixed-point scales, the speed of light,
the layout of the float and integer parameter vectors, the rows of the trace and detected-photon
buffers, random-stream ids and the kernel's argument list. The kernel receives all of it as
generated ``#define`` lines (``constant_defines``, ``argument_defines``); the backends bind their
arguments by name from ``KERNEL_ARGS``; the NumPy reference and the host code import the same
Python names. This module imports nothing from the package, so any module may depend on it.
"""

from __future__ import annotations

from typing import NamedTuple

# --- geometry and sources ------------------------------------------------------------------------
#: Box faces in slot order (the escape tally has one slot per face).
FACES = ("x-", "x+", "y-", "y+", "z-", "z+")
BOUNDARY_CONDITIONS = ("escape", "mirror", "cyclic")
BC_CODES = {name: code for code, name in enumerate(BOUNDARY_CONDITIONS)}
#: Per-face boundary switch names (one compile-time macro per face).
BC_SWITCHES = {"x-": "PQ_BC_XMIN", "x+": "PQ_BC_XMAX", "y-": "PQ_BC_YMIN", "y+": "PQ_BC_YMAX",
               "z-": "PQ_BC_ZMIN", "z+": "PQ_BC_ZMAX"}
#: "camera": the adjoint launch from a detector footprint on the z = 0 face (sources.CameraLaunch).
SOURCE_KINDS = ("pencil", "gaussian", "disk", "rectangle", "isotropic", "emission", "camera")
SOURCE_CODES = {name: code for code, name in enumerate(SOURCE_KINDS)}

#: Most fluorophore species one medium may carry (the kernel keeps one register per species).
MAX_SPECIES = 8

# --- physics constants ---------------------------------------------------------------------------
C0_MM_PER_NS = 299.792458           # speed of light in vacuum
FIX_WEIGHT = 2.0**32                # fixed point: 2^32 per unit photon weight
FIX_TRACK = 2.0**24                 # fixed point: 2^24 per unit weight x mm (track length)
#: A photon whose net gain from Russian roulette exceeds this weight is stopped (tallied as
#: ``stopped``): it bounds what one photon can add to a tally, so launches cannot overflow.
MAX_ROULETTE_GAIN = 64.0

# --- tallies -------------------------------------------------------------------------------------
class Slot(NamedTuple):
    name: str
    width: int
    count: bool = False             # a count of events, not a fixed-point weight


#: Scalar tally slots, in kernel order (TALLY_<NAME>).
SCALARS = (
    Slot("SPECULAR", 1),
    Slot("MISSED", 1),
    Slot("ESCAPE", len(FACES)),     # one per face, FACES order
    Slot("ESCAPE_AMBIENT", 1),      # into ambient (label 0) voxels inside the box
    Slot("ALIVE", 1),               # still propagating when the time gate closed
    Slot("ROULETTE", 1),            # net weight added by Russian roulette
    Slot("STOPPED", 1),             # stopped by a guard (flight time, steps, roulette gain)
    Slot("INTERACTIONS", 1, True),  # scattering events
    Slot("STEPS", 1, True),         # transport loop iterations
    Slot("DETECTED", 1, True),      # photons offered to the detected-photon record
)


def _slot_offsets(slots) -> tuple[dict, int]:
    out, i = {}, 0
    for slot in slots:
        out[slot.name] = i
        i += slot.width
    return out, i


SCALAR_SLOTS, N_SCALARS = _slot_offsets(SCALARS)
COUNT_SLOTS = tuple(s.name for s in SCALARS if s.count)

#: Trace event codes (EV_<NAME>).
EVENTS = {name: code for code, name in enumerate(
    ("LAUNCH", "SCATTER", "CROSS", "REFLECT", "ESCAPE", "GATE", "ROULETTE", "MISSED", "STOPPED"))}

#: One row of the debug trace (floats).
TRACE_FIELDS = ("x", "y", "z", "ux", "uy", "uz", "weight", "event")
#: One row of the detected-photon record (floats).
RECORD_FIELDS = ("x", "y", "ux", "uy", "uz", "bin", "weight", "time_ns")
#: One row written by the test kernel pq_test_launch (kernels/test_functions.cl): a launched
#: photon's position, direction, wavelength bin and voxel index (-1 unless the source sets it).
LAUNCH_SAMPLE_FIELDS = ("x", "y", "z", "ux", "uy", "uz", "bin", "ix", "iy", "iz")

# --- parameter vectors ---------------------------------------------------------------------------
#: Float parameters (name, width); FP_<NAME> is the offset of the first element. SRC_SIN2: the
#: camera launch's sin^2 of the cone half-angle in the ambient medium, (NA / n_ambient)^2.
FLOAT_PARAMS = (("DX", 1), ("DY", 1), ("DZ", 1), ("N_AMBIENT", 1), ("T_GATE", 1),
                ("ROULETTE_W", 1), ("ROULETTE_M", 1), ("SRC_POS", 3), ("SRC_DIR", 3),
                ("SRC_E1", 3), ("SRC_E2", 3), ("SRC_SIZE", 1), ("MAP_X0", 1), ("MAP_Y0", 1),
                ("MAP_PX", 1), ("MAP_PY", 1), ("MAP_COS", 1), ("SRC_SIN2", 1))
#: Integer parameters (int32); IP_<NAME> is the index. GATE_SLOT: scalar slot that receives a
#: photon at the time gate (ALIVE for the user's gate, STOPPED for the flight-time guard).
INT_PARAMS = ("NX", "NY", "NZ", "NLABEL", "NBIN", "SRC_BIN", "MAP_NX", "MAP_NY",
              "OFF_FLUENCE", "OFF_SPECIES", "OFF_SCALAR", "OFF_MAP", "N_TRACE", "STREAM",
              "EM_COUNT", "RECORD_CAP", "GATE_SLOT", "MAX_STEPS")

FP, N_FP = _slot_offsets(Slot(name, width) for name, width in FLOAT_PARAMS)
IP = {name: i for i, name in enumerate(INT_PARAMS)}

#: The kernel indexes every buffer with 32-bit ints: no buffer may hold more elements.
MAX_INDEX = 2**31 - 1

# --- random streams ------------------------------------------------------------------------------
#: First stream of the adjoint (camera-side) runs: far above every forward stage's.
ADJOINT_STREAM = 1000


def rng_stream_id(kind: str, index: int = 0) -> int:
    """The stream word of a run's random numbers: excitation 0, fluorophore species s -> 1 + s,
    autofluorescence group g -> 1 + MAX_SPECIES + g, adjoint run k -> ADJOINT_STREAM + k.
    Different stages never share numbers."""
    if kind == "excitation":
        return 0
    if kind == "species":
        if not 0 <= index < MAX_SPECIES:
            raise ValueError(f"species index {index} not in [0, {MAX_SPECIES})")
        return 1 + index
    if kind == "autofluorescence":
        if not 0 <= index < ADJOINT_STREAM - 1 - MAX_SPECIES:
            raise ValueError(f"autofluorescence group {index} out of range")
        return 1 + MAX_SPECIES + index
    if kind == "adjoint":
        return ADJOINT_STREAM + index
    raise ValueError(f"rng stream kind {kind!r}: one of excitation, species, autofluorescence, adjoint")


# --- kernel arguments ----------------------------------------------------------------------------
class Arg(NamedTuple):
    name: str
    ctype: str        # element type (pq_* from the prelude)
    role: str         # "in": read-only buffer, "out": written buffer, "scalar": by value


#: pq_transport's parameters, in order. Buffers are bound by name from KernelPlan.buffers.
KERNEL_ARGS = (
    Arg("labels", "pq_u16", "in"),             # (nx, ny, nz) C order
    Arg("optics", "float", "in"),              # [bin][label][mua, mus, g, n]
    Arg("fp", "float", "in"),                  # FP_*
    Arg("ip", "int", "in"),                    # IP_*
    Arg("species_conc", "float", "in"),        # [species][voxel], µM
    Arg("species_mua", "float", "in"),         # [species][bin], 1/mm per µM
    Arg("em_u32", "pq_u32", "in"),             # emission: voxel indices, then alias indices
    Arg("em_f32", "float", "in"),              # emission: alias acceptance, then bin CDF;
                                               # camera: the bin CDF (EM_COUNT = 0)
    Arg("bin_eff", "float", "in"),             # exit-map efficiency per wavelength bin
    Arg("fluence_band", "int", "in"),          # fluence volume (band) of each wavelength bin
    Arg("trace_ids", "pq_u32", "in"),          # traced photon indices as (lo, hi) words
    Arg("tally", "pq_i64", "out"),             # fixed-point tallies (TallyLayout)
    Arg("trace", "float", "out"),              # [traced photon][event][TRACE_FIELDS]
    Arg("records", "float", "out"),            # [detected photon][RECORD_FIELDS]
    Arg("work", "pq_u32", "out"),              # [0]: next photon of this launch (zeroed)
    Arg("seed_lo", "pq_u32", "scalar"),
    Arg("seed_hi", "pq_u32", "scalar"),
    Arg("first_lo", "pq_u32", "scalar"),       # index of the launch's first photon
    Arg("first_hi", "pq_u32", "scalar"),
    Arg("n_photons", "pq_u32", "scalar"),      # photons in this launch
)
BUFFER_ARGS = tuple(a for a in KERNEL_ARGS if a.role != "scalar")


def constant_defines() -> dict:
    """Every constant the kernel shares with Python, as #define name -> value."""
    d = {"PQ_C0": f"{C0_MM_PER_NS!r}f", "PQ_FIX_W": f"{FIX_WEIGHT!r}f", "PQ_FIX_L": f"{FIX_TRACK!r}f",
         "PQ_MAX_ROULETTE_GAIN": f"{MAX_ROULETTE_GAIN!r}f",
         "PQ_TRACE_WIDTH": len(TRACE_FIELDS), "PQ_RECORD_WIDTH": len(RECORD_FIELDS),
         "PQ_LAUNCH_SAMPLE_WIDTH": len(LAUNCH_SAMPLE_FIELDS)}
    d.update({f"BC_{name.upper()}": code for name, code in BC_CODES.items()})
    d.update({f"SRC_{name.upper()}": code for name, code in SOURCE_CODES.items()})
    d.update({f"TALLY_{k}": v for k, v in SCALAR_SLOTS.items()})
    d.update({f"EV_{k}": v for k, v in EVENTS.items()})
    d.update({f"FP_{k}": v for k, v in FP.items()})
    d.update({f"IP_{k}": v for k, v in IP.items()})
    return d


def argument_defines() -> dict:
    """PQ_TRANSPORT_PARAMS (the kernel's parameter list), the pq_buffers struct's members and
    PQ_BIND_BUFFERS(b), which copies every buffer parameter into such a struct."""
    def param(a: Arg) -> str:
        if a.role == "scalar":
            return f"{a.ctype} {a.name}"
        const = "const " if a.role == "in" else ""
        return f"PQ_GLOBAL {const}{a.ctype} *{a.name}"

    return {
        "PQ_TRANSPORT_PARAMS": ", ".join(param(a) for a in KERNEL_ARGS),
        "PQ_BUFFER_MEMBERS": " ".join(f"{param(a)};" for a in BUFFER_ARGS),
        "PQ_BIND_BUFFERS(b)": " ".join(f"(b).{a.name} = {a.name};" for a in BUFFER_ARGS),
    }
