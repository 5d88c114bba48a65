"""The study configuration: TOML read into validated objects, and written back as the effective TOML.

Each table of the configuration has its own object, which checks its own values on construction
(``ExcitationSettings``, ``CameraSettings``, ``Probe``: a ValueError or TypeError naming the field
and its allowed range). ``parse_config`` builds them from the TOML tables, naming the key path in
every error ("camera.pixels: ..."), and adds the checks that need more than one table: the
phantom's depth range and size, the excitation against each probe's window, and the optics at the
study's wavelengths. ``StudyConfig.to_toml`` writes the configuration back so that parse_config
reads it to an equal one.

Tables read elsewhere: the configuration's own QDs, tissues and sensors ([quantum_dot.NAME],
[tissue.NAME], [sensor.NAME]: photonqd.study.materials), the [phantom] table (a generator's options
or a label volume file: photonqd.study.phantom_table) and [multiplex] (photonqd.study.multiplex_table).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.resources
import json
import math
import numbers
import re
import tomllib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import Camera, EmissionFilter
from ..fluorescence import MIN_BAND_FRACTION, Excitation
from ..metrics import AUTO_WIDTH_MM
from ..phantom import SCENES
from ..sources import DiskSource
from ..phantom.volume import LabelVolume
from .materials import KINDS, Materials, read_materials
from .multiplex_table import MultiplexSettings, read_multiplex
from .phantom_table import VOLUME, generator_options, generator_scene, generator_size, read_volume

CRITERIA = ("cnr", "snr", "sbr", "contrast")
METHODS = ("adjoint", "forward")
#: Depths at which the adjoint study includes the target's own optics (photonqd.target_correction):
#: where its scattering or index differs from its host layer's, at every depth, or none (Born).
CORRECTIONS = ("contrasted", "all", "none")
#: Most depths one study may hold (each is a row of the results file and minutes of transport).
MAX_DEPTHS = 400


class ConfigError(ValueError):
    """A configuration key is missing, unknown or out of range."""


def default_config_text() -> str:
    return importlib.resources.files("photonqd").joinpath("data/default_study.toml").read_text()


# --- value checks: a ValueError or TypeError whose message starts with the field's name -------------
def _number(name: str, value, lo: float, hi: float, integer: bool = False):
    """``value`` as a float (an int if ``integer``; a whole float such as 12.0 counts) in [lo, hi].
    Not photonqd.checks.integer: that one also reads strings, and a configuration's "12" is a mistake."""
    allowed = f"{'an integer' if integer else 'a number'} in [{lo}, {hi}]"
    if value is None:
        raise ValueError(f"{name}: missing ({allowed})")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: must be {allowed}, got {value!r}")
    # an int is compared exactly (it may exceed a float's range); a float must be finite
    finite = isinstance(value, numbers.Integral) or math.isfinite(value)
    whole = isinstance(value, numbers.Integral) or (finite and float(value).is_integer())
    if not (finite and lo <= value <= hi) or (integer and not whole):
        raise ValueError(f"{name}: must be {allowed}, got {value!r}")
    return int(value) if integer else float(value)


def _pair(name: str, value, lo: float, hi: float) -> tuple[float, float]:
    """``value`` as (low, high), two numbers in [lo, hi] with low < high."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name}: expected two numbers [low, high] in [{lo}, {hi}], got {value!r}")
    low, high = (_number(name, v, lo, hi) for v in value)
    if not low < high:
        raise ValueError(f"{name}: low must be below high, got {list(value)!r}")
    return low, high


def _choice(name: str, value, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {sorted(allowed)}")
    return value


def _convert(settings, name: str, check, *args, **kwargs) -> None:
    """Replace the field ``name`` of a frozen dataclass by its checked value."""
    object.__setattr__(settings, name, check(name, getattr(settings, name), *args, **kwargs))


# --- the settings of one table each -----------------------------------------------------------------
#: Allowed excitation wavelengths (nm) and irradiances (mW/cm²), of the [excitation] table and of a probe.
EXCITATION_NM = (300, 2000)
IRRADIANCE_MW_PER_CM2 = (1e-6, 1e5)


@dataclass(frozen=True)
class ExcitationSettings:
    """The [excitation] table: a uniform disk beam centred over the target."""

    wavelength_nm: float = 808.0
    irradiance_mw_per_cm2: float = 50.0
    beam_radius_mm: float = 10.0

    def __post_init__(self):
        _convert(self, "wavelength_nm", _number, *EXCITATION_NM)
        _convert(self, "irradiance_mw_per_cm2", _number, *IRRADIANCE_MW_PER_CM2)
        _convert(self, "beam_radius_mm", _number, 1e-3, 1e3)


@dataclass(frozen=True)
class CameraSettings:
    """The [camera] table: the field of view every probe images, and the image regions the
    target metrics compare (a disk over the target, a background annulus about it)."""

    field_of_view_mm: float = 20.0
    pixels: int = 50
    numerical_aperture: float = 0.05     # a whole-animal imager's macro lens
    exposure_s: float | str = "auto"     # or seconds; "auto" (photonqd.exposure): per image, up to max_exposure_s
    max_exposure_s: float = 1.0
    full_well_fraction: float = 0.8      # "auto": the brightest pixel's charge at most this of saturation
    blocking_od: float = 6.0
    target_radius_mm: float = 1.0
    background_annulus_mm: tuple[float, float] | str = "auto"   # or (inner, outer) mm (photonqd.metrics.auto_annulus)

    def __post_init__(self):
        _convert(self, "field_of_view_mm", _number, 1e-3, 1e3)
        _convert(self, "pixels", _number, 1, 4096, integer=True)
        _convert(self, "numerical_aperture", _number, 1e-4, 1.0)
        if self.exposure_s != "auto":
            try:
                _convert(self, "exposure_s", _number, 1e-6, 1e4)
            except (TypeError, ValueError):
                raise ValueError(f"exposure_s: must be \"auto\" or a number in [1e-06, 10000.0] s, "
                                 f"got {self.exposure_s!r}") from None
        _convert(self, "max_exposure_s", _number, 1e-6, 1e4)
        _convert(self, "full_well_fraction", _number, 1e-3, 1.0)
        _convert(self, "blocking_od", _number, 0, 12)
        _convert(self, "target_radius_mm", _number, 1e-3, 1e3)
        if self.background_annulus_mm == "auto":
            if self.target_radius_mm + AUTO_WIDTH_MM > self.field_of_view_mm / 2:
                raise ValueError(f"target_radius_mm: with background_annulus_mm = \"auto\" at most half the field of "
                                 f"view less {AUTO_WIDTH_MM:g} mm (the annulus' width), got {self.target_radius_mm!r}")
            return
        if isinstance(self.background_annulus_mm, str):
            raise ValueError(f"background_annulus_mm: \"auto\" or two numbers [inner, outer] mm, "
                             f"got {self.background_annulus_mm!r}")
        _convert(self, "background_annulus_mm", _pair, 1e-3, 1e3)
        inner, outer = self.background_annulus_mm
        if outer > self.field_of_view_mm / 2 * math.sqrt(2):
            raise ValueError("background_annulus_mm: the annulus reaches outside the field of view")
        if self.target_radius_mm > inner:
            raise ValueError("target_radius_mm: must not exceed the background annulus' inner radius")

    @property
    def auto_annulus(self) -> bool:
        return self.background_annulus_mm == "auto"


#: Typical tumour-to-background ratio of a nanoparticle probe (the default of
#: probe.target_to_background): tumour vs non-tumour fluorescence of albumin nanoparticles
#: accumulated by the EPR effect, about 3x at 6-12 h after injection (Nanotheranostics 1, 346-357
#: (2017), doi:10.7150/ntno.19380, Fig. 5; targeted ones reached about 4x more by 96 h). Typical,
#: not a property of any one probe: vary it (photonqd study --sensitivity).
TYPICAL_TARGET_TO_BACKGROUND = 3.0
#: Typical clutter (background.clutter): relative pixel-to-pixel fluctuation of the background
#: beyond the camera's own noise (tissue heterogeneity, autofluorescence structure, residual
#: fixed pattern after flat-field correction). Plausible 0.3-3 % (docs/limits.md); 1 % taken.
TYPICAL_CLUTTER = 0.01


@dataclass(frozen=True)
class BackgroundSettings:
    """The [background] table: what limits a target's visibility beyond the camera's noise.

    clutter: kappa, the background's relative fluctuation between pixels (fraction of the
             background pixel's level); its variance (kappa x I_background)^2 adds to the CNR's
             noise term (photonqd.metrics).
    autofluorescence_scale: multiplies every tissue's autofluorescence yield (the defaults are
             typical values, most of them upper bounds: docs/camera.md).
    """

    clutter: float = TYPICAL_CLUTTER
    autofluorescence_scale: float = 1.0

    def __post_init__(self):
        _convert(self, "clutter", _number, 0.0, 0.5)
        _convert(self, "autofluorescence_scale", _number, 0.0, 100.0)


@dataclass(frozen=True)
class GateSettings:
    """The [gate] table: pulsed excitation at the probes' average irradiance and a detection gate
    repeated every period, for the probes with ``gated = true`` (photonqd.gating). Times in s; the
    gate opens delay_s after the pulse ends and stays open width_s."""

    repetition_rate_hz: float = 1e5
    pulse_width_s: float = 1e-8
    delay_s: float = 1e-7
    width_s: float = 9e-6
    sensor: str = "gated"             # "gated": dark charge only while open; "integrating": always

    def __post_init__(self):
        _convert(self, "repetition_rate_hz", _number, 1e-3, 1e12)
        for name in ("pulse_width_s", "width_s"):
            _convert(self, name, _number, 1e-15, 1e3)
        _convert(self, "delay_s", _number, -1e3, 1e3)
        _convert(self, "sensor", _choice, ("gated", "integrating"))
        self.gate()                    # the timing checks: a ValueError naming the field

    def gate(self):
        from ..gating import PulsedExcitation, TimeGate
        return TimeGate(PulsedExcitation.from_rate(self.repetition_rate_hz, self.pulse_width_s), self.delay_s,
                        self.width_s, self.sensor)


@dataclass(frozen=True)
class Probe:
    """A [[probe]] table: a QD, its concentration in the target, a detection window and a sensor.

    target_to_background: the QD concentration in the target over that in every other tissue voxel
    (non-specific uptake; inf: none), >= 1.
    excitation_nm, irradiance_mw_per_cm2: the probe's own excitation (None: the [excitation]
    table's); the beam's shape and radius are the [excitation] table's. Probes that share an
    excitation wavelength and uptake share its transport.
    gated: detected through the [gate] table's time gate (photonqd.gating); a gated and an ungated
    probe that are otherwise equal share every transport run.
    """

    name: str
    quantum_dot: str
    concentration_uM: float
    window_nm: tuple[float, float]
    sensor: str
    target_to_background: float = TYPICAL_TARGET_TO_BACKGROUND
    excitation_nm: float | None = None
    irradiance_mw_per_cm2: float | None = None
    gated: bool = False

    def __post_init__(self):
        # the name labels the probe's groups in the results file: no '/'
        if not isinstance(self.name, str) or not self.name.strip() or "/" in self.name:
            raise ValueError(f"name: expected a non-empty string without '/', got {self.name!r}")
        for key in ("quantum_dot", "sensor"):        # a preset's or the configuration's own (parse_config)
            if not isinstance(getattr(self, key), str):
                raise ValueError(f"{key}: {getattr(self, key)!r} is not one of the names of presets or "
                                 f"[{key}.NAME] tables")
        _convert(self, "concentration_uM", _number, 0, 1e4)
        _convert(self, "window_nm", _pair, 300, 2000)
        tbr = self.target_to_background
        if not (isinstance(tbr, float) and tbr == math.inf):      # inf: no uptake outside the target
            try:
                _convert(self, "target_to_background", _number, 1.0, 1e12)
            except (TypeError, ValueError):
                raise ValueError(f"target_to_background: must be a number >= 1 or inf (no uptake outside "
                                 f"the target), got {tbr!r}") from None
        if self.excitation_nm is not None:
            _convert(self, "excitation_nm", _number, *EXCITATION_NM)
        if self.irradiance_mw_per_cm2 is not None:
            _convert(self, "irradiance_mw_per_cm2", _number, *IRRADIANCE_MW_PER_CM2)
        if not isinstance(self.gated, bool):
            raise TypeError(f"gated: must be true or false, got {self.gated!r}")

    @property
    def background_concentration_uM(self) -> float:
        """The QD concentration outside the target (non-specific uptake), µM."""
        return self.concentration_uM / self.target_to_background


# --- reading the TOML tables ------------------------------------------------------------------------
@contextlib.contextmanager
def _as_config_error(prefix: str = ""):
    """A check's ValueError or TypeError as a ConfigError, its field name prefixed with ``prefix``
    (the key path of its table: "camera." + "pixels: ...")."""
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{prefix}{err}") from None


def _read(table: dict, section: str, key: str, check, *args, default=None, **kwargs):
    """check(key, table[key] or ``default``, ...), its error naming ``section.key``."""
    with _as_config_error(f"{section}."):
        return check(key, table.get(key, default), *args, **kwargs)


def _build(key_path: str, settings, table: dict):
    """The ``settings`` dataclass from a TOML table: an unknown key, or a value its constructor
    refuses, is a ConfigError naming ``key_path.key``. A missing required key reaches the
    constructor as None, whose check names the allowed values."""
    fields = dataclasses.fields(settings)
    _unknown(table, key_path, [f.name for f in fields])
    required = {f.name: None for f in fields if f.default is dataclasses.MISSING}
    with _as_config_error(f"{key_path}."):
        return settings(**{**required, **table})


def _depth_list(value) -> list:
    """study.depths_mm: a list of depths, or {from, to, step} for an evenly spaced range (both
    ends included)."""
    if isinstance(value, dict):
        _unknown(value, "study.depths_mm", ("from", "to", "step"))
        lo = _read(value, "study.depths_mm", "from", _number, 0.01, 1000.0)
        hi = _read(value, "study.depths_mm", "to", _number, lo, 1000.0)
        step = _read(value, "study.depths_mm", "step", _number, 1e-3, 1000.0)
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


# --- checks across tables ---------------------------------------------------------------------------
def _check_camera_fits(camera: CameraSettings, size) -> None:
    """The field of view lies on the phantom's top face (``size``: its box, mm) and both image
    regions hold pixels."""
    fov = camera.field_of_view_mm
    if fov > min(size[0], size[1]) * (1 + 1e-9):
        raise ConfigError(f"camera.field_of_view_mm: {fov:g} mm is wider than the phantom's "
                          f"{size[0]:g} x {size[1]:g} mm top face")
    # after the phantom's check, which names the likelier mistake when both fail
    if camera.auto_annulus:
        return
    n = camera.pixels
    centres = (np.arange(n) + 0.5) * fov / n - fov / 2
    r = np.hypot(centres[:, None], centres[None, :])
    inner, outer = camera.background_annulus_mm
    if not np.any((r >= inner) & (r <= outer)):
        raise ConfigError(f"camera.background_annulus_mm: no pixel of the {n} x {n} pixel, {fov:g} mm field "
                          "of view lies in it; use more pixels or a wider annulus")


def _check_camera_over_volume(camera: CameraSettings, volume) -> None:
    """The camera, centred over a label volume's target, sees only the volume's face."""
    centre = (np.argwhere(volume.target)[:, :2].mean(axis=0) + 0.5) * np.asarray(volume.voxel_size[:2])
    half, size = camera.field_of_view_mm / 2, np.asarray(volume.size_mm[:2])
    if np.any(centre - half < -1e-9) or np.any(centre + half > size + 1e-9):
        raise ConfigError(f"camera.field_of_view_mm: {camera.field_of_view_mm:g} mm centred over the target at "
                          f"({centre[0]:g}, {centre[1]:g}) mm reaches beyond the volume's {size[0]:g} x {size[1]:g} mm "
                          "face; use a smaller field of view or a volume with the target further from its sides")


def _check_probe_window(key_path: str, probe: Probe, excitation: ExcitationSettings, materials: Materials) -> None:
    """The window excludes the probe's excitation and passes enough of the QD's emission."""
    wavelength = excitation.wavelength_nm if probe.excitation_nm is None else probe.excitation_nm
    if probe.window_nm[0] <= wavelength <= probe.window_nm[1]:
        raise ConfigError(f"{key_path}.window_nm: the window contains the excitation wavelength ({wavelength:g} nm)")
    passed = materials.quantum_dot(probe.quantum_dot).emission.band_fraction(*probe.window_nm)
    if not passed >= MIN_BAND_FRACTION:
        raise ConfigError(f"{key_path}.window_nm: {list(probe.window_nm)} nm passes {passed:.2g} of "
                          f"{probe.quantum_dot}'s emission (at least {MIN_BAND_FRACTION:g} needed); "
                          "choose a window over the QD's emission band")
    if not materials.sees(probe.sensor, probe.window_nm):
        raise ConfigError(f"{key_path}.sensor: {probe.sensor} has no quantum efficiency in the window "
                          f"{list(probe.window_nm)} nm; choose a sensor that sees it")


def _check_optics_available(tissues: dict, excitation: ExcitationSettings, probes: list) -> None:
    """Evaluate every tissue's optics at the wavelengths the study will use, so that a missing
    optional dependency (Mie theory for Intralipid beyond its fits) is named now, not after hours."""
    from ..optics import build_optics_table

    bands = [("excitation.wavelength_nm", [excitation.wavelength_nm])]
    bands += [(f"probe[{i}].excitation_nm", [p.excitation_nm]) for i, p in enumerate(probes)
              if p.excitation_nm is not None]
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


# --- the whole configuration ------------------------------------------------------------------------
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
    excitation: ExcitationSettings
    camera: CameraSettings
    probes: list[Probe]
    text: str = ""     # the TOML it was read from, stored with the results
    method: str = "adjoint"     # "adjoint" (photonqd.adjoint_study) or "forward" (run_depth per depth)
    adjoint_photons: int = 50_000    # photons of each field run to start with (method "adjoint")
    max_adjoint_photons: int = 4_000_000   # ... raised up to this until the depth limits are resolved
    depth_resolution_mm: float = 0.25      # half-width (Z standard errors) a depth limit is resolved to
    correction: str = "contrasted"         # depths whose images include the target's optics (CORRECTIONS)
    correction_photons: int = 10_000       # each run of the target correction pairs per corrected depth
    z: float = 2.0                          # standard errors a decision keeps from the threshold
    background: BackgroundSettings = dataclasses.field(default_factory=BackgroundSettings)
    gate: GateSettings | None = None        # the [gate] table, for probes with gated = true
    materials: Materials = dataclasses.field(default_factory=Materials, compare=False)  # [quantum_dot.*] ...
    volume: LabelVolume | None = dataclasses.field(default=None, compare=False, repr=False)  # phantom "volume"
    multiplex: MultiplexSettings | None = None   # the [multiplex] table: probes = channels x species

    def quantum_dot(self, name: str):
        """The QD ``name``: a preset or a [quantum_dot.NAME] table's."""
        return self.materials.quantum_dot(name)

    def sensor(self, name: str):
        """The sensor ``name``: a preset or a [sensor.NAME] table's."""
        return self.materials.sensor(name)

    def scene(self, depth_mm: float):
        if self.phantom == VOLUME:
            if self.volume is None:
                raise ConfigError("phantom.file: the label volume was not read (results loaded without it)")
            scene = self.volume.scene(depth_mm)
        else:
            scene = generator_scene(self.phantom, self.phantom_options, self.materials, depth_mm)
            own = {label: self.materials.autofluorescence_of(t.name) for label, t in scene.tissues.items()
                   if getattr(t, "name", None) in self.materials.tissues}
            scene = dataclasses.replace(scene, autofluorescence={**scene.autofluorescence, **own})
        scale = self.background.autofluorescence_scale
        if scale == 1.0:
            return scene
        scaled = {}
        for label in scene.tissues:
            af = scene.autofluorescence_of(label)
            scaled[label] = None if af is None else dataclasses.replace(
                af, yield_per_absorbed=af.yield_per_absorbed * scale,
                sources={**af.sources, "scale": f"yield x {scale:g} (background.autofluorescence_scale)"})
        return dataclasses.replace(scene, autofluorescence=scaled)

    def to_toml(self) -> str:
        """The effective configuration (command-line overrides applied, defaults written out) as
        TOML that parse_config reads back to the same configuration."""
        study = {"phantom": self.phantom, "method": self.method, "depths_mm": list(self.depths_mm),
                 "photons": self.photons, "adjoint_photons": self.adjoint_photons,
                 "max_adjoint_photons": self.max_adjoint_photons,
                 "depth_resolution_mm": self.depth_resolution_mm, "correction": self.correction,
                 "correction_photons": self.correction_photons,
                 "emission_photons": self.emission_photons, "max_emission_photons": self.max_emission_photons,
                 "seed": self.seed, "criterion": self.criterion, "threshold": self.threshold, "z": self.z}
        lines = ["# effective photonqd study configuration"]
        tables = [("study", study), ("phantom", self.phantom_options),
                  ("excitation", dataclasses.asdict(self.excitation)), ("camera", dataclasses.asdict(self.camera)),
                  ("background", dataclasses.asdict(self.background))]
        if self.gate is not None:
            tables.append(("gate", dataclasses.asdict(self.gate)))
        tables += [(f"{kind}.{_toml_key(name)}", table) for kind in KINDS
                   for name, table in self.materials.tables.get(kind, {}).items()]
        if self.multiplex is not None:
            table, channels = self.multiplex.to_tables()
            tables.append(("multiplex", table))
        for name, table in tables:
            lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()]
        if self.multiplex is not None:
            for channel in channels:
                lines += ["", "[[multiplex.channel]]"] + [f"{k} = {_toml_value(v)}" for k, v in channel.items()]
        for p in [] if self.multiplex is not None else self.probes:
            lines += ["", "[[probe]]"] + [f"{k} = {_toml_value(v)}" for k, v in dataclasses.asdict(p).items()
                                          if v is not None]
        return "\n".join(lines) + "\n"

    def camera_for(self, probe: Probe, centre_mm) -> Camera:
        """``probe``'s camera; with exposure "auto", at max_exposure_s until an image sets it
        (photonqd.exposure.exposure_for)."""
        c = self.camera
        return Camera(field_of_view_mm=(c.field_of_view_mm,) * 2, pixels=(c.pixels,) * 2,
                      centre_mm=centre_mm, numerical_aperture=c.numerical_aperture,
                      emission_filter=EmissionFilter(*probe.window_nm, blocking_od=c.blocking_od),
                      sensor=self.sensor(probe.sensor),
                      exposure_s=c.max_exposure_s if c.exposure_s == "auto" else c.exposure_s)

    def excitation_for(self, centre_mm, probe: Probe | None = None) -> Excitation:
        """The excitation beam centred at ``centre_mm``: ``probe``'s own wavelength and irradiance
        where it sets them, the [excitation] table's otherwise."""
        e = self.excitation
        wavelength = e.wavelength_nm if probe is None or probe.excitation_nm is None else probe.excitation_nm
        irradiance = e.irradiance_mw_per_cm2 if probe is None or probe.irradiance_mw_per_cm2 is None \
            else probe.irradiance_mw_per_cm2
        return Excitation(DiskSource((centre_mm[0], centre_mm[1], 0.0), radius=e.beam_radius_mm),
                          wavelength, irradiance)

    def excitation_key(self, probe: Probe) -> tuple:
        """What ``probe``'s excitation transport depends on: its wavelength and the QD that absorbs
        everywhere (its non-specific uptake; "" and 0 without). Probes with equal keys share it."""
        wavelength = self.excitation_for((0.0, 0.0), probe).wavelength_nm
        uptake = probe.background_concentration_uM
        return (wavelength, probe.quantum_dot, uptake) if uptake > 0 else (wavelength, "", 0.0)


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
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML literal for {value!r}")


def _toml_key(key) -> str:
    """A TOML key: bare where TOML allows it, quoted otherwise."""
    key = str(key)
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def parse_config(text: str, photons: int | None = None, base_dir=None, read_files: bool = True) -> StudyConfig:
    """Read and validate a study configuration (TOML text); ``photons`` overrides both counts.
    ``base_dir``: the folder relative file names are read from (the configuration file's);
    ``read_files``: False leaves a phantom "volume"'s file unread (results loaded for display)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"not valid TOML: {err}") from err
    _unknown(raw, "config", ("study", "phantom", "excitation", "camera", "background", "gate", "probe", "multiplex",
                             *KINDS))
    base_dir = None if base_dir is None else Path(base_dir)
    with _as_config_error():
        materials = read_materials(raw, base_dir)
    study = _section(raw, "study")
    _unknown(study, "study", ("phantom", "depths_mm", "photons", "emission_photons", "max_emission_photons",
                              "seed", "criterion", "threshold", "method", "adjoint_photons",
                              "max_adjoint_photons", "depth_resolution_mm", "correction", "correction_photons", "z"))
    name = _read(study, "study", "phantom", _choice, [*SCENES, VOLUME], default="skin_tumour")
    method = _read(study, "study", "method", _choice, METHODS, default="adjoint")
    depths = _depth_list(study.get("depths_mm"))
    if len(depths) > MAX_DEPTHS:
        raise ConfigError(f"study.depths_mm: {len(depths)} depths; at most {MAX_DEPTHS} per study "
                          "(split a longer scan into several studies)")
    with _as_config_error():
        depths = sorted({_number("study.depths_mm", d, 0.01, 1000.0) for d in depths})
    n = _read(study, "study", "photons", _number, 1, 2**31 - 1, default=100_000, integer=True)
    n_em = _read(study, "study", "emission_photons", _number, 1, 2**31 - 1, default=n, integer=True)
    n_max = _read(study, "study", "max_emission_photons", _number, n_em, 2**31 - 1, default=16 * n_em,
                  integer=True)
    n_adj = _read(study, "study", "adjoint_photons", _number, 100, 2**31 - 1, default=50_000, integer=True)
    n_adj_max = _read(study, "study", "max_adjoint_photons", _number, n_adj, 2**40,
                      default=max(n_adj, 4_000_000), integer=True)
    resolution = _read(study, "study", "depth_resolution_mm", _number, 1e-3, 100.0, default=0.25)
    correction = _read(study, "study", "correction", _choice, CORRECTIONS, default="contrasted")
    n_corr = _read(study, "study", "correction_photons", _number, 100, 2**31 - 1, default=10_000, integer=True)
    if photons is not None:  # the override scales every count, keeping their ratios
        ratio = n_max / n_em
        with _as_config_error():
            n = n_em = n_adj = _number("--photons", photons, 1, 2**31 - 1, integer=True)
        n_corr = max(n_adj, 100)
        n_max = min(int(ratio * n_em), 2**31 - 1)
        n_adj_max = max(n_adj_max, n_adj)      # a stored configuration must read back
        if method == "adjoint" and n < 10 * 10:
            raise ConfigError("--photons: the adjoint study needs at least 100 (10 batches of 10)")

    volume = None
    if name == VOLUME:
        with _as_config_error():
            options, volume = read_volume(_section(raw, "phantom"), materials, base_dir, read_files)
        size = volume.size_mm if volume else None
        for depth in depths if volume else []:
            with _as_config_error("study.depths_mm: "):
                volume.shift(depth)
        tissues = volume.tissues if volume else {}
    else:
        with _as_config_error():
            options = generator_options(name, _section(raw, "phantom"), materials)
        size = generator_size(name, options)
        # the generators' depth limits are intervals: the shallowest and the deepest depth decide
        for depth in sorted({depths[-1], depths[0]}, reverse=True):
            try:
                tissues = generator_scene(name, options, materials, depth).tissues
            except (TypeError, ValueError) as err:
                raise ConfigError(f"phantom (at depth_mm = {depth:g}): {err}") from err

    excitation = _build("excitation", ExcitationSettings, _section(raw, "excitation"))
    camera = _build("camera", CameraSettings, _section(raw, "camera"))
    background = _build("background", BackgroundSettings, _section(raw, "background"))
    if size is not None:
        _check_camera_fits(camera, size)
    if volume is not None:
        _check_camera_over_volume(camera, volume)

    multiplex, probes = None, []
    if "multiplex" in raw:
        if "probe" in raw:
            raise ConfigError("probe: a [multiplex] study makes its probes from its species and channels; "
                              "remove the [[probe]] tables")
        with _as_config_error():
            multiplex = read_multiplex(_section(raw, "multiplex"), materials, excitation.wavelength_nm)
        probes = [Probe(multiplex.probe_name(ch, s), s, c, ch.window_nm, ch.sensor, target_to_background=math.inf)
                  for ch in multiplex.channels for s, c in zip(multiplex.species, multiplex.concentration_uM)]
    entries = raw.get("probe", [])
    if not multiplex and (not isinstance(entries, list) or not entries):
        raise ConfigError("probe: at least one [[probe]] table is needed")
    for i, entry in enumerate(entries):
        key_path = f"probe[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{key_path}: expected a [[probe]] table, got {entry!r}")
        probe = _build(key_path, Probe, {"name": f"probe{i}", **entry})
        with _as_config_error(f"{key_path}."):
            _choice("quantum_dot", probe.quantum_dot, materials.quantum_dot_names())
            _choice("sensor", probe.sensor, materials.sensor_names())
        _check_probe_window(key_path, probe, excitation, materials)
        probes.append(probe)
    if len({p.name for p in probes}) != len(probes):
        raise ConfigError("probe: names must be unique")
    gate = _build("gate", GateSettings, _section(raw, "gate")) if "gate" in raw else None
    for i, probe in enumerate(probes):
        if probe.gated and gate is None:
            raise ConfigError(f"probe[{i}].gated: true needs a [gate] table (pulses and gate timing)")
        if probe.gated and materials.quantum_dot(probe.quantum_dot).lifetime_ns is None:
            raise ConfigError(f"probe[{i}].gated: {probe.quantum_dot} has no luminescence lifetime to gate")
    _check_optics_available(tissues, excitation, probes)
    return StudyConfig(phantom=name, phantom_options=options, depths_mm=depths, photons=n,
                       emission_photons=n_em, max_emission_photons=n_max,
                       seed=_read(study, "study", "seed", _number, 0, 2**63, default=1, integer=True),
                       criterion=_read(study, "study", "criterion", _choice, CRITERIA, default="cnr"),
                       threshold=_read(study, "study", "threshold", _number, -1e9, 1e9, default=3.0),
                       z=_read(study, "study", "z", _number, 0.0, 10.0, default=2.0), background=background,
                       gate=gate,
                       excitation=excitation, camera=camera, probes=probes, text=text, method=method,
                       adjoint_photons=n_adj, max_adjoint_photons=n_adj_max, depth_resolution_mm=resolution,
                       correction=correction, correction_photons=n_corr, materials=materials, volume=volume,
                       multiplex=multiplex)
