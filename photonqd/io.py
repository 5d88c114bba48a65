"""Study results in one HDF5 file (h5py), written atomically, read back with checks.

Layout (docs/results.md describes every field):

  /                       attrs: filetype = "photonqd-study", version = 1, photonqd_version,
                                 git_commit, backend, device, created (UTC ISO 8601), seed,
                                 photons, emission_photons, max_emission_photons, criterion,
                                 threshold
  /config                 attrs: toml (the configuration text, verbatim)
  /provenance             attrs: json (optics sources, extrapolated quantities, typical values, notes)
  /summary/<probe>        attrs: max_depth_mm (deepest depth detectable at every shallower one)
  /images/<k>             one per depth and probe, attrs: depth_mm, probe, seconds,
                          signal_rel_error, emission_photons, and every metric of photonqd.metrics with its unit
                          as attribute "<metric>_unit";
                          datasets signal_e, background_e (electrons per binned pixel),
                          signal_per_photon, background_per_photon (photoelectrons per excitation
                          photon per unbinned pixel), each with a "unit" attribute.

A file is written to a temporary name in the same folder and renamed over the target, so a reader
never sees a half-written file and an interrupted run keeps the last complete one.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import tempfile
from pathlib import Path

import h5py

from . import __version__
from .metrics import UNITS, TargetMetrics
from .study import ProbeImage, StudyResult, parse_config

FILETYPE = "photonqd-study"
VERSION = 1
IMAGE_UNITS = {"signal_e": "electrons per binned pixel", "background_e": "electrons per binned pixel",
               "signal_per_photon": "photoelectrons per excitation photon per pixel",
               "background_per_photon": "photoelectrons per excitation photon per pixel"}


def git_commit() -> str:
    """The commit of the photonqd checkout in use, or "" when not in a git work tree."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def save(result: StudyResult, path, run_info: dict) -> None:
    """Write ``result`` to ``path`` atomically. run_info: backend, device."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            _write(f, result, run_info)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(f: h5py.File, result: StudyResult, run_info: dict) -> None:
    cfg = result.config
    f.attrs.update(filetype=FILETYPE, version=VERSION, photonqd_version=__version__,
                   git_commit=git_commit(), backend=run_info.get("backend", ""),
                   device=run_info.get("device", ""),
                   created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   seed=cfg.seed, photons=cfg.photons, emission_photons=cfg.emission_photons,
                   max_emission_photons=cfg.max_emission_photons,
                   criterion=cfg.criterion, threshold=cfg.threshold)
    f.create_group("config").attrs["toml"] = cfg.text
    f.create_group("provenance").attrs["json"] = json.dumps(result.provenance, sort_keys=True)
    summary = f.create_group("summary")
    for probe in cfg.probes:
        summary.create_group(probe.name).attrs["max_depth_mm"] = result.max_depth(probe.name)
    images = f.create_group("images")
    for k, img in enumerate(result.images):
        g = images.create_group(f"{k:04d}")
        g.attrs.update(depth_mm=img.depth_mm, probe=img.probe, seconds=img.seconds,
                       signal_rel_error=img.signal_rel_error, emission_photons=img.emission_photons)
        for name, value in img.metrics.as_dict().items():
            g.attrs[name] = value
            g.attrs[f"{name}_unit"] = UNITS[name]
        for name, unit in IMAGE_UNITS.items():
            d = g.create_dataset(name, data=getattr(img, name), compression="gzip")
            d.attrs["unit"] = unit


def load(path) -> tuple[StudyResult, dict]:
    """Read a study file; returns (result, run information: backend, device, git_commit, ...)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results file")
    with h5py.File(path, "r") as f:
        if f.attrs.get("filetype") != FILETYPE:
            raise ValueError(f"{path}: not a photonqd study file (filetype {f.attrs.get('filetype')!r})")
        if int(f.attrs.get("version", -1)) != VERSION:
            raise ValueError(f"{path}: file version {f.attrs.get('version')} is not supported "
                             f"(this photonqd reads version {VERSION})")
        info = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
        config = parse_config(f["config"].attrs["toml"])
        config.seed, config.photons = int(info["seed"]), int(info["photons"])
        config.emission_photons = int(info["emission_photons"])
        config.max_emission_photons = int(info["max_emission_photons"])
        result = StudyResult(config, provenance=json.loads(f["provenance"].attrs["json"]))
        for key in sorted(f["images"]):
            g = f["images"][key]
            metrics = TargetMetrics(**{name: float(g.attrs[name]) for name in UNITS})
            result.images.append(ProbeImage(
                depth_mm=float(g.attrs["depth_mm"]), probe=str(g.attrs["probe"]),
                metrics=metrics, signal_rel_error=float(g.attrs["signal_rel_error"]),
                seconds=float(g.attrs["seconds"]), emission_photons=int(g.attrs["emission_photons"]),
                **{name: g[name][()] for name in IMAGE_UNITS}))
    return result, info
