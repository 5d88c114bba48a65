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
import math
import time
import tomllib
from dataclasses import dataclass, field

import numpy as np

from . import phantom as phantoms
from .camera import Camera, EmissionFilter, sensor_names, sensor_preset
from .fluorescence import Excitation
from .metrics import TargetMetrics, regions, target_metrics
from .optics import qd_preset, qd_preset_names
from .sources import DiskSource
from .tallies import batch_mean_error

#: Phantom generators a study can use: each takes depth_mm and returns a FluorescenceScene.
SCENES = {f.__name__: f for f in (phantoms.skin_tumour, phantoms.intralipid_capillary,
                                   phantoms.mouse_head, phantoms.lymph_node)}
CRITERIA = ("cnr", "snr", "sbr", "contrast")
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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and int(value) != value):
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
    if value not in allowed:
        raise ConfigError(f"{section}.{key}: {value!r} is not one of {sorted(allowed)}")
    return value


def _unknown(cfg: dict, section: str, known) -> None:
    extra = set(cfg) - set(known)
    if extra:
        raise ConfigError(f"{section}: unknown key(s) {sorted(extra)}; allowed: {sorted(known)}")


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

    def scene(self, depth_mm: float):
        return SCENES[self.phantom](depth_mm=depth_mm, **self.phantom_options)

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


def parse_config(text: str, photons: int | None = None) -> StudyConfig:
    """Read and validate a study configuration (TOML text); ``photons`` overrides both counts."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}") from err
    _unknown(raw, "config", ("study", "phantom", "excitation", "camera", "probe"))
    study = raw.get("study", {})
    _unknown(study, "study", ("phantom", "depths_mm", "photons", "emission_photons", "max_emission_photons",
                              "seed", "criterion", "threshold"))
    name = _choice(study, "study", "phantom", SCENES, "skin_tumour")
    depths = study.get("depths_mm")
    if not isinstance(depths, list) or not depths:
        raise ConfigError("study.depths_mm: expected a non-empty list of depths in mm")
    depths = sorted({_check_number(d, "study.depths_mm", 0.01, 1000.0) for d in depths})
    n = _number(study, "study", "photons", 1, 2**31 - 1, 100_000, integer=True)
    n_em = _number(study, "study", "emission_photons", 1, 2**31 - 1, n, integer=True)
    n_max = _number(study, "study", "max_emission_photons", n_em, 2**31 - 1, 16 * n_em, integer=True)
    if photons is not None:  # the override scales every count, keeping their ratios
        ratio = n_max / n_em
        n = n_em = _check_number(photons, "--photons", 1, 2**31 - 1, integer=True)
        n_max = min(int(ratio * n_em), 2**31 - 1)

    options = dict(raw.get("phantom", {}))
    try:
        SCENES[name](depth_mm=depths[0], **options)
    except TypeError as err:
        raise ConfigError(f"phantom: {err}") from err
    except ValueError as err:
        raise ConfigError(f"phantom: {err}") from err

    e = raw.get("excitation", {})
    _unknown(e, "excitation", ("wavelength_nm", "irradiance_mw_per_cm2", "beam_radius_mm"))
    excitation = {"wavelength_nm": _number(e, "excitation", "wavelength_nm", 300, 2000, 808),
                  "irradiance_mw_per_cm2": _number(e, "excitation", "irradiance_mw_per_cm2", 1e-6, 1e5, 50),
                  "beam_radius_mm": _number(e, "excitation", "beam_radius_mm", 1e-3, 1e3, 5)}

    c = raw.get("camera", {})
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

    probes = []
    entries = raw.get("probe", [])
    if not isinstance(entries, list) or not entries:
        raise ConfigError("probe: at least one [[probe]] table is needed")
    for i, p in enumerate(entries):
        section = f"probe[{i}]"
        _unknown(p, section, ("name", "quantum_dot", "concentration_uM", "window_nm", "sensor"))
        probe = Probe(name=str(p.get("name", f"probe{i}")),
                      quantum_dot=_choice(p, section, "quantum_dot", qd_preset_names()),
                      concentration_uM=_number(p, section, "concentration_uM", 0, 1e4),
                      window_nm=_pair(p, section, "window_nm", 300, 2000),
                      sensor=_choice(p, section, "sensor", sensor_names()))
        if probe.window_nm[0] <= excitation["wavelength_nm"] <= probe.window_nm[1]:
            raise ConfigError(f"{section}.window_nm: the window contains the excitation wavelength")
        probes.append(probe)
    if len({p.name for p in probes}) != len(probes):
        raise ConfigError("probe: names must be unique")
    return StudyConfig(phantom=name, phantom_options=options, depths_mm=depths, photons=n,
                       emission_photons=n_em, max_emission_photons=n_max, seed=_number(study, "study", "seed", 0, 2**63, 1, integer=True),
                       criterion=_choice(study, "study", "criterion", CRITERIA, "cnr"),
                       threshold=_number(study, "study", "threshold", -1e9, 1e9, 3.0),
                       excitation=excitation, camera=camera, probes=probes, text=text)


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
    emission_photons: int              # emission photons it took (see StudyConfig.max_emission_photons)


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

    def detectable(self, image: "ProbeImage") -> bool:
        """The criterion holds and Monte Carlo resolved the target's contrast (relative standard
        error below MAX_MC_ERROR), so the verdict is not Monte Carlo noise."""
        value = getattr(image.metrics, self.config.criterion)
        return bool(value >= self.config.threshold and image.signal_rel_error < MAX_MC_ERROR)

    def max_depth(self, probe: str) -> float:
        """Deepest depth down to which ``probe``'s target stays detectable at every studied depth
        (NaN if not even at the shallowest): a detection below a failure is taken as noise."""
        deepest = float("nan")
        for img in sorted((i for i in self.images if i.probe == probe), key=lambda i: i.depth_mm):
            if not self.detectable(img):
                break
            deepest = img.depth_mm
        return deepest

    def value_at(self, probe: str, name: str, depth_mm: float) -> float:
        depths, values = self.metric(probe, name)
        hit = np.flatnonzero(np.isclose(depths, depth_mm))
        return float(values[hit[0]]) if hit.size else float("nan")


# --- running -------------------------------------------------------------------------------------
def run_study(config: StudyConfig, backend=None, done: StudyResult | None = None, on_depth=None,
              progress=None) -> StudyResult:
    """Run every depth not already in ``done``; ``on_depth(result)`` is called after each depth
    (the CLI saves the file there, so an interrupted study keeps its completed depths)."""
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
    centre = _target_centre(scene)
    excitation = config.excitation_for(centre)
    cameras = {p.name: config.camera_for(p, centre) for p in config.probes}
    scene.fluorophores = []
    start = time.perf_counter()
    stage = scene.excite(excitation, cameras[config.probes[0].name], config.photons, backend,
                         config.seed, progress)
    excite_seconds = time.perf_counter() - start
    out = []
    for probe in config.probes:
        t0 = time.perf_counter()
        scene.fluorophores = []
        scene.add_fluorophore(qd_preset(probe.quantum_dot), np.where(scene.target, probe.concentration_uM, 0.0))
        camera = cameras[probe.name]
        # more emission photons until the target's contrast is resolved (or the cap is reached):
        # the target alone emits, so excitation noise scales the contrast but cannot create it
        n = config.emission_photons
        while True:
            image = scene.image(stage, camera, n, backend, config.seed, progress=progress,
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
    if not image.emitted[0] > 0 or not image.emission_results:
        return float("nan")
    run = image.emission_results[0]
    target, ring = regions(camera, centre, cam_cfg["target_radius_mm"], cam_cfg["background_annulus_mm"])
    contrast = np.array([_contrast(camera.bin_image(b["exit_map"]), target, ring) for b in run.batch_tallies])
    mean, error = batch_mean_error(contrast, run.batch_photons)
    return float(error / abs(mean)) if mean != 0 else float("inf")


def _contrast(image, target, ring) -> float:
    return float(image[target].mean() - image[ring].mean())


def _target_centre(scene) -> tuple[float, float]:
    """(x, y) in mm of the target's centroid: the camera and the beam are centred on it."""
    idx = np.argwhere(scene.target)
    voxel = np.broadcast_to(np.asarray(scene.voxel_size, dtype=np.float64), (3,))
    centre = (idx.mean(axis=0) + 0.5) * voxel
    return float(centre[0]), float(centre[1])


def _merge_provenance(into: dict, new: dict, notes) -> None:
    for key, value in new.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        elif isinstance(value, list):
            existing = into.setdefault(key, [])
            existing.extend(v for v in value if v not in existing)
    existing = into.setdefault("notes", [])
    existing.extend(n for n in notes if n not in existing)
