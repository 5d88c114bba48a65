"""Is a slow round the machine or photonqd? Times photonqd rounds of one case (OpenCL) between
rounds of a compute-only reference, SHA-256 of 256 MiB on two threads (no memory traffic beyond
the caches' streaming, no atomics), and reports both spreads, (max - min) / median, and their
correlation. A reference that holds still while photonqd's rounds spread means the variation
comes from what only photonqd touches (its voxel tallies and labels in caches shared with other
tenants), not from the CPU clock; /proc/stat's steal time per round shows a hypervisor taking
the CPU away.

    python benchmarks/bench_noise.py                         # cube60, 5e5 photons, 10 rounds
    POCL_MAX_PTHREAD_COUNT=1 python benchmarks/bench_noise.py --photons 2.5e5   # one PoCL thread

Recorded in benchmarks/README.md ("Run to run").
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import threading
import time

REFERENCE = bytes(range(256)) * (1 << 20)   # 256 MiB


def reference_seconds() -> float:
    """Wall time of two threads hashing REFERENCE each (hashlib releases the GIL on large input)."""
    threads = [threading.Thread(target=lambda: hashlib.sha256(REFERENCE).digest()) for _ in range(2)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def cpu_ticks() -> list[int]:
    """The aggregate 'cpu' line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:]]


def spread(values) -> float:
    return (max(values) - min(values)) / statistics.median(values)


def main() -> None:
    from photonqd.backends import get_backend
    from photonqd.bench import MCX_SEED, _photonqd_run
    from photonqd.phantom import BENCHMARKS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="cube60", choices=sorted(BENCHMARKS))
    parser.add_argument("--photons", type=float, default=5e5)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    photons = int(args.photons)
    backend, phantom = get_backend("opencl"), BENCHMARKS[args.case]()
    _photonqd_run(phantom, backend, 20_000, MCX_SEED)   # builds the kernel
    ours, reference = [], []
    for r in range(args.rounds):
        before = reference_seconds()
        ticks = cpu_ticks()
        result = _photonqd_run(phantom, backend, photons, MCX_SEED)
        used = [b - a for a, b in zip(ticks, cpu_ticks())]
        after = reference_seconds()
        ours.append(photons / (result.extra["transport_seconds"] * 1e3))
        reference.append(2 * len(REFERENCE) / ((before + after) / 2) / 1e6)
        total = sum(used) or 1
        print(f"round {r}: photonqd {ours[-1]:7.1f} photons/ms  reference {reference[-1]:7.1f} MB/s  "
              f"user {used[0] / total:.2f}  idle {used[3] / total:.2f}  steal {used[7] / total:.3f}", flush=True)
    print(f"{args.case}, {photons} photons, {args.rounds} rounds: spread photonqd {100 * spread(ours):.1f} %, "
          f"reference {100 * spread(reference):.1f} %, correlation {statistics.correlation(ours, reference):.2f}")


if __name__ == "__main__":
    main()
