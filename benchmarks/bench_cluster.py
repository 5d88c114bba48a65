"""Speed of one large run without Dask, on a local Dask cluster of 1 worker and of 2 workers, and
the per-chunk costs a scaling estimate needs (issue: "runs and studies on a Dask cluster").

    python benchmarks/bench_cluster.py --save benchmarks/results
    python benchmarks/bench_cluster.py --case tissue60 --photons 2e5 --rounds 5

Part 1, throughput: the same run (an MCX benchmark case, photonqd.bench's definitions, same seed)
in interleaved rounds: round r runs every engine once, the first engine rotating from round to
round; best of the rounds per engine counts (other work only slows a run down), every round is
kept. "no Dask" is Simulation.run in this process; "dask N" is Simulation.run(client=...) on a
LocalCluster of N worker processes started before the rounds (startup timed apart), chunked by
default (about four chunks per worker). Every engine's tallies must equal the no-Dask run's bit
for bit, or the benchmark fails. Overhead at 1 worker = t(dask 1) / t(no Dask) - 1, of the best
rounds and of the median rounds (on a noisy machine one lucky round moves the best figure by 20 %).

Part 2, per-chunk costs of a 1e7-voxel phantom (absorbed + fluence tallies): the bytes one
chunk's tallies take (pickled as a worker sends them), the seconds to move that many bytes from
a worker to the client, and the client's seconds to merge them into the run's exact sum: the
client's serial work per chunk, which bounds how many GPUs one client keeps busy
(docs/cluster.md).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np


def throughput(case: str, photons: int, rounds: int, backend: str) -> dict:
    from photonqd.cluster import Cluster, connect
    from photonqd.phantom.mcx import benchmark

    def sim():
        return benchmark(case).simulation(photons, 1648335518, fluence=True)

    clusters, startup = {}, {}
    with connect(workers=1, backend=backend) as one, connect(workers=2, backend=backend) as two:
        for name, client in (("dask 1", one), ("dask 2", two)):
            t0 = time.perf_counter()
            clusters[name] = Cluster(client, backend)
            startup[name] = time.perf_counter() - t0
        engines = {"no Dask": backend, **clusters}
        for name, engine in engines.items():          # untimed: builds every worker's kernel
            benchmark(case).simulation(max(photons // 20, 10_000), 1, fluence=True).run(engine)
        reference, seconds, schedule = None, {name: [] for name in engines}, []
        names = list(engines)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            schedule.append(order)
            for name in order:
                result = sim().run(engines[name])
                seconds[name].append(result.seconds)
                if reference is None:
                    reference = result
                elif not (np.array_equal(result.absorbed, reference.absorbed)
                          and np.array_equal(result.fluence, reference.fluence)
                          and np.array_equal(result.batch_scalars, reference.batch_scalars)):
                    raise SystemExit(f"{name}: tallies differ from the first run's: the cluster path is broken")
        launches = {name: len(sim().launches(c.default_batch, c.min_batch, 2**40)) for name, c in clusters.items()}
    rows = {}
    for name, values in seconds.items():
        rates = [photons / s / 1e3 for s in values]
        rows[name] = {"seconds": min(values), "rounds_seconds": values, "photons_per_ms": max(rates),
                      "photons_per_ms_median": float(np.median(rates)),
                      "spread": (max(rates) - min(rates)) / float(np.median(rates))}
    base, base_median = rows["no Dask"]["seconds"], float(np.median(seconds["no Dask"]))
    for name in clusters:
        rows[name]["overhead_vs_no_dask"] = rows[name]["seconds"] / base - 1
        rows[name]["overhead_vs_no_dask_median"] = float(np.median(seconds[name])) / base_median - 1
        rows[name]["startup_seconds"] = startup[name]
        rows[name]["launches"] = launches[name]
    return {"case": case, "photons": photons, "backend": backend, "rounds": rounds, "schedule": schedule,
            "engines": rows, "bit_identical": True}


def chunk_costs(voxels_per_side: tuple, backend: str) -> dict:
    """One chunk of a homogeneous tissue volume of the given shape: its tallies' pickled size,
    the worker-to-client transfer of that many bytes, and the client's merge."""
    from distributed import wait

    from photonqd.cluster import connect
    from photonqd.kernel_source import build_plan
    from photonqd.medium import Medium
    from photonqd.simulation import Simulation
    from photonqd.sources import PencilBeam
    from photonqd.backends import get_backend

    shape = tuple(voxels_per_side)
    labels = np.ones(shape, np.uint8)
    medium = Medium(labels, (0.1, 0.1, 0.1), [[0, 0, 0, 1], [0.01, 10.0, 0.9, 1.37]])
    centre = (shape[0] * 0.05, shape[1] * 0.05, 0.0)
    sim = Simulation(medium, PencilBeam(centre), photons=20_000, seed=3, fluence=True)
    sim.check()
    plan = build_plan(sim)
    be = get_backend(backend)
    t0 = time.perf_counter()
    chunk = sim.run_chunk(be.prepare(plan), plan, sim.launches(be.default_batch, be.min_batch, plan.max_launch_photons))
    transport = time.perf_counter() - t0
    size = len(pickle.dumps(chunk, protocol=5))
    merged = type(chunk.total)(plan.layout.size)
    t0 = time.perf_counter()
    for _ in range(3):
        merged.merge(chunk.total)
    merge = (time.perf_counter() - t0) / 3
    with connect(workers=1, backend="numpy") as client:
        future = client.submit(np.ones, size // 8, dtype=np.int64, pure=False)
        future.result()                                   # warm the connection
        moves = []
        for _ in range(3):
            future = client.submit(np.ones, size // 8, dtype=np.int64, pure=False)
            wait(future)
            t0 = time.perf_counter()
            future.result()
            moves.append(time.perf_counter() - t0)
    return {"shape": shape, "voxels": int(np.prod(shape)), "tally_entries": plan.layout.size,
            "chunk_bytes": size, "transfer_seconds_localhost": min(moves), "merge_seconds": merge,
            "transport_seconds_20000_photons": transport, "backend": backend}


def main(argv=None) -> int:
    from photonqd.bench import _provenance as provenance   # CPU model, clock, commit, devices

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--case", default="cube60")
    p.add_argument("--photons", type=float, default=2e6)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backend", default="opencl")
    p.add_argument("--volume", default="216,216,216", help="voxels per side of the chunk-cost phantom")
    p.add_argument("--save", metavar="DIR")
    args = p.parse_args(argv)
    report = provenance()
    report["filetype"] = "photonqd bench_cluster"
    report["throughput"] = throughput(args.case, int(args.photons), args.rounds, args.backend)
    report["chunk_costs"] = chunk_costs(tuple(int(v) for v in args.volume.split(",")), args.backend)
    t = report["throughput"]
    print(f"{t['case']}, {t['photons']:.3g} photons, {t['backend']}, best of {t['rounds']} interleaved rounds "
          f"({report['cpu']['model']}, commit {str(report['git_commit'])[:10]}):")
    for name, row in t["engines"].items():
        extra = (f", overhead {row['overhead_vs_no_dask']:+.1%} (medians {row['overhead_vs_no_dask_median']:+.1%}), "
                 f"startup {row['startup_seconds']:.1f} s"
                 if "overhead_vs_no_dask" in row else "")
        print(f"  {name:8s} {row['photons_per_ms']:8.1f} photons/ms (median {row['photons_per_ms_median']:.1f}, "
              f"spread {row['spread']:.1%}){extra}")
    c = report["chunk_costs"]
    print(f"chunk of a {c['voxels']:.3g}-voxel phantom: {c['chunk_bytes'] / 1e6:.1f} MB, moved in "
          f"{c['transfer_seconds_localhost']:.3f} s (localhost), merged in {c['merge_seconds']:.3f} s")
    if args.save:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = Path(args.save) / f"{stamp}-cluster-{str(report['git_commit'])[:10]}.json"
        path.write_text(json.dumps(report, indent=1, default=float))
        print(f"saved {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
