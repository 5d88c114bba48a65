"""The ``photonqd`` command line: study, run, show, devices, validate, bench."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path


def _devices(args) -> int:
    from .backends import BACKENDS, available, discover

    usable = available()
    print("photonqd backends (auto-selection order: " + " > ".join(usable) + ")")
    for name in BACKENDS:
        for info in (i for i in discover() if i.backend == name):
            if info.device:
                kind = "GPU" if info.is_gpu else "CPU"
                print(f"  {name:7s} {kind}  {info.device}")
            else:
                print(f"  {name:7s} --   skipped: {info.reason}")
    return 0


def _validate(args) -> int:
    from .validation.runner import run_cli
    return run_cli(args)


def _bench(args) -> int:
    from .bench import run_cli
    return run_cli(args)


def _study(args, single_depth: bool = False) -> int:
    """A study on the best local backend, or on a Dask cluster (--cluster ADDRESS / --workers N)
    whose finished chunks are checkpointed beside the results file until the study is done."""
    if getattr(args, "cluster", None) is None and getattr(args, "workers", None) is None:
        from .backends import get_backend
        return _run_study(args, get_backend(args.backend), single_depth)
    from .cluster import Cluster, _require_distributed, connect

    _require_distributed()      # imported first: importing distributed sets its loggers' levels
    logging.getLogger("distributed").setLevel(logging.INFO if args.verbose else logging.ERROR)
    with connect(args.cluster, args.workers, args.backend) as client:
        cluster = Cluster(client, args.backend, checkpoint=Path(f"{args.output}.chunks"))
        print(f"cluster {cluster.address}: {len(cluster.workers)} workers, {cluster.name} on {cluster.device}",
              file=sys.stderr)
        code = _run_study(args, cluster, single_depth)
    if code == 0:
        shutil.rmtree(cluster.checkpoint, ignore_errors=True)
    return code


def _run_study(args, backend, single_depth: bool) -> int:
    from .io import StudyFile, save
    from .study import default_config_text, parse_config, run_study

    text = _read_text(args.config) if args.config else default_config_text()
    config = parse_config(text, photons=args.photons, base_dir=Path(args.config).parent if args.config else None)
    verify_depths = None
    if config.multiplex is not None and (getattr(args, "verify", None) or getattr(args, "sensitivity", False)):
        from .study import ConfigError
        raise ConfigError("multiplex: --verify and --sensitivity are for probe studies, not a [multiplex] study")
    if getattr(args, "verify", None):  # refused now, not after hours of transport
        from .verify import check_depths
        verify_depths = check_depths(config, args.verify)
    if single_depth:
        config.depths_mm = config.depths_mm[:1]
    run_info = {"backend": backend.name, "device": backend.device}
    if hasattr(backend, "provenance"):
        run_info["cluster"] = json.dumps(backend.provenance(), sort_keys=True)
    out = StudyFile(args.output, config, run_info)
    if out.done:
        print(f"resuming {out.path}: depths done {out.completed_depths}", file=sys.stderr)
    remaining = [d for d in config.depths_mm if d not in set(out.completed_depths)]
    if config.multiplex is not None and out.done is not None and out.done.multiplex is None:
        remaining = list(config.depths_mm)         # a multiplexed study is saved only when complete
    if backend.name == "numpy" and remaining and not hasattr(backend, "provenance"):
        _numpy_estimate(config, remaining)
    bar = _Progress(1 if config.multiplex is not None and remaining else len(remaining))
    stored = [len(out.completed_depths)]

    def saved(result):
        if result.multiplex is not None:
            save(result, out.path, out.run_info)
            stored[0] = len(config.depths_mm)
            bar.step(f"{len(config.depths_mm)} depths saved")
            return
        depth = out.save_depth(result)
        stored[0] += 1
        bar.step(f"{depth:g} mm saved")

    try:
        if remaining:
            result = run_study(config, backend, done=out.done, on_depth=saved, progress=bar.photons)
        else:
            result = out.done
    except KeyboardInterrupt:
        print(f"\ninterrupted; {stored[0]} depths kept in {out.path}, rerun to resume", file=sys.stderr)
        return 130
    _print_tables(result)
    print(f"results: {out.path}")
    if verify_depths:
        from .verify import format_comparisons, verify

        rows = verify(result, verify_depths, backend, args.verify_photons, args.verify_photons)
        print("adjoint against the forward path (z = difference / combined standard error):")
        print(format_comparisons(rows))
        out.save_verification(rows)
    variants = None
    if getattr(args, "sensitivity", False):
        from .io import save_sensitivity
        from .sensitivity import as_records, format_sensitivity, run_sensitivity

        variants = run_sensitivity(result, backend)
        print(format_sensitivity(result, variants))
        save_sensitivity(out.path, as_records(variants))
    if args.plots:
        from .plots import plot_sensitivity, write_plots
        paths = write_plots(result, args.plots)
        if variants:
            paths.append(plot_sensitivity(result, variants, Path(args.plots) / "sensitivity.png"))
        for path in paths:
            print(f"plot: {path}")
    return 0


def _depths(text: str) -> list[float]:
    """--verify's depth list: "2,5,8" -> [2.0, 5.0, 8.0]."""
    try:
        depths = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected depths in mm separated by commas, got {text!r}") from None
    if not depths:
        raise argparse.ArgumentTypeError("expected at least one depth in mm")
    return depths


def _read_text(path) -> str:
    """A configuration file's text, or a ValueError naming the file."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a configuration file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None


def _numpy_estimate(config, depths) -> None:
    """On NumPy, say before starting how long the study will take and how to make it faster:
    time one launch of the first depth's excitation, as large as the study's launches (NumPy's
    cost per photon falls with the launch size), and scale by the photons the study launches."""
    from .simulation import Simulation
    from .study import estimate_photons, target_centre

    scene = config.scene(depths[0])
    centre = target_centre(scene)
    excitation = config.excitation_for(centre)
    medium, _ = scene.medium([excitation.wavelength_nm], fluorophores=[])
    sample = max(200, min(5000, config.photons // 10))
    start = time.perf_counter()
    Simulation(medium, dataclasses.replace(excitation.source, wavelength_bin=0), photons=sample,
               seed=config.seed, batch_photons=sample).run("numpy")
    per_photon = (time.perf_counter() - start) / sample
    low, high = estimate_photons(config, len(depths))
    print(f"photonqd: running on NumPy (exact but slow). {len(depths)} depths launch "
          f"{low:.3g} to {high:.3g} photons: about {_duration(low * per_photon)} to "
          f"{_duration(high * per_photon)}. For a 10-1000x faster run install an OpenCL runtime "
          "(Debian/Ubuntu: apt-get install pocl-opencl-icd; or your GPU vendor's driver) and "
          "pip install 'photonqd[opencl]', or CuPy for an NVIDIA GPU (photonqd[cuda12]); "
          "`photonqd devices` says what is found.", file=sys.stderr)


def _duration(seconds: float) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _show(args) -> int:
    from .io import load

    result, info = load(args.results)
    print(f"{args.results}: photonqd {info['photonqd_version']} commit {info['git_commit'][:10] or '?'}, "
          f"backend {info['backend']} ({info['device']}), seed {info['seed']}, created {info['created']}")
    _print_tables(result)
    from .io import load_sensitivity
    records = load_sensitivity(args.results)
    if records:
        from .sensitivity import format_sensitivity, from_records
        print(format_sensitivity(result, from_records(records)))
    return 0


def _print_tables(result) -> None:
    """The study's table; for a multiplexed study its unmixing table (the (channel, species) pairs'
    table is in the results file: photonqd show)."""
    if result.multiplex is None:
        print(format_table(result))
        return
    from .multiplex import format_multiplex
    print(format_multiplex(result.multiplex))


def format_table(result) -> str:
    """Per probe: the depth limit with its interval, then the metrics at every depth with their
    Monte Carlo errors and the decision."""
    cfg = result.config
    k, Z = cfg.threshold, cfg.z
    lines = [f"method: {cfg.method}; criterion: {cfg.criterion} >= {k:g}, decided at {Z:g} standard errors "
             f"(yes: value - {Z:g} err >= {k:g}; no: value + {Z:g} err < {k:g}; otherwise undecided)",
             f"{'probe':10s}  depth limit (mm) [{Z:g}-sigma interval]"]
    for p in cfg.probes:
        lines.append(f"{p.name:10s}  {result.depth_limit(p.name).describe()}")
    lines.append(f"{'probe':10s}{'depth':>7s}{'CNR':>11s}{'± err':>9s}{'SNR':>11s}{'± err':>9s}{'SBR':>9s}"
                 f"{'± err':>8s}{'contrast':>10s}{'± err':>8s}{'FWHM mm':>9s}{'± err':>8s}{'photons':>10s}  detectable")
    for img in sorted(result.images, key=lambda i: (i.probe, i.depth_mm)):
        m, e = img.metrics, img.errors
        cnr_err = e.get("cnr", abs(m.cnr) * img.signal_rel_error)
        lines.append(f"{img.probe:10s}{img.depth_mm:7.4g}{m.cnr:11.4g}{cnr_err:9.2g}{m.snr:11.4g}"
                     f"{e.get('snr', float('nan')):9.2g}{m.sbr:9.3g}{e.get('sbr', float('nan')):8.2g}"
                     f"{m.contrast:10.3f}{e.get('contrast', float('nan')):8.2g}{m.fwhm_mm:9.3g}"
                     f"{e.get('fwhm_mm', float('nan')):8.2g}{img.emission_photons:10d}  {result.verdict(img)}")
    return "\n".join(lines)


class _Progress:
    """A one-line progress bar on stderr: the depths saved, and the photons of the run in
    progress (on a cluster: of every worker's chunks)."""

    #: Seconds between redraws for photon progress.
    INTERVAL_S = 1.0

    def __init__(self, total: int):
        self.total, self.done, self.last = total, 0, 0.0

    def step(self, text: str) -> None:
        self.done += 1
        self._draw(text, end="\n" if self.done == self.total else "")

    def photons(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last >= self.INTERVAL_S and sys.stderr.isatty():
            self.last = now
            self._draw(f"run {done:,}/{total:,} photons", end="")

    def _draw(self, text: str, end: str) -> None:
        filled = int(30 * self.done / max(self.total, 1))
        clear = "\033[K" if sys.stderr.isatty() else ""     # erase a longer earlier line
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} {text}{clear}",
              file=sys.stderr, end=end, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photonqd", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log backend discovery")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("devices", help="list backends and devices, and why any was skipped")
    p.set_defaults(func=_devices)

    for name, single, text in (("study", False, "depth study: NIR-I vs NIR-II detectability against depth "
                                                 "(no CONFIG: the default study)"),
                               ("run", True, "one simulation: the first depth of CONFIG's study")):
        p = sub.add_parser(name, help=text)
        p.add_argument("config", metavar="CONFIG.toml", nargs="?" if not single else None,
                       help="study configuration (examples/*.toml)")
        p.add_argument("-o", "--output", default="results.h5" if not single else "run.h5",
                       help="HDF5 results file; an existing one of the same study is resumed")
        p.add_argument("--backend", choices=("cuda", "opencl", "numpy"), help="default: auto")
        p.add_argument("--photons", type=int, help="override the excitation and emission photon counts")
        p.add_argument("--plots", metavar="DIR", help="write PNG figures into DIR")
        p.add_argument("--cluster", metavar="ADDRESS",
                       help="run on the Dask scheduler at ADDRESS (tcp://host:8786; docs/cluster.md); finished "
                            "chunks are kept in OUTPUT.chunks/ until the study is done, so a rerun resumes")
        p.add_argument("--workers", type=int, metavar="N",
                       help="run on a local Dask cluster of N worker processes (one per GPU with dask-cuda)")
        if not single:
            p.add_argument("--verify", metavar="DEPTHS", type=_depths,
                           help="after the study, run the forward path at these depths (mm, comma-separated) "
                                "and print adjoint/forward agreement as z-scores")
            p.add_argument("--sensitivity", action="store_true",
                           help="after the study, rerun it with clutter, autofluorescence yield, NA, tumour-to-"
                                "background ratio and QD concentration each at the ends of its range, and print "
                                "how each probe's depth limit moves (docs/detection.md)")
            p.add_argument("--verify-photons", type=int, metavar="N",
                           help="excitation and emission photons of each --verify run (default: the "
                                "study's photons and emission_photons)")
        p.set_defaults(func=lambda a, single=single: _study(a, single))

    p = sub.add_parser("show", help="summary table of a results file")
    p.add_argument("results", metavar="RESULTS.h5")
    p.set_defaults(func=_show)

    from .validation.runner import add_arguments as validate_arguments
    p = sub.add_parser("validate", help="run validation cases against published values")
    validate_arguments(p)
    p.set_defaults(func=_validate)

    from .bench import add_arguments as bench_arguments
    p = sub.add_parser("bench", help="measure photons/ms on MCX's benchmark phantoms and tissue60, beside pmcxcl")
    bench_arguments(p)
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"\nphotonqd {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader closed the pipe (`photonqd show r.h5 | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
        return 141
    except ModuleNotFoundError as err:  # an optional dependency (CuPy, pyopencl, miepython, ...)
        print(f"photonqd {args.command}: error: {_missing_module_hint(err)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError, OSError, ImportError) as err:
        # user errors: bad values, files that cannot be read or written, missing dependencies
        print(f"photonqd {args.command}: error: {err}", file=sys.stderr)
        return 2


def _missing_module_hint(err: ModuleNotFoundError) -> str:
    hints = {"cupy": "the cuda backend needs CuPy: pip install 'photonqd[cuda12]' (CUDA 12 driver) or "
                     "'photonqd[cuda13]' (CUDA 13)",
             "pyopencl": "the opencl backend needs pyopencl: pip install 'photonqd[opencl]'",
             "miepython": "Mie theory needs miepython: pip install 'photonqd[mie]'",
             "matplotlib": "plots need matplotlib: pip install 'photonqd[plot]'"}
    return hints.get((err.name or "").split(".")[0], str(err))


if __name__ == "__main__":
    sys.exit(main())
