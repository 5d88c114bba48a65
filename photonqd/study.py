"""Depth studies: how deep does a QD-labelled target stay detectable, per probe?

A study runs a phantom generator at each target depth. Per depth, one excitation run (tissue only)
serves every probe (QD + detection window + camera): each probe's QD is excited through the stored
fluence (first order: the QD's own absorption does not attenuate the excitation light, accurate
while mu_a,QD x target size << 1; the provenance notes it). Per depth and probe the result holds
the signal and background images and the target metrics (photonqd.metrics); per probe, the deepest
depth at which the criterion (default CNR >= 3) still holds.

Configuration is TOML (see photonqd/data/default_study.toml, the default study); every key is
validated before anything runs, with errors naming the key and the allowed values.
"""

from __future__ import annotations

import importlib.resources
import inspect
import json
import math
import os
import time
import tomllib
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import phantom as phantoms
from .camera import Camera, EmissionFilter, sensor_names, sensor_preset
from .decision import DETECTABLE, DepthLimit, depth_limit, verdict
from .fluorescence import MIN_BAND_FRACTION, Excitation, emitter_key
from .medium import MAX_VOXELS
from .metrics import TargetMetrics, regions, target_metrics
from .optics import qd_preset, qd_preset_names
from .sources import DiskSource
from .tallies import batch_mean_error

#: Phantom generators a study can use: each takes depth_mm and returns a photonqd.scene.Scene.
SCENES = {f.__name__: f for f in (phantoms.skin_tumour, phantoms.intralipid_capillary,
                                   phantoms.mouse_head, phantoms.lymph_node)}
CRITERIA = ("cnr", "snr", "sbr", "contrast")
METHODS = ("adjoint", "forward")
#: Most depths one study may hold (each is a row of the results file and minutes of transport).
MAX_DEPTHS = 400
#: Rough peak memory of one depth per voxel (bytes): the generator's float64 temporaries, labels,
#: optics, concentration, int64 tallies (absorbed, fluence, species) and their float64 copies.
BYTES_PER_VOXEL = 64
#: A depth counts as detectable only where Monte Carlo resolved the target's signal this well.
MAX_MC_ERROR = 0.3


class ConfigError(ValueError):
    """A configuration key is missing, unknown or out of range."""


def default_config_text() -> str:
    return importlib.resources.files("photonqd").joinpath("data/default_study.toml").read_text()


# --- configuration -------------------------------------------------------------------------------
def _check_number(value, where: str, lo: float, hi: float, integer=False):
    if value is None:
        raise ConfigError(f"{where}: missing (a number in [{lo}, {hi}])")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (integer and not (isinstance(value, int) or (math.isfinite(value) and value.is_integer()))):
        raise ConfigError(f"{where}: expected {'an integer' if integer else 'a number'} in [{lo}, {hi}], "
                          f"got {value!r}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{where}: {value!r} is outside the allowed range [{lo}, {hi}]")
    return int(value) if integer else float(value)


def _number(cfg: dict, section: str, key: str, lo: float, hi: float, default=None, integer=False):
    return _check_number(cfg.get(key, default), f"{section}.{key}", lo, hi, integer)


def _pair(cfg: dict, section: str, key: str, lo: float, hi: float, default=None) -> tuple[float, float]:
    value = cfg.get(key, default)
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError(f"{section}.{key}: expected two numbers [low, high] in [{lo}, {hi}], got {value!r}")
    a, b = (_check_number(v, f"{section}.{key}", lo, hi) for v in value)
    if not a < b:
        raise ConfigError(f"{section}.{key}: low must be below high, got {value!r}")
    return a, b


def _choice(cfg: dict, section: str, key: str, allowed, default=None) -> str:
    value = cfg.get(key, default)
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{section}.{key}: {value!r} is not one of {sorted(allowed)}")
    return value


def _depth_list(value) -> list:
    """study.depths_mm: a list of depths, or {from, to, step} for an evenly spaced range (both
    ends included)."""
    if isinstance(value, dict):
        _unknown(value, "study.depths_mm", ("from", "to", "step"))
        lo = _number(value, "study.depths_mm", "from", 0.01, 1000.0)
        hi = _number(value, "study.depths_mm", "to", lo, 1000.0)
        step = _number(value, "study.depths_mm", "step", 1e-3, 1000.0)
        count = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if count > MAX_DEPTHS:
            raise ConfigError(f"study.depths_mm: {count} depths; at most {MAX_DEPTHS} per study "
                              "(use a larger step)")
        return [round(lo + i * step, 9) for i in range(count)]
    if not isinstance(value, list) or not value:
        raise ConfigError("study.depths_mm: expected a non-empty list of depths in mm, or "
                          "{from = ..., to = ..., step = ...}")
    return value


def _section(raw: dict, name: str) -> dict:
    """A table of the configuration ({} when absent)."""
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{name}: expected a table [{name}], got {value!r}")
    return value


def _unknown(cfg: dict, section: str, known) -> None:
    extra = set(cfg) - set(known)
    if extra:
        raise ConfigError(f"{section}: unknown key(s) {sorted(extra)}; allowed: {sorted(known)}")


#: Options of a phantom generator the study sets itself.
STUDY_SET = {"depth_mm": "set by study.depths_mm", "quantum_dot": "set by each [[probe]]",
             "concentration_uM": "set by each [[probe]]"}
#: Options that may be one number for all three axes.
PER_AXIS = ("size_mm", "voxel_size")


def _phantom_options(name: str, options: dict) -> dict:
    """The [phantom] table checked against the generator's signature: every option has the type
    of its default, and the grid it makes fits in memory, before the generator allocates it."""
    defaults = {k: p.default for k, p in inspect.signature(SCENES[name]).parameters.items()}
    for key in options:
        if key in STUDY_SET:
            raise ConfigError(f"phantom.{key}: {STUDY_SET[key]}")
    _unknown(options, "phantom", [k for k in defaults if k not in STUDY_SET])
    out = {key: _phantom_value(f"phantom.{key}", value, defaults[key], key in PER_AXIS)
           for key, value in options.items()}
    size = np.broadcast_to(np.asarray(out.get("size_mm", defaults["size_mm"]), dtype=np.float64), (3,))
    voxel = np.broadcast_to(np.asarray(out.get("voxel_size", defaults["voxel_size"]), dtype=np.float64), (3,))
    if np.any(size <= 0) or np.any(voxel <= 0):
        raise ConfigError(f"phantom.size_mm, phantom.voxel_size: must be > 0 mm, got {size.tolist()}, "
                          f"{voxel.tolist()}")
    voxels = float(np.prod(size / voxel))
    need, have = voxels * BYTES_PER_VOXEL, _physical_memory()
    if voxels > MAX_VOXELS or need > have / 2:
        raise ConfigError(f"phantom.voxel_size: {voxel.tolist()} mm voxels over a {size.tolist()} mm box make "
                          f"{voxels:.3g} voxels, about {need / 2**30:.3g} GiB per depth; allowed: at most "
                          f"{MAX_VOXELS} voxels and half of this machine's {have / 2**30:.3g} GiB: use a "
                          "coarser voxel_size or a smaller size_mm")
    return out


def _phantom_value(where: str, value, default, per_axis: bool):
    """``value`` in the shape of ``default``: a number, a list of numbers, a name, or the layers
    list of [tissue name, thickness mm] pairs."""
    def number(v, at=where):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ConfigError(f"{at}: expected a finite number, got {v!r}")
        return float(v)

    if isinstance(default, bool) or default is None:
        raise ConfigError(f"{where}: cannot be set from a configuration file")
    if isinstance(default, (int, float)):
        return number(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a name (string), got {value!r}")
        return value
    if default and all(isinstance(d, (tuple, list)) for d in default):  # layers
        if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                                                  for v in value):
            raise ConfigError(f"{where}: expected a list of [tissue name, thickness mm] pairs, got {value!r}")
        return tuple((t, number(d, f"{where} ({t!r} thickness)")) for t, d in value)
    if per_axis and not isinstance(value, list):
        return number(value)
    if not isinstance(value, list) or len(value) != len(default):
        raise ConfigError(f"{where}: expected {len(default)} numbers"
                          f"{' (or one for all axes)' if per_axis else ''}, got {value!r}")
    return tuple(number(v) for v in value)


def _physical_memory() -> float:
    """Bytes of RAM of this machine (16 GiB if the system does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 16.0 * 2**30


def _check_camera_fits(camera: dict, name: str, options: dict) -> None:
    """The field of view lies on the phantom's top face and both image regions hold pixels."""
    defaults = {k: p.default for k, p in inspect.signature(SCENES[name]).parameters.items()}
    size = np.broadcast_to(np.asarray(options.get("size_mm", defaults["size_mm"]), dtype=np.float64), (3,))
    fov = camera["field_of_view_mm"]
    if fov > min(size[0], size[1]) * (1 + 1e-9):
        raise ConfigError(f"camera.field_of_view_mm: {fov:g} mm is wider than the phantom's "
                          f"{size[0]:g} x {size[1]:g} mm top face")
    n = camera["pixels"]
    centres = (np.arange(n) + 0.5) * fov / n - fov / 2
    r = np.hypot(centres[:, None], centres[None, :])
    inner, outer = camera["background_annulus_mm"]
    if camera["target_radius_mm"] > inner:
        raise ConfigError("camera.target_radius_mm: must not exceed the background annulus' inner radius")
    if not np.any((r >= inner) & (r <= outer)):
        raise ConfigError(f"camera.background_annulus_mm: no pixel of the {n} x {n} pixel, {fov:g} mm field "
                          "of view lies in it; use more pixels or a wider annulus")


def _check_optics_available(tissues: dict, excitation: dict, probes: list) -> None:
    """Evaluate every tissue's optics at the wavelengths the study will use, so that a missing
    optional dependency (Mie theory for Intralipid beyond its fits) is named now, not after hours."""
    from .optics import build_optics_table

    bands = [("excitation.wavelength_nm", [excitation["wavelength_nm"]])]
    for i, p in enumerate(probes):
        lo, hi = p.window_nm
        n = max(1, math.ceil((hi - lo) / 10.0))  # photonqd.fluorescence.image's default 10 nm bins
        edges = np.linspace(lo, hi, n + 1)
        bands.append((f"probe[{i}].window_nm", 0.5 * (edges[:-1] + edges[1:])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # extrapolations are recorded when the study runs
        for where, wavelengths in bands:
            try:
                build_optics_table(tissues, wavelengths)
            except ImportError as err:
                raise ConfigError(f"{where}: {err}") from err


@dataclass
class Probe:
    """A QD, its concentration in the target, a detection window and a sensor."""

    name: str
    quantum_dot: str
    concentration_uM: float
    window_nm: tuple
    sensor: str


@dataclass
class StudyConfig:
    """A validated study configuration (see ``parse_config``)."""

    phantom: str
    phantom_options: dict
    depths_mm: list
    photons: int
    emission_photons: int
    max_emission_photons: int  # emission photons grow (x4) up to this until the contrast is resolved
    seed: int
    criterion: str
    threshold: float
    excitation: dict
    camera: dict
    probes: list
    text: str = ""     # the TOML it was read from, stored with the results
    method: str = "adjoint"     # "adjoint" (photonqd.adjoint_study) or "forward" (run_depth per depth)
    adjoint_photons: int = 50_000    # photons of each field run to start with (method "adjoint")
    max_adjoint_photons: int = 4_000_000   # ... raised up to this until the depth limits are resolved
    depth_resolution_mm: float = 0.25      # half-width (Z standard errors) a depth limit is resolved to
    correction_photons: int = 0            # each run of the target correction pairs per depth (0: Born only)

    def scene(self, depth_mm: float):
        return SCENES[self.phantom](depth_mm=depth_mm, **self.phantom_options)

    def to_toml(self) -> str:
        """The effective configuration (command-line overrides applied, defaults written out) as
        TOML that parse_config reads back to the same configuration."""
        study = {"phantom": self.phantom, "method": self.method, "depths_mm": list(self.depths_mm),
                 "photons": self.photons, "adjoint_photons": self.adjoint_photons,
                 "max_adjoint_photons": self.max_adjoint_photons,
                 "depth_resolution_mm": self.depth_resolution_mm, "correction_photons": self.correction_photons,
                 "emission_photons": self.emission_photons, "max_emission_photons": self.max_emission_photons,
                 "seed": self.seed, "criterion": self.criterion, "threshold": self.threshold}
        lines = ["# effective photonqd study configuration"]
        for name, table in (("study", study), ("phantom", self.phantom_options), ("excitation", self.excitation),
                            ("camera", self.camera)):
            lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        for p in self.probes:
            lines += ["", "[[probe]]"] + [f"{k} = {_toml_value(v)}" for k, v in
                                          (("name", p.name), ("quantum_dot", p.quantum_dot),
                                           ("concentration_uM", p.concentration_uM), ("window_nm", p.window_nm),
                                           ("sensor", p.sensor))]
        return "\n".join(lines) + "\n"

    def camera_for(self, probe: Probe, centre_mm) -> Camera:
        c = self.camera
        return Camera(field_of_view_mm=(c["field_of_view_mm"],) * 2, pixels=(c["pixels"],) * 2,
                      centre_mm=centre_mm, numerical_aperture=c["numerical_aperture"],
                      emission_filter=EmissionFilter(*probe.window_nm, blocking_od=c["blocking_od"]),
                      sensor=sensor_preset(probe.sensor), exposure_s=c["exposure_s"])

    def excitation_for(self, centre_mm) -> Excitation:
        e = self.excitation
        return Excitation(DiskSource((centre_mm[0], centre_mm[1], 0.0), radius=e["beam_radius_mm"]),
                          e["wavelength_nm"], e["irradiance_mw_per_cm2"])


def _toml_value(value) -> str:
    """One configuration value as a TOML literal (numbers, names, and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)          # a JSON string is a TOML basic string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML literal for {value!r}")


def parse_config(text: str, photons: int | None = None) -> StudyConfig:
    """Read and validate a study configuration (TOML text); ``photons`` overrides both counts."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}") from err
    _unknown(raw, "config", ("study", "phantom", "excitation", "camera", "probe"))
    study = _section(raw, "study")
    _unknown(study, "study", ("phantom", "depths_mm", "photons", "emission_photons", "max_emission_photons",
                              "seed", "criterion", "threshold", "method", "adjoint_photons",
                              "max_adjoint_photons", "depth_resolution_mm", "correction_photons"))
    name = _choice(study, "study", "phantom", SCENES, "skin_tumour")
    method = _choice(study, "study", "method", METHODS, "adjoint")
    depths = _depth_list(study.get("depths_mm"))
    if len(depths) > MAX_DEPTHS:
        raise ConfigError(f"study.depths_mm: {len(depths)} depths; at most {MAX_DEPTHS} per study "
                          "(split a longer scan into several studies)")
    depths = sorted({_check_number(d, "study.depths_mm", 0.01, 1000.0) for d in depths})
    n = _number(study, "study", "photons", 1, 2**31 - 1, 100_000, integer=True)
    n_em = _number(study, "study", "emission_photons", 1, 2**31 - 1, n, integer=True)
    n_max = _number(study, "study", "max_emission_photons", n_em, 2**31 - 1, 16 * n_em, integer=True)
    n_adj = _number(study, "study", "adjoint_photons", 100, 2**31 - 1, 50_000, integer=True)
    n_adj_max = _number(study, "study", "max_adjoint_photons", n_adj, 2**40, max(n_adj, 4_000_000), integer=True)
    resolution = _number(study, "study", "depth_resolution_mm", 1e-3, 100.0, 0.25)
    n_corr = _number(study, "study", "correction_photons", 0, 2**31 - 1, 0, integer=True)
    if 0 < n_corr < 100:
        raise ConfigError(f"study.correction_photons: {n_corr} is too few for 10 batches; use 0 (no target "
                          "correction) or at least 100")
    if photons is not None:  # the override scales every count, keeping their ratios
        ratio = n_max / n_em
        n = n_em = n_adj = _check_number(photons, "--photons", 1, 2**31 - 1, integer=True)
        n_corr = n_corr and n_adj
        n_max = min(int(ratio * n_em), 2**31 - 1)
        if method == "adjoint" and n < 10 * 10:
            raise ConfigError("--photons: the adjoint study needs at least 100 (10 batches of 10)")

    options = _phantom_options(name, _section(raw, "phantom"))
    # the generators' depth limits are intervals: the shallowest and the deepest depth decide
    for depth in sorted({depths[-1], depths[0]}, reverse=True):
        try:
            tissues = SCENES[name](depth_mm=depth, **options).tissues
        except (TypeError, ValueError) as err:
            raise ConfigError(f"phantom (at depth_mm = {depth:g}): {err}") from err

    e = _section(raw, "excitation")
    _unknown(e, "excitation", ("wavelength_nm", "irradiance_mw_per_cm2", "beam_radius_mm"))
    excitation = {"wavelength_nm": _number(e, "excitation", "wavelength_nm", 300, 2000, 808),
                  "irradiance_mw_per_cm2": _number(e, "excitation", "irradiance_mw_per_cm2", 1e-6, 1e5, 50),
                  "beam_radius_mm": _number(e, "excitation", "beam_radius_mm", 1e-3, 1e3, 5)}

    c = _section(raw, "camera")
    _unknown(c, "camera", ("field_of_view_mm", "pixels", "numerical_aperture", "exposure_s", "blocking_od",
                           "target_radius_mm", "background_annulus_mm"))
    camera = {"field_of_view_mm": _number(c, "camera", "field_of_view_mm", 1e-3, 1e3, 10),
              "pixels": _number(c, "camera", "pixels", 1, 4096, 25, integer=True),
              "numerical_aperture": _number(c, "camera", "numerical_aperture", 1e-4, 1.0, 0.3),
              "exposure_s": _number(c, "camera", "exposure_s", 1e-6, 1e4, 0.05),
              "blocking_od": _number(c, "camera", "blocking_od", 0, 12, 6),
              "target_radius_mm": _number(c, "camera", "target_radius_mm", 1e-3, 1e3, 1.0),
              "background_annulus_mm": _pair(c, "camera", "background_annulus_mm", 1e-3, 1e3, [3.0, 4.5])}
    if camera["background_annulus_mm"][1] > camera["field_of_view_mm"] / 2 * math.sqrt(2):
        raise ConfigError("camera.background_annulus_mm: the annulus reaches outside the field of view")
    _check_camera_fits(camera, name, options)

    probes = []
    entries = raw.get("probe", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError("probe: at least one [[probe]] table is needed")
    for i, p in enumerate(entries):
        section = f"probe[{i}]"
        if not isinstance(p, dict):
            raise ConfigError(f"{section}: expected a [[probe]] table, got {p!r}")
        _unknown(p, section, ("name", "quantum_dot", "concentration_uM", "window_nm", "sensor"))
        label = p.get("name", f"probe{i}")
        if not isinstance(label, str) or not label.strip() or "/" in label:
            raise ConfigError(f"{section}.name: expected a non-empty string without '/', got {label!r}")
        probe = Probe(name=label,
                      quantum_dot=_choice(p, section, "quantum_dot", qd_preset_names()),
                      concentration_uM=_number(p, section, "concentration_uM", 0, 1e4),
                      window_nm=_pair(p, section, "window_nm", 300, 2000),
                      sensor=_choice(p, section, "sensor", sensor_names()))
        if probe.window_nm[0] <= excitation["wavelength_nm"] <= probe.window_nm[1]:
            raise ConfigError(f"{section}.window_nm: the window contains the excitation wavelength")
        emission = qd_preset(probe.quantum_dot).emission
        passed = emission.band_fraction(*probe.window_nm)
        if not passed >= MIN_BAND_FRACTION:
            raise ConfigError(f"{section}.window_nm: {list(probe.window_nm)} nm passes {passed:.2g} of "
                              f"{probe.quantum_dot}'s emission (at least {MIN_BAND_FRACTION:g} needed); "
                              "choose a window over the QD's emission band")
        probes.append(probe)
    if len({p.name for p in probes}) != len(probes):
        raise ConfigError("probe: names must be unique")
    _check_optics_available(tissues, excitation, probes)
    return StudyConfig(phantom=name, phantom_options=options, depths_mm=depths, photons=n,
                       emission_photons=n_em, max_emission_photons=n_max, seed=_number(study, "study", "seed", 0, 2**63, 1, integer=True),
                       criterion=_choice(study, "study", "criterion", CRITERIA, "cnr"),
                       threshold=_number(study, "study", "threshold", -1e9, 1e9, 3.0),
                       excitation=excitation, camera=camera, probes=probes, text=text, method=method,
                       adjoint_photons=n_adj, max_adjoint_photons=n_adj_max, depth_resolution_mm=resolution,
                       correction_photons=n_corr)


# --- results -------------------------------------------------------------------------------------
@dataclass
class ProbeImage:
    """One probe at one depth: images per binned pixel and the target metrics."""

    depth_mm: float
    probe: str
    signal_e: np.ndarray               # QD signal, electrons per binned pixel over the exposure
    background_e: np.ndarray           # autofluorescence + excitation leakage, same units
    signal_per_photon: np.ndarray      # detected QD photoelectrons per excitation photon, unbinned
    background_per_photon: np.ndarray
    metrics: TargetMetrics
    signal_rel_error: float            # Monte Carlo relative standard error of the target's contrast
    seconds: float
    emission_photons: int              # emission (forward) or adjoint photons per emitter it took
    errors: dict = field(default_factory=dict)   # metric name -> Monte Carlo standard error
    error_budget: dict = field(default_factory=dict)   # run -> its share of the criterion's error


@dataclass
class StudyResult:
    config: StudyConfig
    images: list = field(default_factory=list)        # ProbeImage, in run order
    provenance: dict = field(default_factory=dict)

    def completed_depths(self) -> list:
        probes = {p.name for p in self.config.probes}
        done = sorted({i.depth_mm for i in self.images})
        return [d for d in done if {i.probe for i in self.images if i.depth_mm == d} >= probes]

    def metric(self, probe: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(depths, values) of one metric for one probe."""
        rows = sorted((i.depth_mm, getattr(i.metrics, name)) for i in self.images if i.probe == probe)
        return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])

    def criterion_error(self, image: "ProbeImage") -> float:
        """Monte Carlo standard error of the criterion at one image: from the image's metric
        errors (adjoint), else the relative error of the target's contrast (forward) times the
        value."""
        name = self.config.criterion
        if name in image.errors:
            return float(image.errors[name])
        return abs(getattr(image.metrics, name)) * image.signal_rel_error

    def verdict(self, image: "ProbeImage") -> str:
        """"yes", "no" or "undecided": the criterion against the threshold with its Monte Carlo
        error (photonqd.decision)."""
        return verdict(getattr(image.metrics, self.config.criterion), self.criterion_error(image),
                       self.config.threshold)

    def detectable(self, image: "ProbeImage") -> bool:
        """Decided detectable: the criterion exceeds the threshold by Z standard errors."""
        return self.verdict(image) == DETECTABLE

    def depth_limit(self, probe: str) -> DepthLimit:
        """``probe``'s depth limit with its interval (photonqd.decision.depth_limit)."""
        images = sorted((i for i in self.images if i.probe == probe), key=lambda i: i.depth_mm)
        return depth_limit([i.depth_mm for i in images],
                           [getattr(i.metrics, self.config.criterion) for i in images],
                           [self.criterion_error(i) for i in images], self.config.threshold)

    def max_depth(self, probe: str) -> float:
        """The depth limit's estimate (mm): the interpolated crossing of the threshold, or the
        deepest depth when the limit lies beyond the studied range; NaN when unresolved."""
        limit = self.depth_limit(probe)
        return limit.estimate if limit.status in ("crossing", "beyond") else float("nan")

    def value_at(self, probe: str, name: str, depth_mm: float) -> float:
        depths, values = self.metric(probe, name)
        hit = np.flatnonzero(np.isclose(depths, depth_mm))
        return float(values[hit[0]]) if hit.size else float("nan")


def estimate_photons(config: StudyConfig, n_depths: int) -> tuple[int, int]:
    """Photons ``n_depths`` depths launch: (every run at its first count, every run raised to its
    cap). Forward: an excitation run per depth and each probe's emission ladder. Adjoint: the
    excitation run, two adjoint runs per probe (QD, autofluorescence), and per depth the target
    correction's pairs (excitation, and each probe's emission)."""
    probes = len(config.probes)
    if config.method == "adjoint":
        fixed = n_depths * config.correction_photons * 2 * (1 + probes)
        return (config.photons + 2 * probes * config.adjoint_photons + fixed,
                (1 + 2 * probes) * config.max_adjoint_photons + fixed)
    return (n_depths * (config.photons + probes * config.emission_photons),
            n_depths * (config.photons + probes * _emission_ladder(config)))


def _emission_ladder(config: StudyConfig) -> int:
    """Emission photons of one probe raised (x4) up to the cap: every attempt is run."""
    n, total = config.emission_photons, config.emission_photons
    while n < config.max_emission_photons:
        n = min(4 * n, config.max_emission_photons)
        total += n
    return total


# --- running -------------------------------------------------------------------------------------
def run_study(config: StudyConfig, backend=None, done: StudyResult | None = None, on_depth=None,
              progress=None) -> StudyResult:
    """Run every depth not already in ``done``; ``on_depth(result)`` is called after each depth
    (the CLI saves the file there, so an interrupted study keeps its completed depths).
    config.method "adjoint" computes every depth from one set of field runs
    (photonqd.adjoint_study); "forward" runs each depth's excitation and emission."""
    if config.method == "adjoint":
        from .adjoint_study import run_adjoint_study
        return run_adjoint_study(config, backend, done, on_depth, progress)
    result = done if done is not None else StudyResult(config)
    for depth in config.depths_mm:
        if depth in result.completed_depths():
            continue
        result.images = [i for i in result.images if i.depth_mm != depth]  # drop a partial depth
        result.images.extend(run_depth(config, depth, backend, result.provenance, progress))
        if on_depth:
            on_depth(result)
    return result


def run_depth(config: StudyConfig, depth_mm: float, backend=None, provenance=None,
              progress=None) -> list[ProbeImage]:
    """One excitation run at ``depth_mm`` (tissue only), then every probe's QD in the target and its
    emission through the probe's camera."""
    scene = config.scene(depth_mm)
    if scene.target is None or not scene.target.any():
        raise ConfigError(f"phantom: {config.phantom} defines no target to label")
    centre = target_centre(scene)
    excitation = config.excitation_for(centre)
    cameras = {p.name: config.camera_for(p, centre) for p in config.probes}
    scene = scene.with_fluorophores()   # tissue only: each probe's QD is excited through the stored fluence
    start = time.perf_counter()
    stage = scene.excite(excitation, cameras[config.probes[0].name], config.photons, backend,
                         config.seed, progress)
    excite_seconds = time.perf_counter() - start
    out = []
    for probe in config.probes:
        t0 = time.perf_counter()
        labelled = scene.with_fluorophore(qd_preset(probe.quantum_dot),
                                          np.where(scene.target, probe.concentration_uM, 0.0))
        camera = cameras[probe.name]
        # more emission photons until the target's contrast is resolved (or the cap is reached):
        # the target alone emits, so excitation noise scales the contrast but cannot create it
        n = config.emission_photons
        while True:
            image = labelled.image(stage, camera, n, backend, config.seed, progress=progress,
                                keep_batches=True)
            error = _contrast_rel_error(image, camera, centre, config.camera)
            if error <= MAX_MC_ERROR or n >= config.max_emission_photons:
                break
            n = min(4 * n, config.max_emission_photons)
        metrics = target_metrics(image.signal_e, image.background_e, camera, centre,
                                 config.camera["target_radius_mm"], config.camera["background_annulus_mm"])
        out.append(ProbeImage(depth_mm, probe.name, image.signal_e, image.background_e,
                              image.signal_per_photon.sum(axis=0), image.background_per_photon, metrics,
                              error, excite_seconds / len(config.probes) + time.perf_counter() - t0, n))
        if provenance is not None:
            _merge_provenance(provenance, image.provenance.to_dict(), image.notes)
    return out


def _contrast_rel_error(image, camera, centre, cam_cfg) -> float:
    """Monte Carlo relative standard error of the target's signal contrast S_target - S_background
    (the CNR's numerator), from the QD emission run's batch images (batch means)."""
    run = image.emission.get(emitter_key(0))
    if run is None:
        return float("nan")
    target, ring = regions(camera, centre, cam_cfg["target_radius_mm"], cam_cfg["background_annulus_mm"])
    contrast = np.array([_contrast(camera.bin_image(b["exit_map"]), target, ring) for b in run.batch_tallies])
    mean, error = batch_mean_error(contrast, run.batch_photons)
    return float(error / abs(mean)) if mean != 0 else float("inf")


def _contrast(image, target, ring) -> float:
    return float(image[target].mean() - image[ring].mean())


def target_centre(scene) -> tuple[float, float]:
    """(x, y) in mm of the target's centroid: the camera and the beam are centred on it."""
    return phantoms.target_centre_mm(scene)[:2]


def _merge_provenance(into: dict, new: dict, notes) -> None:
    for key, value in new.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        elif isinstance(value, list):
            existing = into.setdefault(key, [])
            existing.extend(v for v in value if v not in existing)
    existing = into.setdefault("notes", [])
    existing.extend(n for n in notes if n not in existing)
