"""Run MCX-CL (pmcxcl) on a photonqd benchmark phantom and print one JSON line with its speed.

A benchmark peer for `photonqd bench`, which runs this script in its own process: pmcxcl is GPL
software and is never imported by the photonqd package. The phantom comes from photonqd.phantom,
so both engines see the same voxels, optics, source and time gate.

    python benchmarks/bench_mcxcl.py --probe
    python benchmarks/bench_mcxcl.py cube60 --photons 1000000 --seed 1648335518

On Debian's PoCL, run it with LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libstdc++.so.6 (without it the
kernel build inside pmcxcl fails); `photonqd bench` sets that for you.

Speeds: ``photons_per_ms`` is photons / wall-clock seconds of pmcxcl.run after a warm-up run of the
same case, the fastest of ``--repeat`` runs (the definition photonqd bench uses for itself); ``photons_per_ms_kernel`` is MCX's own
figure (kernel time only). The absorbed fraction is integrated from the fluence-rate volume,
sum(flux * mu_a * dt * voxel volume), over the single 0..gate time window; MCX's own "absorbed"
figure is reported alongside as ``absorbed_fraction_mcx``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np

SECONDS_PER_NS = 1e-9


def mcx_input(phantom, photons: int, seed: int) -> dict:
    """pmcxcl's input for a photonqd.phantom Benchmark (MCX units: voxels, 1/mm, seconds)."""
    medium, source = phantom.medium, phantom.source
    dx, dy, dz = medium.voxel_size
    if not dx == dy == dz:
        raise ValueError("MCX needs cubic voxels")
    optics = medium.optics[0]
    labels = np.unique(medium.labels)
    # MCX reflects at every index step or at none (isreflect); photonqd's equivalent of "none"
    # is an ambient index equal to every tissue index
    reflect = bool(np.any(optics[labels[labels > 0], 3] != medium.n_ambient))
    prop = optics.copy()
    prop[0] = (0.0, 0.0, 1.0, medium.n_ambient)
    gate = phantom.time_gate_ns * SECONDS_PER_NS
    cfg = {
        "nphoton": int(photons), "seed": int(seed),
        "vol": medium.labels.astype(np.uint8), "prop": prop, "unitinmm": dx,
        "tstart": 0.0, "tend": gate, "tstep": gate,
        "isreflect": int(reflect), "isspecular": int(source.specular),
        "issrcfrom0": 1,  # source coordinates measured from the volume's corner, as in photonqd
        "srcpos": [float(v) for v in source.position / dx],
        "srcdir": [float(v) for v in source.direction],
    }
    if source.kind == "rectangle":
        cfg["srctype"] = "planar"
        cfg["srcparam1"] = [*(float(v) for v in source.edge1 / dx), 0.0]
        cfg["srcparam2"] = [*(float(v) for v in source.edge2 / dx), 0.0]
    elif source.kind != "pencil":
        raise ValueError(f"no MCX translation for a {source.kind} source")
    return cfg


def absorbed_from_flux(result: dict, cfg: dict) -> float:
    """Absorbed fraction: fluence rate x mu_a x time step x voxel volume, summed over the volume."""
    flux = np.asarray(result["flux"], dtype=np.float64)[..., 0]   # one time gate
    mua = np.asarray(cfg["prop"])[:, 0]
    return float(np.sum(flux * mua[cfg["vol"]]) * cfg["tstep"] * cfg["unitinmm"] ** 3)


@contextlib.contextmanager
def mcx_chatter_to_stderr():
    """MCX prints its banner and log from C on file descriptor 1; keep stdout for our JSON."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def device_name(pmcxcl) -> str:
    with mcx_chatter_to_stderr():
        devices = pmcxcl.gpuinfo()
    return devices[0]["name"].strip() if devices else "unknown"


def run_case(pmcxcl, name: str, photons: int, seed: int, warmup: int, repeat: int) -> dict:
    """Warm up, then time ``repeat`` runs and keep the fastest (all give the same result)."""
    from photonqd.phantom import BENCHMARKS

    phantom = BENCHMARKS[name]()
    cfg = mcx_input(phantom, photons, seed)
    with mcx_chatter_to_stderr():
        pmcxcl.run(mcx_input(phantom, warmup, seed))   # builds the kernel, fills PoCL's caches
        seconds = math.inf
        for _ in range(repeat):
            start = time.perf_counter()
            run = pmcxcl.run(cfg)
            elapsed = time.perf_counter() - start
            if elapsed < seconds:
                seconds, result = elapsed, run
    stat = result["stat"]
    return {
        "case": name, "engine": "pmcxcl", "version": pmcxcl.__version__, "backend": "opencl",
        "device": device_name(pmcxcl), "photons": photons, "seconds": seconds,
        "photons_per_ms": photons / (seconds * 1e3),
        "photons_per_ms_kernel": photons / stat["runtime"],
        "interactions_per_s": None,   # MCX does not count scattering events
        "absorbed_fraction": absorbed_from_flux(result, cfg),
        "absorbed_fraction_mcx": stat["energyabs"] / stat["energytot"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", help="a photonqd.phantom.BENCHMARKS name (MCX's cases and tissue60)")
    parser.add_argument("--photons", type=float, default=1e6)
    parser.add_argument("--seed", type=int, default=1648335518)
    parser.add_argument("--warmup", type=float, default=1e4, help="photons in the untimed warm-up run")
    parser.add_argument("--repeat", type=int, default=1, help="timed runs; the fastest counts")
    parser.add_argument("--probe", action="store_true", help="print pmcxcl's version and device, then exit")
    args = parser.parse_args(argv)

    with mcx_chatter_to_stderr():   # pmcxcl prints a hint about pmcx on import
        import pmcxcl

    if args.probe:
        report = {"engine": "pmcxcl", "version": pmcxcl.__version__, "device": device_name(pmcxcl)}
    elif args.case:
        photons = int(args.photons)
        report = run_case(pmcxcl, args.case, photons, args.seed, max(1, min(int(args.warmup), photons)),
                          max(1, args.repeat))
    else:
        parser.error("name a case or pass --probe")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
