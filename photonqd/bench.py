"""``photonqd bench``: photons/ms on MCX's benchmark phantoms, with MCX-CL (pmcxcl) as a peer.

Speed is launched photons / wall-clock seconds of transport in ``Simulation.run`` (kernel
preparation excluded: ``Result.extra["transport_seconds"]``), timed after an untimed warm-up run of
the same case that builds the kernel and fills the OpenCL caches.
With ``--repeat N`` the fastest of N timed runs counts (other work on a shared machine only
ever slows a run down).
pmcxcl is timed the same way, in its own process (benchmarks/bench_mcxcl.py: it is GPL software and
never imported here), on the same device as the OpenCL backend.

A speed ratio is only meaningful if both engines solve the same problem, so, as in MCX's own
speed report, none is claimed when the absorbed fractions disagree beyond statistical error.
The error bound: each photon's absorbed weight lies in [0, 1], so its variance is at most
p (1 - p) and the standard error of the absorbed fraction p over N photons is at most
sqrt(p (1 - p) / N); this holds for pmcxcl too, which reports no error of its own.
"""

from __future__ import annotations

import datetime
import hashlib
import importlib.resources
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .backends import BACKENDS, available, discover, get_backend
from .phantom import MCX_BENCHMARKS

DEFAULT_CASES = ("cube60", "cube60b", "cubesph60b")
#: MCX's benchmark seed (RNGSeed in src/mcx_bench.c); both engines get the same number.
MCX_SEED = 1648335518
#: Agreement threshold on |difference| / combined standard error.
MAX_Z = 3.0
#: The NumPy reference is for correctness, not speed: it gets at most this many photons.
NUMPY_PHOTONS = 2000
#: The untimed warm-up run launches a tenth of the photons, at most this many.
WARMUP_PHOTONS = 10_000

REPO = Path(__file__).resolve().parents[1]
MCXCL_SCRIPT = REPO / "benchmarks" / "bench_mcxcl.py"
# pmcxcl's kernel build fails under Debian's PoCL unless the system libstdc++ is loaded first
MCXCL_PRELOAD = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"


def add_arguments(parser) -> None:
    parser.add_argument("cases", metavar="CASE", nargs="*",
                        help=f"benchmark phantoms (default: {' '.join(DEFAULT_CASES)}; "
                             f"also: {' '.join(c for c in MCX_BENCHMARKS if c not in DEFAULT_CASES)})")
    parser.add_argument("--backend", action="append", choices=BACKENDS, dest="backends",
                        help="backend to time (repeatable; default: every available one but numpy)")
    parser.add_argument("--photons", type=float, default=1e6,
                        help="photons per case on compiled backends and pmcxcl (default 1e6)")
    parser.add_argument("--numpy-photons", type=float, default=NUMPY_PHOTONS,
                        help=f"at most this many photons per case on the NumPy backend (default {NUMPY_PHOTONS})")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs per case and engine; the fastest counts (default 1)")
    parser.add_argument("--seed", type=int, default=MCX_SEED, help=f"random seed (default {MCX_SEED}, MCX's)")
    parser.add_argument("--no-pmcxcl", action="store_true", help="do not run the pmcxcl peer")
    parser.add_argument("--fluorescence", action="store_true",
                        help="also time a full fluorescence simulation (excitation + emission to the "
                             "camera) against excitation alone, same photons, on the skin tumour scene")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--save", metavar="DIR", type=Path,
                        help="also write the JSON report to DIR/<date>-<commit>.json")


def run_cli(args) -> int:
    """Run the benchmark; exit status 1 if any absorbed fraction disagrees with its check."""
    unknown = [c for c in args.cases if c not in MCX_BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; known: {list(MCX_BENCHMARKS)}")
    photons = _count("--photons", args.photons)
    numpy_photons = _count("--numpy-photons", args.numpy_photons)
    if args.repeat < 1:
        raise ValueError(f"--repeat: must be >= 1, got {args.repeat}")
    if not 0 < args.seed < 2**31:
        raise ValueError(f"--seed: must be in [1, 2**31) so that MCX accepts it too, got {args.seed}")
    backends = args.backends or [b for b in available() if b != "numpy"] or ["numpy"]
    report = run_benchmark(args.cases or list(DEFAULT_CASES), list(dict.fromkeys(backends)),
                           photons, numpy_photons, args.seed, args.repeat, peer=not args.no_pmcxcl)
    if args.fluorescence:
        report["fluorescence"] = [_time_fluorescence(name, report["photons"][name], args.seed, args.repeat)
                                  for name in dict.fromkeys(backends)]
    text = json.dumps(report, indent=2)
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        stamp = report["date"].replace(":", "").replace("-", "")
        path = args.save / f"{stamp}-{(report['git_commit'] or 'nogit')[:10]}.json"
        path.write_text(text + "\n")
        print(f"saved {path}", file=sys.stderr)
    print(text if args.json else format_report(report))
    return 0 if all(c["agree"] for c in report["checks"]) else 1


def run_benchmark(cases, backends, photons: int, numpy_photons: int, seed: int, repeat: int = 1,
                  peer: bool = True) -> dict:
    """Time every case on every backend (and pmcxcl next to OpenCL); return the report."""
    report = _provenance()
    report.update(seed=seed, repeat=repeat, photons={b: min(photons, numpy_photons) if b == "numpy" else photons
                                       for b in backends},
                  results=[], checks=[], skipped=[])
    engines = {}
    for name in backends:
        try:
            engines[name] = get_backend(name)
        except Exception as err:  # a backend that cannot start is reported, not fatal
            report["skipped"].append({"engine": "photonqd", "backend": name, "reason": str(err)})
    mcxcl = None
    if peer and "opencl" in engines:
        mcxcl = _probe_mcxcl()
        if "reason" in mcxcl:
            report["skipped"].append(mcxcl)
            mcxcl = None
    for case in cases:
        phantom = MCX_BENCHMARKS[case]()
        for name, backend in engines.items():
            ours = _time_photonqd(phantom, backend, report["photons"][name], seed, repeat)
            report["results"].append(ours)
            if phantom.reference_absorbed is not None:
                report["checks"].append(_check_reference(ours, phantom.reference_absorbed))
            if name == "opencl" and mcxcl:
                try:
                    theirs = _time_mcxcl(case, photons, seed, repeat)
                except RuntimeError as err:
                    report["skipped"].append({"engine": "pmcxcl", "backend": "opencl",
                                              "reason": f"{case}: {err}"})
                else:
                    report["results"].append(theirs)
                    report["checks"].append(_compare(ours, theirs))
    report["load_average_end"] = _load_average()
    return report


def _time_fluorescence(backend, photons: int, seed: int, repeat: int) -> dict:
    """Wall time of excitation alone and of excitation + emission (QD and autofluorescence, the
    same number of emission photons in all) on photonqd.phantom.skin_tumour, imaged in NIR-II."""
    from .camera import Camera, EmissionFilter, sensor_preset
    from .fluorescence import Excitation
    from .optics import qd_preset
    from .phantom import skin_tumour
    from .sources import DiskSource

    scene = skin_tumour(depth_mm=3.0, quantum_dot=qd_preset("pbs_cds_1300"))
    camera = Camera(field_of_view_mm=(10.0, 10.0), pixels=(25, 25), centre_mm=(10.0, 10.0),
                    numerical_aperture=0.3, emission_filter=EmissionFilter(1250.0, 1400.0, blocking_od=6.0),
                    sensor=sensor_preset("ingaas_standard"), exposure_s=0.05)
    excitation = Excitation(DiskSource((10.0, 10.0, 0.0), radius=5.0), 808.0, 50.0)
    scene.run(excitation, camera, photons=_warmup(photons), backend=backend, seed=seed)
    excite, full = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        stage = scene.excite(excitation, camera, photons, backend, seed)
        middle = time.perf_counter()
        scene.image(stage, camera, photons, backend, seed)
        excite.append(middle - start)
        full.append(time.perf_counter() - start)
    return {"scene": "skin_tumour(depth_mm=3, pbs_cds_1300), NIR-II 1250-1400 nm",
            "backend": stage.result.backend, "device": stage.result.device, "photons": photons,
            "excitation_seconds": min(excite), "full_seconds": min(full),
            "overhead_ratio": min(full) / min(excite)}


def _count(option: str, value: float) -> int:
    if not 1 <= value < 2**31 or value != int(value):
        raise ValueError(f"{option}: need a whole number of photons in [1, 2**31), got {value}")
    return int(value)


def _time_photonqd(phantom, backend, photons: int, seed: int, repeat: int) -> dict:
    # the fluence volume stays off: the absorbed-weight volume is photonqd's counterpart of MCX's
    # flux volume (each engine writes one volumetric tally)
    phantom.simulation(_warmup(photons), seed, fluence=False).run(backend)
    # same seed, same photons: every repeat gives the same tallies, only the time differs
    runs = [phantom.simulation(photons, seed, fluence=False).run(backend) for _ in range(repeat)]
    result = min(runs, key=lambda r: r.extra["transport_seconds"])
    seconds = result.extra["transport_seconds"]
    absorbed = result.absorbed_fraction
    return {
        "case": phantom.name, "engine": "photonqd", "version": __version__, "backend": result.backend,
        "device": result.device, "photons": photons, "seconds": seconds,
        "photons_per_ms": photons / (seconds * 1e3),
        "interactions_per_photon": result.interactions,
        "interactions_per_s": result.interactions * photons / seconds,
        "absorbed_fraction": absorbed, "absorbed_error": _error_bound(absorbed, photons),
    }


def _warmup(photons: int) -> int:
    return max(1, min(photons // 10, WARMUP_PHOTONS))


def _error_bound(p: float, photons: int) -> float:
    """Upper bound on the standard error of an absorbed fraction (see the module docstring)."""
    p = min(max(p, 0.0), 1.0)
    return math.sqrt(p * (1.0 - p) / photons)


def _check_reference(ours: dict, reference: float) -> dict:
    # the published value is given to four decimals: count its rounding as a uniform error
    error = math.hypot(ours["absorbed_error"], 0.5e-4 / math.sqrt(3))
    z = abs(ours["absorbed_fraction"] - reference) / error
    return {"case": ours["case"], "check": f"photonqd {ours['backend']} vs published absorbed fraction",
            "reference": reference, "absorbed_fraction": ours["absorbed_fraction"], "z": z,
            "agree": z <= MAX_Z}


def _compare(ours: dict, theirs: dict) -> dict:
    """Speed ratio photonqd/pmcxcl, claimed only on the same device with agreeing absorption."""
    error = math.hypot(ours["absorbed_error"], theirs["absorbed_error"])
    z = abs(ours["absorbed_fraction"] - theirs["absorbed_fraction"]) / error
    agree = z <= MAX_Z
    same_device = theirs["device"] in ours["device"]   # pmcxcl names the device without its platform
    ratio = ours["photons_per_ms"] / theirs["photons_per_ms"]
    if not agree:
        note = f"no speed ratio: absorbed fractions differ by {z:.1f} standard errors"
    elif not same_device:
        note = f"no speed ratio: different devices ({ours['device']} vs {theirs['device']})"
    else:
        note = ""
    return {"case": ours["case"], "check": "photonqd opencl vs pmcxcl absorbed fraction",
            "photonqd_absorbed": ours["absorbed_fraction"], "pmcxcl_absorbed": theirs["absorbed_fraction"],
            "z": z, "agree": agree, "ratio": ratio if agree and same_device else None, "note": note}


def _mcxcl_command(*args) -> list[str]:
    return [sys.executable, str(MCXCL_SCRIPT), *map(str, args)]


def _mcxcl_env() -> dict:
    env = dict(os.environ)
    if "LD_PRELOAD" not in env and os.path.exists(MCXCL_PRELOAD):
        env["LD_PRELOAD"] = MCXCL_PRELOAD
    # the script imports photonqd.phantom: make this very package importable in the child
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _run_mcxcl(*args) -> dict:
    done = subprocess.run(_mcxcl_command(*args), env=_mcxcl_env(), capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _probe_mcxcl() -> dict:
    """pmcxcl's version and device, or the reason it cannot run here."""
    skipped = {"engine": "pmcxcl", "backend": "opencl"}
    if not MCXCL_SCRIPT.exists():
        return {**skipped, "reason": f"{MCXCL_SCRIPT} not found (run from a photonqd checkout)"}
    try:
        return _run_mcxcl("--probe")
    except RuntimeError as err:
        return {**skipped, "reason": f"pmcxcl unavailable: {err}"}


def _time_mcxcl(case: str, photons: int, seed: int, repeat: int) -> dict:
    result = _run_mcxcl(case, "--photons", photons, "--seed", seed, "--warmup", _warmup(photons),
                        "--repeat", repeat)
    result["absorbed_error"] = _error_bound(result["absorbed_fraction"], photons)
    return result


def _git(*args) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _kernel_sha256() -> str:
    """Fingerprint of the kernel sources that were compiled (they change while being tuned)."""
    digest = hashlib.sha256()
    files = importlib.resources.files("photonqd.kernels")
    for item in sorted(files.iterdir(), key=lambda f: f.name):
        if item.name.endswith((".cl", ".h")):
            digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()


def _load_average() -> list[float] | None:
    # other work on the machine slows every engine: record it next to the speeds
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _provenance() -> dict:
    commit = _git("rev-parse", "HEAD")
    # dirty: tracked package or kernel files differ from the commit (kernel_sha256 pins the kernel)
    status = _git("status", "--porcelain", "--untracked-files=no", "--", "photonqd", "kernels")
    return {
        "filetype": "photonqd bench", "version": 1, "photonqd": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": commit, "git_dirty": bool(status) if commit else None,
        "kernel_sha256": _kernel_sha256(),
        "host": {"machine": platform.machine(), "system": platform.system(),
                 "python": platform.python_version(), "cpu_count": os.cpu_count()},
        "devices": [{"backend": d.backend, "device": d.device, "reason": d.reason} for d in discover()],
        "load_average_start": _load_average(),
    }


def format_report(report: dict) -> str:
    """The report as a table, followed by the checks and what was skipped."""
    lines = [f"photonqd {report['photonqd']} bench  {report['date']}  commit "
             f"{(report['git_commit'] or 'unknown')[:10]}{' (dirty)' if report['git_dirty'] else ''}",
             f"{'case':13s}{'engine':10s}{'backend':9s}{'photons':>10s}{'photons/ms':>12s}"
             f"{'interact/s':>12s}{'absorbed %':>12s}  device"]
    for r in report["results"]:
        inter = f"{'-':>12s}" if r["interactions_per_s"] is None else f"{r['interactions_per_s']:12.3e}"
        lines.append(f"{r['case']:13s}{r['engine']:10s}{r['backend']:9s}{r['photons']:10d}"
                     f"{r['photons_per_ms']:12.2f}{inter}{100 * r['absorbed_fraction']:12.3f}  {r['device']}")
    for c in report["checks"]:
        verdict = "ok" if c["agree"] else "DISAGREE"
        ratio = f"  speed ratio photonqd/pmcxcl = {c['ratio']:.2f}" if c.get("ratio") else ""
        note = f"  ({c['note']})" if c.get("note") else ""
        lines.append(f"{c['case']:13s}{c['check']}: {verdict}, z = {c['z']:.1f}{ratio}{note}")
    for f in report.get("fluorescence", []):
        lines.append(f"fluorescence {f['backend']}: excitation {f['excitation_seconds']:.2f} s, excitation + "
                     f"emission {f['full_seconds']:.2f} s, ratio {f['overhead_ratio']:.2f} ({f['photons']} photons)")
    for s in report["skipped"]:
        lines.append(f"skipped {s['engine']} {s['backend']}: {s['reason']}")
    return "\n".join(lines)
