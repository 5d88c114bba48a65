"""Runs validation cases on a backend and prints value, reference, deviation and pass/fail.

``photonqd validate [--backend B] [--case NAME ...] [--fast] [--photons N | --scale F] [--list]``
exits 0 when every check passes and 1 otherwise. The pass rule is in ``comparison``.
"""

from __future__ import annotations

import argparse
import math
import time

from photonqd.backends import BACKENDS, get_backend

from .cases import Case, by_name
from .comparison import QUANTITIES, Z_MAX, Outcome, judge

BATCHES = 20
_ROW = "{:<26} {:<3} {:>10} {:>9} {:>10} {:>9} {:>7}  {:<4} {:>9} {:>7}"


def photons_for(case: Case, photons: int | None = None, scale: float = 1.0) -> int:
    """Photons to launch: an explicit count, else the case's full count times ``scale``."""
    n = int(photons) if photons is not None else int(round(case.photons * scale))
    if n < BATCHES:
        raise ValueError(f"photons: {case.name} needs at least {BATCHES} photons (one per batch), got {n}")
    return n


def run_case(case: Case, backend=None, photons: int | None = None, scale: float = 1.0):
    """Simulate ``case`` and judge its checks; returns (outcomes, result)."""
    result = case.simulation(photons_for(case, photons, scale), BATCHES).run(backend)
    return judge(case, result), result


def header() -> str:
    return _ROW.format("case", "qty", "value", "SE", "reference", "tol", "dev/σ", "", "photons", "seconds")


def rows(outcomes: list[Outcome], result) -> list[str]:
    """Table rows for one case; the photons and run time go on its first row."""
    out = []
    for i, o in enumerate(outcomes):
        extra = (f"{result.photons:.1e}", f"{result.seconds:.1f}") if i == 0 else ("", "")
        out.append(_ROW.format(o.case.name if i == 0 else "", o.check.quantity, f"{o.value:.6f}",
                               f"{o.error:.1e}", f"{o.check.reference:.6f}",
                               f"{o.check.tolerance:.1e}", f"{o.deviation:+.2f}",
                               "pass" if o.passed else "FAIL", *extra))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="backend to run on (default: $PHOTONQD_BACKEND, else the best available)")
    parser.add_argument("--case", dest="cases", metavar="NAME", nargs="+", action="extend",
                        help="run only these cases (repeatable; see --list)")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--photons", type=int, default=None,
                       help="photons per case, overriding each case's full count")
    count.add_argument("--scale", type=float, default=1.0,
                       help="multiply each case's full photon count (e.g. 0.01 on NumPy)")
    parser.add_argument("--fast", action="store_true",
                        help="only the fast subset (the cases pytest runs on every backend)")
    parser.add_argument("--list", action="store_true", help="list the cases and their sources, run nothing")


def _list(cases: list[Case]) -> None:
    for case in cases:
        checks = ", ".join(f"{c.quantity} = {c.reference:g} ± {c.tolerance:.1e}" for c in case.checks)
        print(f"{case.name:<26} {case.photons:.0e} photons{'  [fast]' if case.fast else ''}\n"
              f"    {checks}\n    {case.citation}")


def run_cli(args: argparse.Namespace) -> int:
    cases = by_name(getattr(args, "cases", None))
    if getattr(args, "fast", False):
        cases = [c for c in cases if c.fast]
    if getattr(args, "list", False):
        _list(cases)
        return 0
    scale = getattr(args, "scale", 1.0)
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: must be > 0, got {scale}")
    backend = get_backend(getattr(args, "backend", None))
    print(f"photonqd validate on {backend.name} ({backend.device}); pass: |dev| <= {Z_MAX:g} σ, "
          f"σ = sqrt(SE² + tol²), SE from {BATCHES} batch means")
    print(header())
    failed = 0
    start = time.perf_counter()
    for case in cases:
        outcomes, result = run_case(case, backend, getattr(args, "photons", None), scale)
        failed += sum(not o.passed for o in outcomes)
        print("\n".join(rows(outcomes, result)), flush=True)
    total = sum(len(c.checks) for c in cases)
    print("; ".join(f"{q}: {meaning}" for q, (meaning, _) in QUANTITIES.items()))
    print(f"{total - failed}/{total} checks passed in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0
