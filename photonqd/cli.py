"""The ``photonqd`` command line: devices, validate, bench."""

from __future__ import annotations

import argparse
import logging
import sys


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="photonqd", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log backend discovery")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("devices", help="list backends and devices, and why any was skipped")
    p.set_defaults(func=_devices)

    from .validation.runner import add_arguments as validate_arguments
    p = sub.add_parser("validate", help="run validation cases against published values")
    validate_arguments(p)
    p.set_defaults(func=_validate)

    from .bench import add_arguments as bench_arguments
    p = sub.add_parser("bench", help="measure photons/ms on MCX's benchmark phantoms")
    bench_arguments(p)
    p.set_defaults(func=_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except (ValueError, RuntimeError) as err:
        print(f"photonqd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
