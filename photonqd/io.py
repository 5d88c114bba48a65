"""Study results in one HDF5 file (h5py), written atomically, read back with checks.

Layout (docs/results.md describes every field):

  /                       attrs: filetype = "photonqd-study", version = 2, photonqd_version,
                                 git_commit, backend, device, cluster (JSON: the Dask scheduler
                                 and every worker's host, process and device of the session that
                                 last wrote the file; "" without one), created (UTC ISO 8601), seed,
                                 photons, emission_photons, max_emission_photons, criterion,
                                 threshold, method ("adjoint" or "forward"), adjoint_photons,
                                 max_adjoint_photons, correction, correction_photons, z (the
                                 decision's margin in standard errors), clutter
  /config                 attrs: toml (the configuration text, verbatim), effective_toml (the
                          configuration as it ran: overrides applied, defaults written out)
  /provenance             attrs: json (optics sources, extrapolated quantities, typical values, notes;
                          for the adjoint method the photons and seconds of every field run)
  /summary/<probe>        attrs: depth_limit_mm, depth_limit_low_mm, depth_limit_high_mm (the
                          interval at z standard errors), depth_limit_status
                          (crossing / beyond / shallower / unresolved), max_depth_mm (the limit's
                          estimate; NaN when unresolved)
  /images/<k>             one per depth and probe, attrs: complete (False while being written),
                          depth_mm, probe, seconds, signal_rel_error, background_annulus_mm (the
                          background region's inner and outer radius, mm), exposure_s,
                          saturated_pixels, emission_photons (forward:
                          emission photons; adjoint: the QD's adjoint photons), and every metric
                          of photonqd.metrics with its unit as attribute "<metric>_unit" and its
                          Monte Carlo standard error as "<metric>_error" (adjoint), plus
                          error_budget_json (each field run's share of the criterion's error);
                          datasets signal_e, background_e (electrons per binned pixel),
                          signal_per_photon, background_per_photon (photoelectrons per excitation
                          photon per unbinned pixel), each with a "unit" attribute.
  /verify                 attrs: json (``study --verify``: adjoint and forward region means with
                          errors and z per probe, depth and quantity)
  /sensitivity            attrs: json (``study --sensitivity``: per factor and end of its range,
                          each probe's depth limit; photonqd.sensitivity)

Version 1 files (before the adjoint method; forward studies) and version 2 files (before clutter
and non-specific uptake: read with clutter 0 and no uptake outside the target, as they ran) are
read as well.

The first depth creates the file atomically (a temporary name in the same folder, renamed over the
target); each later depth is appended: its image groups are written with complete = False, flushed,
then flagged complete, so saving costs the same at every depth and a reader ignores a depth that
was being written when the run stopped. Ctrl-C is held back while a depth is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from . import __version__
from .metrics import UNITS, TargetMetrics
from .study import ConfigError, ProbeImage, StudyResult, parse_config
from .study.config import BackgroundSettings

FILETYPE = "photonqd-study"
VERSION = 3
#: Versions this photonqd reads (1: before the adjoint method, its studies forward; 2: before
#: clutter and non-specific uptake).
READABLE = (1, 2, 3)
#: Temporary files of an interrupted first save older than this (s) are removed.
STALE_TMP_SECONDS = 60.0
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
    """Write ``result`` to ``path`` atomically (replacing it). run_info: backend, device."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with _interrupt_deferred():
            with h5py.File(tmp, "w") as f:
                _write(f, result, run_info)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a results file is shared like any other
            os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_depth(result: StudyResult, path, depth_mm: float, run_info: dict | None = None) -> None:
    """Add the images of ``depth_mm`` (from ``result``) to an existing file written by ``save``,
    replacing any earlier images of that depth, and update the summary and provenance (and the
    cluster that ran this depth, from ``run_info``)."""
    images = [img for img in result.images if img.depth_mm == depth_mm]
    with _interrupt_deferred(), h5py.File(path, "r+") as f:
        if run_info is not None:
            f.attrs["cluster"] = run_info.get("cluster", "")
        group = f["images"]
        for key in [k for k in group if float(group[k].attrs["depth_mm"]) == depth_mm]:
            del group[key]
        start = 1 + max((int(k) for k in group), default=-1)
        written = [_write_image(group, f"{start + i:04d}", img) for i, img in enumerate(images)]
        f.flush()
        for g in written:
            g.attrs["complete"] = True
        _write_summary(f, result)
        f.flush()


class StudyFile:
    """The results file of one study: opening it creates nothing yet, or resumes it -- refusing a
    file that holds another study (configuration or photon counts) or was written by other code
    or another device (one file never mixes them) -- and each completed depth is saved as it
    comes (``save_depth`` as run_study's on_depth)."""

    def __init__(self, path, config, run_info: dict):
        self.path, self.config, self.run_info = Path(path), config, dict(run_info)
        if self.path.is_dir():
            raise ValueError(f"-o {self.path}: is a folder; give a file name such as {self.path / 'results.h5'}")
        remove_stale_temporaries(self.path)
        self.done = None
        if self.path.exists():
            done, info = load(self.path)
            if done.config.to_toml() != config.to_toml():
                raise ValueError(f"{self.path}: holds a different study; choose another -o path or delete it")
            for key, now in (("backend", self.run_info.get("backend", "")), ("device", self.run_info.get("device", "")),
                             ("photonqd_version", __version__), ("git_commit", git_commit())):
                if info.get(key, "") != now:
                    raise ValueError(f"{self.path}: was written with {key} {info.get(key)!r}, this run has "
                                     f"{now!r}; resuming would mix results; choose another -o path or delete it")
            self.done = done

    @property
    def completed_depths(self) -> list:
        return self.done.completed_depths() if self.done else []

    def save_depth(self, result: StudyResult) -> float:
        """Save the depth run_study just completed (the last image's); returns it."""
        depth = result.images[-1].depth_mm
        if self.path.exists():
            append_depth(result, self.path, depth, self.run_info)
        else:
            save(result, self.path, self.run_info)
        return depth

    def save_verification(self, rows) -> None:
        save_verification(self.path, rows)


def save_verification(path, rows) -> None:
    """Store --verify's comparisons (photonqd.verify.Comparison) in /verify of a results file."""
    with _interrupt_deferred(), h5py.File(path, "r+") as f:
        g = f.require_group("verify")
        g.attrs["json"] = json.dumps([r.as_dict() for r in rows], sort_keys=True)
        g.attrs["about"] = ("adjoint - forward region means (electrons per binned pixel) with their standard "
                            "errors and z = difference / combined error, per probe, depth and quantity")
        f.flush()


def save_sensitivity(path, records: list[dict]) -> None:
    """Store --sensitivity's variants (photonqd.sensitivity.Variant.as_dict) in /sensitivity."""
    with _interrupt_deferred(), h5py.File(path, "r+") as f:
        g = f.require_group("sensitivity")
        g.attrs["json"] = json.dumps(records, sort_keys=True)
        g.attrs["about"] = ("each probe's depth limit (mm, photonqd.decision.DepthLimit) with one factor at the low "
                            "or high end of its range, all else as studied (photonqd.sensitivity.FACTORS)")
        f.flush()


def load_sensitivity(path) -> list[dict]:
    """The variants save_sensitivity stored ([] when the file holds none)."""
    with h5py.File(path, "r") as f:
        return json.loads(f["sensitivity"].attrs["json"]) if "sensitivity" in f else []


def load_verification(path) -> list[dict]:
    """The comparisons save_verification stored ([] when the file holds none)."""
    with h5py.File(path, "r") as f:
        return json.loads(f["verify"].attrs["json"]) if "verify" in f else []


def remove_stale_temporaries(path) -> list[Path]:
    """Remove ``.NAME.*.tmp`` files beside ``path`` left by a save that was killed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass  # another process's file that vanished meanwhile, or not ours to remove
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _interrupt_deferred():
    """Hold a Ctrl-C back until the block is done, so that a write is never cut in half."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _write(f: h5py.File, result: StudyResult, run_info: dict) -> None:
    cfg = result.config
    f.attrs.update(filetype=FILETYPE, version=VERSION, photonqd_version=__version__,
                   git_commit=git_commit(), backend=run_info.get("backend", ""),
                   device=run_info.get("device", ""), cluster=run_info.get("cluster", ""),
                   created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                   seed=cfg.seed, photons=cfg.photons, emission_photons=cfg.emission_photons,
                   max_emission_photons=cfg.max_emission_photons,
                   criterion=cfg.criterion, threshold=cfg.threshold, method=cfg.method,
                   adjoint_photons=cfg.adjoint_photons, max_adjoint_photons=cfg.max_adjoint_photons,
                   correction=cfg.correction, correction_photons=cfg.correction_photons, z=cfg.z,
                   clutter=cfg.background.clutter)
    config = f.create_group("config")
    config.attrs["toml"] = cfg.text
    config.attrs["effective_toml"] = cfg.to_toml()
    images = f.create_group("images")
    for k, img in enumerate(result.images):
        _write_image(images, f"{k:04d}", img).attrs["complete"] = True
    _write_summary(f, result)
    if result.multiplex is not None:
        _write_multiplex(f, result.multiplex)


def _write_summary(f: h5py.File, result: StudyResult) -> None:
    """Provenance and per-probe summary (small; rewritten whenever a depth is added)."""
    f.require_group("provenance").attrs["json"] = json.dumps(result.provenance, sort_keys=True)
    summary = f.require_group("summary")
    for probe in result.config.probes:
        limit = result.depth_limit(probe.name)
        summary.require_group(probe.name).attrs.update(
            max_depth_mm=result.max_depth(probe.name), depth_limit_mm=limit.estimate,
            depth_limit_low_mm=limit.low, depth_limit_high_mm=limit.high, depth_limit_status=limit.status)


def _write_image(images: h5py.Group, key: str, img: ProbeImage) -> h5py.Group:
    g = images.create_group(key)
    g.attrs["complete"] = False
    g.attrs.update(depth_mm=img.depth_mm, probe=img.probe, seconds=img.seconds,
                   signal_rel_error=img.signal_rel_error, emission_photons=img.emission_photons,
                   background_annulus_mm=np.asarray(img.background_annulus_mm, dtype=np.float64),
                   exposure_s=img.exposure_s, saturated_pixels=img.saturated_pixels)
    for name, value in img.metrics.as_dict().items():
        g.attrs[name] = value
        g.attrs[f"{name}_unit"] = UNITS[name]
        if name in img.errors:
            g.attrs[f"{name}_error"] = img.errors[name]
    if img.error_budget:
        g.attrs["error_budget_json"] = json.dumps(img.error_budget, sort_keys=True)
    for name, unit in IMAGE_UNITS.items():
        d = g.create_dataset(name, data=getattr(img, name), compression="gzip")
        d.attrs["unit"] = unit
    return g


def load(path) -> tuple[StudyResult, dict]:
    """Read a study file; returns (result, run information: backend, device, git_commit, ...).
    Image groups not flagged complete (a depth being written when the run stopped) are skipped.
    Anything unreadable is a ValueError naming the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such results file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a results file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 results file ({err})") from None
    with f:
        if f.attrs.get("filetype") != FILETYPE:
            raise ValueError(f"{path}: not a photonqd study file (filetype {f.attrs.get('filetype')!r})")
        try:
            return _read(f, path)
        except ConfigError as err:
            raise ValueError(f"{path}: its stored /config is not valid: {err}") from None
        except (KeyError, TypeError, ValueError, OSError) as err:
            raise ValueError(f"{path}: damaged or incomplete results file: {err}") from None


def _attr(attrs, name: str, kind, where: str = "/"):
    """One attribute converted by ``kind``, or a ValueError naming it."""
    if name not in attrs:
        raise ValueError(f"attribute {where}{name} is missing")
    value = attrs[name]
    value = value.item() if hasattr(value, "item") else value
    try:
        out = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"attribute {where}{name} = {value!r} is not a valid {kind.__name__}") from None
    return out


def _read(f: h5py.File, path: Path) -> tuple[StudyResult, dict]:
    version = _attr(f.attrs, "version", int)
    if version not in READABLE:
        raise ValueError(f"file version {version} is not supported (this photonqd reads versions {READABLE})")
    info = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    text = _attr(f["config"].attrs, "toml", str, "/config.")
    if "effective_toml" in f["config"].attrs:      # version 2: the configuration as it ran
        # self-contained but for a label volume's file, which showing results does not need
        config = parse_config(_attr(f["config"].attrs, "effective_toml", str, "/config."), read_files=False)
        config.text = text
    else:                                          # version 1: the TOML before --photons, counts in /
        config = parse_config(text)
        config.method = "forward"
        config.seed, config.photons = _attr(f.attrs, "seed", int), _attr(f.attrs, "photons", int)
        config.emission_photons = _attr(f.attrs, "emission_photons", int)
        config.max_emission_photons = _attr(f.attrs, "max_emission_photons", int)
    if version < 3:                                # before clutter and non-specific uptake existed
        config.background = BackgroundSettings(clutter=0.0)
        config.probes = [dataclasses.replace(p, target_to_background=math.inf) for p in config.probes]
    result = StudyResult(config, provenance=json.loads(_attr(f["provenance"].attrs, "json", str, "/provenance.")))
    for key in sorted(f["images"], key=int):
        g = f["images"][key]
        if not bool(g.attrs.get("complete", True)):
            continue
        where = f"/images/{key}."
        metrics = TargetMetrics(**{name: _attr(g.attrs, name, float, where) for name in UNITS
                                   if name in g.attrs or version == VERSION})
        errors = {name: _attr(g.attrs, f"{name}_error", float, where) for name in UNITS
                  if f"{name}_error" in g.attrs}
        budget = json.loads(_attr(g.attrs, "error_budget_json", str, where)) if "error_budget_json" in g.attrs else {}
        result.images.append(ProbeImage(
            depth_mm=_attr(g.attrs, "depth_mm", float, where), probe=_attr(g.attrs, "probe", str, where),
            metrics=metrics, signal_rel_error=_attr(g.attrs, "signal_rel_error", float, where),
            seconds=_attr(g.attrs, "seconds", float, where),
            emission_photons=_attr(g.attrs, "emission_photons", int, where), errors=errors, error_budget=budget,
            background_annulus_mm=tuple(float(v) for v in g.attrs.get("background_annulus_mm", (math.nan, math.nan))),
            exposure_s=float(g.attrs.get("exposure_s", math.nan)),
            saturated_pixels=int(g.attrs.get("saturated_pixels", 0)),
            **{name: g[name][()] for name in IMAGE_UNITS}))
    if "multiplex" in f:
        result.multiplex = _read_multiplex(f["multiplex"], config)
    return result, info


#: The arrays of a multiplexed study's /multiplex group (photonqd.multiplex.MultiplexDepth, per depth).
MULTIPLEX_ARRAYS = {"signal_e": "(depth, channel, species) contrast, electrons per binned pixel",
                    "noise_e": "(depth, channel) noise of a background pixel, electrons",
                    "background_e": "(depth, channel) background over the target region, electrons",
                    "exposure_s": "(depth, channel) s", "covariance": "(depth, species, species) of the abundances",
                    "cnr": "(depth, species) unmixed CNR", "cnr_error": "(depth, species) its standard error",
                    "separable": "(depth, species) bool", "crosstalk": "(depth, channel, species) fraction",
                    "crosstalk_error": "(depth, channel, species)", "condition_number": "(depth,)",
                    "condition_number_error": "(depth,)"}


def _write_multiplex(f: h5py.File, mux) -> None:
    g = f.create_group("multiplex")
    g["depth_mm"] = np.array([d.depth_mm for d in mux.depths])
    for name, about in MULTIPLEX_ARRAYS.items():
        g[name] = np.array([getattr(d, name) for d in mux.depths])
        g[name].attrs["about"] = about
    g.attrs.update(species_json=json.dumps(list(mux.species)),
                   channels_json=json.dumps([dataclasses.asdict(c) for c in mux.channels]),
                   reasons_json=json.dumps([list(d.reason) for d in mux.depths]),
                   threshold=mux.threshold, z=mux.z, crosstalk_depth_mm=mux.crosstalk_depth_mm)
    for species in mux.species:
        limit = mux.separable_depth(species)
        g.require_group(f"separable_depth/{species}").attrs.update(
            estimate_mm=limit.estimate, low_mm=limit.low, high_mm=limit.high, status=limit.status)


def _read_multiplex(g: h5py.Group, config):
    from .multiplex import MultiplexDepth, MultiplexResult

    arrays = {name: g[name][()] for name in MULTIPLEX_ARRAYS}
    reasons = json.loads(_attr(g.attrs, "reasons_json", str, "/multiplex."))
    out = MultiplexResult(tuple(json.loads(_attr(g.attrs, "species_json", str, "/multiplex."))),
                          config.multiplex.channels, threshold=_attr(g.attrs, "threshold", float, "/multiplex."),
                          z=_attr(g.attrs, "z", float, "/multiplex."),
                          crosstalk_depth_mm=_attr(g.attrs, "crosstalk_depth_mm", float, "/multiplex."))
    for k, depth in enumerate(g["depth_mm"][()]):
        values = {name: a[k] for name, a in arrays.items()}
        values["separable"] = values["separable"].astype(bool)
        for name in ("condition_number", "condition_number_error"):
            values[name] = float(values[name])
        out.depths.append(MultiplexDepth(depth_mm=float(depth), reason=tuple(reasons[k]), **values))
    return out
