"""``photonqd bench``: photons/ms on MCX's benchmark phantoms and the tissue-like ``tissue60``, with
MCX-CL (pmcxcl) as a peer.

Speed is launched photons / wall-clock seconds of transport in ``Simulation.run`` (kernel
preparation excluded: ``Result.extra["transport_seconds"]``), timed after an untimed warm-up run of
the same case that builds the kernel and fills the OpenCL caches.
pmcxcl is timed the same way, in its own process (benchmarks/bench_mcxcl.py: it is GPL software and
never imported here), on the same device as the OpenCL backend.

``--repeat N`` runs N rounds; each round times every case once on every engine, photonqd and
pmcxcl taking turns to go first, so that a change in the machine's load falls on both engines
alike. The fastest round per engine counts (other work on a shared machine only ever slows a run
down); every round's figure is reported, with the spread (max - min) / median of photons/ms.

Cost per unit of work: interactions/s (scattering events per second) and cycles per loop
iteration, CPU clock x cores used x transport seconds / loop iterations, on CPU devices only.

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
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .backends import BACKENDS, available, discover, get_backend
from .phantom import BENCHMARKS

DEFAULT_CASES = ("cube60", "cube60b", "cubesph60b", "tissue60")
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
                             f"also: {' '.join(c for c in BENCHMARKS if c not in DEFAULT_CASES)})")
    parser.add_argument("--backend", action="append", choices=BACKENDS, dest="backends",
                        help="backend to time (repeatable; default: every available one but numpy)")
    parser.add_argument("--photons", type=float, default=1e6,
                        help="photons per case on compiled backends and pmcxcl (default 1e6)")
    parser.add_argument("--numpy-photons", type=float, default=NUMPY_PHOTONS,
                        help=f"at most this many photons per case on the NumPy backend (default {NUMPY_PHOTONS})")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="interleaved rounds: each times every case once per engine, photonqd and "
                             "pmcxcl taking turns to go first; the fastest round counts and every "
                             "round is reported (default 1)")
    parser.add_argument("--seed", type=int, default=MCX_SEED, help=f"random seed (default {MCX_SEED}, MCX's)")
    parser.add_argument("--no-pmcxcl", action="store_true", help="do not run the pmcxcl peer")
    parser.add_argument("--fluorescence", action="store_true",
                        help="also time a full fluorescence simulation (excitation + emission to the "
                             "camera) against excitation alone, same photons, on the skin tumour scene")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--save", metavar="DIR", type=Path,
                        help="also write the JSON report to DIR/<date>-<commit>.json")
    parser.add_argument("--history", metavar="REPORT", type=Path, nargs="+",
                        help="run nothing: summarise saved reports (--save's files; other files are "
                             "skipped) as each case's fastest-round figure run by run, grouped by "
                             "kernel, CPU, device, photons and rounds, with the run-to-run spread")


def run_cli(args) -> int:
    """Run the benchmark; exit status 1 if any absorbed fraction disagrees with its check."""
    unknown = [c for c in args.cases if c not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown case(s) {unknown}; known: {list(BENCHMARKS)}")
    if args.history:
        reports, skipped = read_reports(args.history)
        rows = [row for row in run_to_run(reports) if not args.cases or row["case"] in args.cases]
        print(json.dumps(rows, indent=2) if args.json else format_history(rows, skipped))
        return 0
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
    """Time every case on every backend (and pmcxcl next to OpenCL) in ``repeat`` interleaved
    rounds; return the report."""
    cases = list(dict.fromkeys(cases))
    report = _provenance()
    report.update(seed=seed, repeat=repeat, photons={b: min(photons, numpy_photons) if b == "numpy" else photons
                                                     for b in backends},
                  schedule=[], results=[], checks=[], skipped=[])
    engines = {}
    for name in backends:
        try:
            engines[name] = get_backend(name)
        except Exception as err:  # a backend that cannot start is reported, not fatal
            report["skipped"].append({"engine": "photonqd", "backend": name, "reason": str(err)})
    peer_cases = []
    if peer and "opencl" in engines:
        mcxcl = _probe_mcxcl()
        if "reason" in mcxcl:
            report["skipped"].append(mcxcl)
        else:
            peer_cases = list(cases)
    phantoms = {case: BENCHMARKS[case]() for case in cases}
    for case in cases:   # untimed: builds each kernel, fills the caches (pmcxcl warms up per run)
        for name, backend in engines.items():
            _photonqd_run(phantoms[case], backend, _warmup(report["photons"][name]), seed)
    # (case, engine, backend) -> seconds of every round, and the fastest round's outcome
    seconds, fastest = {}, {}
    for round_ in range(repeat):
        for case in cases:
            for name, backend in engines.items():
                turns = ["photonqd", "pmcxcl"] if name == "opencl" and case in peer_cases else ["photonqd"]
                if round_ % 2:   # take turns going first: a drift in load falls on both engines
                    turns.reverse()
                for engine in turns:
                    key = (case, engine, name)
                    report["schedule"].append({"round": round_, "case": case, "engine": engine, "backend": name})
                    if engine == "photonqd":
                        outcome = _photonqd_run(phantoms[case], backend, report["photons"][name], seed)
                        elapsed = outcome.extra["transport_seconds"]
                    else:
                        try:
                            outcome = _mcxcl_run(case, photons, seed)
                        except RuntimeError as err:
                            report["skipped"].append({"engine": "pmcxcl", "backend": "opencl",
                                                      "reason": f"{case}: {err}"})
                            peer_cases.remove(case)
                            seconds.pop(key, None)
                            continue
                        elapsed = outcome["seconds"]
                    seconds.setdefault(key, []).append(elapsed)
                    if elapsed <= min(seconds[key]):
                        fastest[key] = outcome
    cpu = report["cpu"]
    for case in cases:
        for name, backend in engines.items():
            ours = _photonqd_row(phantoms[case], fastest[case, "photonqd", name], seconds[case, "photonqd", name],
                                 cpu, _cores_used(name, backend))
            report["results"].append(ours)
            if phantoms[case].reference_absorbed is not None:
                report["checks"].append(_check_reference(ours, phantoms[case].reference_absorbed))
            if (case, "pmcxcl", name) in seconds:
                theirs = _mcxcl_row(fastest[case, "pmcxcl", name], seconds[case, "pmcxcl", name], ours, cpu)
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


def _photonqd_run(phantom, backend, photons: int, seed: int):
    # the fluence volume stays off: the absorbed-weight volume is photonqd's counterpart of MCX's
    # flux volume (each engine writes one volumetric tally). Same seed and photons every round:
    # the tallies are the same, only the time differs.
    return phantom.simulation(photons, seed, fluence=False).run(backend)


def _figures(photons: int, seconds: list[float]) -> dict:
    """Best (fastest round) and every round's photons/ms, their min/median/max and spread."""
    rates = [photons / (s * 1e3) for s in seconds]
    median = statistics.median(rates)
    return {"seconds": min(seconds), "photons_per_ms": max(rates), "rounds_seconds": list(seconds),
            "rounds_photons_per_ms": rates, "photons_per_ms_min": min(rates),
            "photons_per_ms_median": median, "photons_per_ms_max": max(rates),
            "spread": (max(rates) - min(rates)) / median}


def _cycles(cpu: dict, cores: int | None, seconds: float, iterations: float | None, photons: int) -> float | None:
    """CPU cycles per loop iteration: clock x cores x seconds / iterations (None off the CPU)."""
    if cores is None or not cpu.get("clock_mhz") or not iterations:
        return None
    return cpu["clock_mhz"] * 1e6 * cores * seconds / (iterations * photons)


def _photonqd_row(phantom, result, seconds: list[float], cpu: dict, cores: int | None) -> dict:
    photons = result.photons
    figures = _figures(photons, seconds)
    steps = getattr(result, "steps", None)
    if steps is not None:
        iterations, source = float(steps), "Result.steps"
    else:
        iterations, source = result.interactions, ("Result.interactions (Result.steps absent: scattering "
                                                   "events stand in for loop iterations, a lower bound)")
    absorbed = result.absorbed_fraction
    return {
        "case": phantom.name, "engine": "photonqd", "version": __version__, "backend": result.backend,
        "device": result.device, "photons": photons, **figures,
        "interactions_per_photon": result.interactions,
        "interactions_per_s": result.interactions * photons / figures["seconds"],
        "loop_iterations_per_photon": iterations, "loop_iterations_source": source, "cores_used": cores,
        "cycles_per_iteration": _cycles(cpu, cores, figures["seconds"], iterations, photons),
        "absorbed_fraction": absorbed, "absorbed_error": _error_bound(absorbed, photons),
    }


def _mcxcl_row(run: dict, seconds: list[float], ours: dict, cpu: dict) -> dict:
    """pmcxcl's row; per-photon work (MCX counts neither scattering events nor loop iterations) is
    photonqd's on the same problem and device."""
    photons = run["photons"]
    figures = _figures(photons, seconds)
    same = f"photonqd {ours['backend']}'s, same problem (MCX does not count them)"
    row = {**run, **figures, "absorbed_error": _error_bound(run["absorbed_fraction"], photons),
           "interactions_per_photon": ours["interactions_per_photon"], "interactions_source": same,
           "interactions_per_s": ours["interactions_per_photon"] * photons / figures["seconds"],
           "loop_iterations_per_photon": ours["loop_iterations_per_photon"],
           "loop_iterations_source": f"{same}: {ours['loop_iterations_source']}",
           "cores_used": ours["cores_used"]}
    row["cycles_per_iteration"] = _cycles(cpu, row["cores_used"], figures["seconds"],
                                          row["loop_iterations_per_photon"], photons)
    return row


def _cores_used(name: str, backend) -> int | None:
    """CPU cores a backend's transport occupies; None on a GPU, where the CPU clock says nothing."""
    if name == "numpy":
        return 1   # array operations on one thread
    if name != "opencl" or getattr(backend, "is_gpu", True):
        return None
    device = getattr(backend, "dev", None)   # the pyopencl device; PoCL runs one thread per compute unit
    if device is not None:
        return int(device.max_compute_units)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


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
    medians = (ours.get("photons_per_ms_median"), theirs.get("photons_per_ms_median"))
    if not agree:
        note = f"no speed ratio: absorbed fractions differ by {z:.1f} standard errors"
    elif not same_device:
        note = f"no speed ratio: different devices ({ours['device']} vs {theirs['device']})"
    else:
        note = ""
    return {"case": ours["case"], "check": "photonqd opencl vs pmcxcl absorbed fraction",
            "photonqd_absorbed": ours["absorbed_fraction"], "pmcxcl_absorbed": theirs["absorbed_fraction"],
            "z": z, "agree": agree, "ratio": ratio if agree and same_device else None,
            "ratio_median": medians[0] / medians[1] if agree and same_device and all(medians) else None,
            "note": note}


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


def _mcxcl_run(case: str, photons: int, seed: int) -> dict:
    """One timed pmcxcl run (after its own warm-up) in a fresh process."""
    return _run_mcxcl(case, "--photons", photons, "--seed", seed, "--warmup", _warmup(photons), "--repeat", 1)


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


CPUFREQ_MAX = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")


def _cpu() -> dict:
    """CPU model, logical cores and the clock used for cycles per loop iteration, with its source:
    the maximum clock (cpufreq, what lscpu shows as CPU max MHz), else the nominal clock in the model
    name, else /proc/cpuinfo's cpu MHz (the current clock; in a VM, the host's nominal clock)."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())   # the first core's
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or None
    clock, source = None, None
    try:
        clock, source = int(CPUFREQ_MAX.read_text()) / 1e3, f"{CPUFREQ_MAX} (max)"
    except (OSError, ValueError):
        nominal = re.search(r"@\s*([\d.]+)\s*GHz", model or "")
        if nominal:
            clock, source = float(nominal.group(1)) * 1e3, "model name (nominal)"
        elif "cpu MHz" in fields:
            clock, source = float(fields["cpu MHz"]), "/proc/cpuinfo cpu MHz: current clock, no max or nominal known"
    return {"model": model, "logical_cores": os.cpu_count(),
            "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "clock_mhz": clock, "clock_source": source}


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
        "cpu": _cpu(),
        "devices": [{"backend": d.backend, "device": d.device, "reason": d.reason} for d in discover()],
        "load_average_start": _load_average(),
    }


#: what run_to_run reads from a saved report (older reports lack the CPU and the rounds)
REPORT_FIELDS = ("date", "git_commit", "kernel_sha256", "results", "checks")
RESULT_FIELDS = ("case", "engine", "backend", "device", "photons", "photons_per_ms")


def read_reports(paths) -> tuple[list[dict], list[str]]:
    """The saved ``photonqd bench`` reports among ``paths``, and the paths of other JSON files
    (study and cluster benchmarks share the results folder); a file that is not JSON is an error."""
    reports, skipped = [], []
    for path in paths:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"--history: {path}: not a readable JSON report ({err})") from None
        if not isinstance(report, dict) or report.get("filetype") != "photonqd bench":
            skipped.append(str(path))
            continue
        missing = [k for k in REPORT_FIELDS if k not in report]
        for i, row in enumerate(report.get("results") or []):
            missing += [f"results[{i}].{k}" for k in RESULT_FIELDS if not isinstance(row, dict) or k not in row]
        if missing:
            raise ValueError(f"--history: {path}: a photonqd bench report without {', '.join(missing[:3])}")
        reports.append(report)
    return reports, skipped


def run_to_run(reports: list[dict]) -> list[dict]:
    """Each case and engine's figure (its fastest round) report by report, for runs that timed the
    same code the same way on the same machine: grouped by case, engine, backend, device, photons,
    rounds (the best of more rounds is a larger figure), CPU model and photonqd's kernel_sha256
    (pmcxcl: its version). Per group: the runs in date order, spread = (max - min) / median of their
    figures and within = (max - min) / (max + min), the least x such that every figure lies within
    +-x of one value (the midpoint of the range)."""
    groups: dict[tuple, list[dict]] = {}
    for report in sorted(reports, key=lambda r: r["date"]):
        ratios = {c["case"]: c["ratio"] for c in report["checks"] if c.get("ratio")}
        for r in report["results"]:
            code = report["kernel_sha256"] if r["engine"] == "photonqd" else r.get("version")
            key = (r["case"], r["engine"], r["backend"], r["device"], r["photons"], report.get("repeat", 1),
                   (report.get("cpu") or {}).get("model"), code)
            peer = r["engine"] == "photonqd" and r["backend"] == "opencl"
            groups.setdefault(key, []).append({
                "date": report["date"], "commit": report["git_commit"], "photons_per_ms": r["photons_per_ms"],
                "rounds_spread": r.get("spread"), "ratio": ratios.get(r["case"]) if peer else None})
    rows = []
    for (case, engine, backend, device, photons, rounds, cpu, code), runs in groups.items():
        figures = [run["photons_per_ms"] for run in runs]
        median = statistics.median(figures)
        rows.append({"case": case, "engine": engine, "backend": backend, "device": device, "photons": photons,
                     "rounds": rounds, "cpu": cpu, "code": code, "runs": runs, "median": median,
                     "spread": (max(figures) - min(figures)) / median,
                     "within": (max(figures) - min(figures)) / (max(figures) + min(figures))})
    return rows


def format_history(rows: list[dict], skipped: list[str] = ()) -> str:
    """run_to_run's rows as a table: one line per group, the figures in date order."""
    lines = ["fastest-round photons/ms per saved report, by case, engine, device, photons, rounds, CPU "
             "and code (photonqd: kernel sha256; pmcxcl: version)",
             f"{'case':12s}{'engine':9s}{'backend':8s}{'photons':>9s}{'best of':>8s}  {'code':12s}{'runs':>5s}"
             f"{'median':>9s}{'spread':>8s}{'within':>8s}  figures (ratios to pmcxcl)  CPU"]
    for row in rows:
        figures = " ".join(f"{run['photons_per_ms']:.1f}" + (f" ({run['ratio']:.2f}x)" if run["ratio"] else "")
                           for run in row["runs"])
        lines.append(f"{row['case']:12s}{row['engine']:9s}{row['backend']:8s}{row['photons']:9d}"
                     f"{row['rounds']:8d}  {str(row['code'])[:12]:12s}{len(row['runs']):5d}{row['median']:9.2f}"
                     f"{100 * row['spread']:7.1f}% ±{100 * row['within']:4.1f}%  {figures}  "
                     f"{row['cpu'] or 'CPU unknown'}")
    if not rows:
        lines.append("no photonqd bench reports")
    if skipped:
        lines.append(f"skipped {len(skipped)} file(s) that are not photonqd bench reports")
    return "\n".join(lines)


def format_report(report: dict) -> str:
    """The report as a table, followed by the checks, where the figures came from and what was skipped."""
    cpu = report.get("cpu", {})
    clock = f"{cpu['clock_mhz']:.0f} MHz ({cpu['clock_source']})" if cpu.get("clock_mhz") else "clock unknown"
    lines = [f"photonqd {report['photonqd']} bench  {report['date']}  commit "
             f"{(report['git_commit'] or 'unknown')[:10]}{' (dirty)' if report['git_dirty'] else ''}  "
             f"best of {report['repeat']} interleaved round(s)",
             f"CPU {cpu.get('model')}, {cpu.get('logical_cores')} logical cores, {clock}",
             f"{'case':12s}{'engine':9s}{'backend':8s}{'photons':>9s}{'photons/ms':>11s}{'median':>9s}"
             f"{'spread':>8s}{'interact/s':>11s}{'iter/ph':>9s}{'cyc/iter':>9s}{'absorbed %':>11s}  device"]
    def cell(value, width: int, fmt: str) -> str:
        return f"{'-':>{width}s}" if value is None else f"{value:{width}{fmt}}"
    for r in report["results"]:
        lines.append(f"{r['case']:12s}{r['engine']:9s}{r['backend']:8s}{r['photons']:9d}"
                     f"{r['photons_per_ms']:11.2f}{r['photons_per_ms_median']:9.2f}{100 * r['spread']:7.1f}%"
                     f"{cell(r['interactions_per_s'], 11, '.3e')}{cell(r['loop_iterations_per_photon'], 9, '.1f')}"
                     f"{cell(r['cycles_per_iteration'], 9, '.1f')}{100 * r['absorbed_fraction']:11.3f}  {r['device']}")
    for c in report["checks"]:
        verdict = "ok" if c["agree"] else "DISAGREE"
        ratio = f"  speed ratio photonqd/pmcxcl = {c['ratio']:.2f}" if c.get("ratio") else ""
        if c.get("ratio_median"):
            ratio += f" (medians {c['ratio_median']:.2f})"
        note = f"  ({c['note']})" if c.get("note") else ""
        lines.append(f"{c['case']:12s}{c['check']}: {verdict}, z = {c['z']:.1f}{ratio}{note}")
    sources = dict.fromkeys(f"{r['engine']}: {r['loop_iterations_source']}" for r in report["results"])
    lines += [f"loop iterations per photon from {s}" for s in sources]
    for f in report.get("fluorescence", []):
        lines.append(f"fluorescence {f['backend']}: excitation {f['excitation_seconds']:.2f} s, excitation + "
                     f"emission {f['full_seconds']:.2f} s, ratio {f['overhead_ratio']:.2f} ({f['photons']} photons)")
    for s in report["skipped"]:
        lines.append(f"skipped {s['engine']} {s['backend']}: {s['reason']}")
    return "\n".join(lines)
