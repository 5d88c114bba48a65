"""Time the default depth study (adjoint method) and compare it with the forward path at equal
Monte Carlo error (issue: "every target depth from one run").

    python benchmarks/bench_study.py --backend opencl --save benchmarks/results
    python benchmarks/bench_study.py --backend numpy --no-forward --save benchmarks/results

The adjoint study runs as `photonqd study` does (default configuration, or CONFIG). The forward
path then runs at --forward-depths (each probe's QD emission into the camera, forward batches),
and its time to reach the adjoint's relative error on the CNR's numerator (S_target - S_ring) is
t_forward x (rel_forward / rel_adjoint)^2 per probe and depth (the forward run's time shared
equally by the probes). Speed-up = that over the adjoint study's wall time per probe and depth,
where the forward run resolved the numerator to 50 % (an unresolved forward error is no basis).
Equal statistical error only: where the adjoint's Born fields are biased (the target in a layer
of other scattering or index, docs/adjoint.md) the comparison says nothing about that bias. One JSON report per run goes to --save with the CPU model and git commit.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    from photonqd.backends import get_backend
    from photonqd.io import git_commit
    from photonqd.study import default_config_text, parse_config, run_study
    from photonqd.verify import forward_regions

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", help="study TOML (default: the default study)")
    p.add_argument("--backend", default=None)
    p.add_argument("--forward-depths", default="3,6,9", help="depths (mm) of the forward comparison")
    p.add_argument("--forward-photons", type=int, default=200_000,
                   help="emission photons per probe of each forward run (excitation: the study's photons)")
    p.add_argument("--no-forward", action="store_true")
    p.add_argument("--save", metavar="DIR")
    args = p.parse_args(argv)

    text = Path(args.config).read_text() if args.config else default_config_text()
    config = parse_config(text)
    backend = get_backend(args.backend)
    start = time.perf_counter()
    result = run_study(config, backend)
    study_seconds = time.perf_counter() - start
    report = {"what": "default depth study, adjoint method" if not args.config else args.config,
              "backend": backend.name, "device": backend.device, "cpu": cpu_model(),
              "commit": git_commit(), "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
              "study_seconds": study_seconds, "depths": len(config.depths_mm),
              "provenance_adjoint": result.provenance.get("adjoint", {}), "limits": {}, "at_3mm": {}}
    for probe in config.probes:
        limit = result.depth_limit(probe.name)
        report["limits"][probe.name] = {"estimate_mm": limit.estimate, "low_mm": limit.low, "high_mm": limit.high,
                                        "status": limit.status}
        img = next((i for i in result.images if i.probe == probe.name and math.isclose(i.depth_mm, 3.0)), None)
        if img is not None:
            report["at_3mm"][probe.name] = {k: [getattr(img.metrics, k), img.errors.get(k)] for k in ("cnr", "snr")}
    print(f"adjoint study: {study_seconds:.1f} s on {backend.name} ({backend.device}), {cpu_model()}")
    for name, lim in report["limits"].items():
        print(f"  {name:8s} depth limit {lim['estimate_mm']:.2f} mm [{lim['low_mm']:.2f}, {lim['high_mm']:.2f}] "
              f"({lim['status']})")

    if not args.no_forward:
        rows = []
        for depth in (float(d) for d in args.forward_depths.split(",")):
            t0 = time.perf_counter()
            forward = forward_regions(config, depth, backend, config.photons, args.forward_photons)
            seconds = time.perf_counter() - t0
            for probe in config.probes:
                img = next(i for i in result.images if i.probe == probe.name and math.isclose(i.depth_mm, depth))
                (st, et), (sr, er) = forward[probe.name]["signal_target_e"], forward[probe.name]["signal_ring_e"]
                rel_f = math.hypot(et, er) / abs(st - sr)
                rel_a = img.errors["cnr"] / abs(img.metrics.cnr)
                rows.append({"probe": probe.name, "depth_mm": depth, "forward_seconds": seconds / len(config.probes),
                             "forward_rel_error": rel_f, "adjoint_rel_error": rel_a,
                             "forward_seconds_at_adjoint_error": seconds / len(config.probes) * (rel_f / rel_a) ** 2})
        report["forward"] = rows
        # per probe and depth: forward seconds at the adjoint's error over the adjoint study's
        # seconds per probe and depth; only where the forward run resolved the numerator (rel <= 0.5),
        # since an unresolved forward error is itself unreliable
        per = study_seconds / (len(config.depths_mm) * len(config.probes))
        resolved = [r["forward_seconds_at_adjoint_error"] / per for r in rows if r["forward_rel_error"] <= 0.5]
        report["adjoint_seconds_per_probe_depth"] = per
        report["speedup_resolved_rows"] = resolved
        if resolved:
            print(f"speed-up at equal error per probe and depth (forward resolved to <= 50 %): "
                  f"{min(resolved):.3g} to {max(resolved):.3g}x, median {np.median(resolved):.3g}x")
        for r in rows:
            print(f"  {r['probe']:8s} {r['depth_mm']:5.2g} mm: forward {r['forward_seconds']:.1f} s at "
                  f"{r['forward_rel_error']:.3f}, adjoint {r['adjoint_rel_error']:.4f} -> "
                  f"{r['forward_seconds_at_adjoint_error']:.3g} s")
    if args.save:
        out = Path(args.save)
        out.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = out / f"{stamp}-study-{report['commit'][:10] or 'nocommit'}.json"
        path.write_text(json.dumps(report, indent=2, default=float))
        print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
