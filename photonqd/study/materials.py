"""A study's own QDs, tissues and sensors: the [quantum_dot.NAME], [tissue.NAME] and [sensor.NAME]
tables of a study configuration, built into the objects the presets are.

A probe names a QD and a sensor, a phantom's layers name tissues; each name is a preset or one of
the configuration's own tables (``Materials.quantum_dot`` / ``tissue`` / ``sensor``). A table may
start from a preset (``like = "..."``) and change some of its values. Spectra (a QD's emission or
ε(λ), a sensor's QE) are two-column tables, given inline as ``[[nm, value], ...]`` or as a file (CSV
or whitespace separated, '#' comments, an optional header line; a relative path is relative to the
configuration file's folder). ``Materials.tables`` holds every table with its file contents written
in, which the effective configuration (StudyConfig.to_toml) records: a results file holds every
number its QDs, tissues and sensors were built from.

Units: wavelengths nm; ε M⁻¹ cm⁻¹ (decadic); scattering coefficients mm⁻¹; lifetimes ns.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..autofluorescence import default_autofluorescence, default_names
from ..camera import BINNING_MODES, Sensor, sensor_names, sensor_preset
from ..optics import (ExcitonAbsorption, GaussianEmission, JacquesScattering, PowerLawScattering, QuantumDot,
                      Spectrum, TabulatedEmission, Tissue, preset_names, qd_preset, qd_preset_names,
                      tissue_preset, yu2003_diameter_nm, yu2003_epsilon)
from ..optics.quantum_dots import (HC_EV_NM, MOREELS_2009_VALID_D_NM, YU_2003, YU_2003_DIAMETER, YU_2003_VALID_NM,
                                   moreels2009_absorption, moreels2009_bandgap_ev)

#: The configuration tables of each kind, by their TOML name.
KINDS = ("quantum_dot", "tissue", "sensor")
#: Wavelengths a user's spectrum may hold (nm), as the optics tables (photonqd.optics).
SPECTRUM_NM = (200.0, 3000.0)
#: How a QD's absorption ε(λ) is given: the absorption key's values and the keys each needs.
ABSORPTION_KEYS = {
    "moreels2009": ("exciton_nm", "exciton_fwhm_ev"),                     # PbS, sized from its exciton
    "yu2003": ("material", "exciton_nm", "exciton_fwhm_ev", "anchor_nm", "anchor_epsilon"),  # CdTe/CdSe/CdS
    "exciton": ("exciton_nm", "exciton_epsilon", "exciton_fwhm_ev", "anchor_nm", "anchor_epsilon"),
    "table": ("absorption_table",),                                       # ε(λ) measured
}
QD_KEYS = {"source", "quantum_yield", "lifetime_ns", "emission_peak_nm", "emission_fwhm_nm", "emission_table",
           "absorption", *(k for keys in ABSORPTION_KEYS.values() for k in keys)}
SCATTERING_KEYS = {"power": ("scattering_a_per_mm", "scattering_b"),
                   "jacques": ("scattering_a_per_mm", "scattering_f_ray", "scattering_b")}
TISSUE_FRACTIONS = ("blood", "saturation", "water", "fat", "melanin")
TISSUE_KEYS = {"like", "source", *TISSUE_FRACTIONS, "g", "n", "scattering", "scattering_valid_nm",
               "autofluorescence", *(k for keys in SCATTERING_KEYS.values() for k in keys)}
SENSOR_NUMBERS = {"read_noise_e": (0, 1e6), "dark_current_e_per_s": (0, 1e9), "pixel_pitch_um": (1e-3, 1e4),
                  "full_well_e": (1, 1e12), "register_well_e": (1, 1e12)}
SENSOR_KEYS = {"like", "source", "qe_table", "binning", "bit_depth", *SENSOR_NUMBERS}
#: First-exciton wavelengths (nm) of the PbS cores Moreels 2009 measured (diameters 3-9 nm).
MOREELS_2009_EXCITON_NM = tuple(round(HC_EV_NM / float(moreels2009_bandgap_ev(d)), 1)
                                for d in MOREELS_2009_VALID_D_NM)
USER = "defined in the study configuration"


class MaterialError(ValueError):
    """A [quantum_dot.*], [tissue.*] or [sensor.*] table is wrong; the message names the key."""


@dataclass
class Materials:
    """The configuration's own QDs, tissues and sensors by name, and the tables they came from
    (files written in). Names not defined here are presets."""

    quantum_dots: dict[str, QuantumDot] = field(default_factory=dict)
    tissues: dict[str, Tissue] = field(default_factory=dict)
    sensors: dict[str, Sensor] = field(default_factory=dict)
    autofluorescence: dict[str, str | None] = field(default_factory=dict)   # tissue -> preset whose AF it has
    tables: dict[str, dict[str, dict]] = field(default_factory=dict)      # kind -> name -> table

    def quantum_dot(self, name: str) -> QuantumDot:
        return self.quantum_dots[name] if name in self.quantum_dots else qd_preset(name)

    def sensor(self, name: str) -> Sensor:
        return self.sensors[name] if name in self.sensors else sensor_preset(name)

    def tissue(self, name: str):
        """A tissue object for a [tissue.NAME] table; a preset's name stays a name (the phantom
        generators build presets themselves)."""
        return self.tissues.get(name, name)

    def sees(self, sensor: str, window_nm) -> bool:
        """Whether ``sensor`` has quantum efficiency anywhere in ``window_nm`` (a channel it can read)."""
        return bool(self.sensor(sensor).quantum_efficiency(np.linspace(*window_nm, 201)).max() > 0)

    def quantum_dot_names(self) -> list[str]:
        return qd_preset_names() + list(self.quantum_dots)

    def sensor_names(self) -> list[str]:
        return sensor_names() + list(self.sensors)

    def tissue_names(self) -> list[str]:
        return preset_names() + list(self.tissues)

    def autofluorescence_of(self, tissue_name: str):
        """The autofluorescence of a [tissue.NAME]: that of the preset it names (or is like), or None."""
        preset = self.autofluorescence.get(tissue_name)
        return None if preset is None else default_autofluorescence(preset)


def read_materials(raw: dict, base_dir: Path | None) -> Materials:
    """The [quantum_dot.*], [tissue.*] and [sensor.*] tables of a parsed configuration."""
    out = Materials()
    builders = {"quantum_dot": _quantum_dot, "tissue": _tissue, "sensor": _sensor}
    presets = {"quantum_dot": qd_preset_names(), "tissue": preset_names(), "sensor": sensor_names()}
    for kind in KINDS:
        tables = raw.get(kind, {})
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise MaterialError(f"{kind}: expected tables [{kind}.NAME], got {tables!r}")
        out.tables[kind] = {}
        for name, table in tables.items():
            where = f"{kind}.{name}"
            if name in presets[kind]:
                raise MaterialError(f"{where}: {name!r} is a preset's name; give your own a new name")
            if "/" in name or not name.strip():
                raise MaterialError(f"{where}: a name must be non-empty and without '/'")
            built, written = builders[kind](name, dict(table), where, base_dir, out)
            getattr(out, {"quantum_dot": "quantum_dots", "tissue": "tissues", "sensor": "sensors"}[kind])[name] = built
            out.tables[kind][name] = written
    return out


# --- values -----------------------------------------------------------------------------------------
def check_number(where: str, value, lo: float, hi: float) -> float:
    """``value`` as a float in [lo, hi], or a ValueError naming ``where`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise MaterialError(f"{where}: must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def _require(table: dict, keys, where: str, why: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise MaterialError(f"{where}.{missing[0]}: missing ({why} needs {', '.join(keys)})")


def unknown_keys(table: dict, known, where: str) -> None:
    """A ValueError naming the keys of ``table`` that are not ``known``."""
    extra = sorted(set(table) - set(known))
    if extra:
        raise MaterialError(f"{where}: unknown key(s) {extra}; allowed: {sorted(known)}")


def read_spectrum(where: str, value, base_dir: Path | None, lo: float, hi: float) -> np.ndarray:
    """A two-column table (n, 2) of strictly increasing wavelengths (nm, in SPECTRUM_NM) and values
    in [lo, hi]: inline [[nm, value], ...] or a file name."""
    if isinstance(value, str):
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        where = f"{where} ({path})"
        rows = _read_columns(where, path)
    elif isinstance(value, list):
        rows = value
    else:
        raise MaterialError(f"{where}: expected a file name or [[wavelength nm, value], ...], got {value!r}")
    if len(rows) < 2 or not all(isinstance(r, (list, tuple)) and len(r) == 2 for r in rows):
        raise MaterialError(f"{where}: expected at least two rows of two numbers (wavelength nm, value)")
    table = np.array([[check_number(f"{where} row {i + 1}", v, -math.inf, math.inf) for v in r]
                      for i, r in enumerate(rows)], dtype=np.float64)
    wl, values = table[:, 0], table[:, 1]
    if np.any(np.diff(wl) <= 0) or wl[0] < SPECTRUM_NM[0] or wl[-1] > SPECTRUM_NM[1]:
        raise MaterialError(f"{where}: wavelengths must increase strictly and lie in "
                            f"[{SPECTRUM_NM[0]:g}, {SPECTRUM_NM[1]:g}] nm")
    if np.any(values < lo) or np.any(values > hi):
        raise MaterialError(f"{where}: values must lie in [{lo:g}, {hi:g}]")
    return table


def _read_columns(where: str, path: Path) -> list:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise MaterialError(f"{where}: cannot read it ({getattr(err, 'strerror', None) or err})") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.replace(",", " ").split()
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            if rows:                           # only the first line may be a header
                raise MaterialError(f"{where}: line {number}: expected two numbers, got {line!r}") from None
            continue
        if len(fields) != 2:
            raise MaterialError(f"{where}: line {number}: expected two numbers, got {line!r}")
    return rows


def _with(table: dict, key: str, value) -> dict:
    return {**table, key: value.tolist() if isinstance(value, np.ndarray) else value}


# --- quantum dots -----------------------------------------------------------------------------------
def _quantum_dot(name: str, table: dict, where: str, base_dir, _materials) -> tuple[QuantumDot, dict]:
    unknown_keys(table, QD_KEYS, where)
    _require(table, ["quantum_yield"], where, "a QD")
    qy = check_number(f"{where}.quantum_yield", table["quantum_yield"], 1e-9, 1.0)
    lifetime = check_number(f"{where}.lifetime_ns", table["lifetime_ns"], 1e-6, 1e9) if "lifetime_ns" in table else None
    emission, table = _emission(table, where, base_dir)
    absorption, sizing, table = _absorption(name, table, where, base_dir)
    sources = {"definition": USER}
    if "source" in table:
        sources["source"] = str(table["source"])
    if sizing:
        sources["sizing"] = sizing
    return QuantumDot(name=name, absorption=absorption, quantum_yield=qy, emission=emission, sources=sources,
                      lifetime_ns=lifetime), table


def _emission(table: dict, where: str, base_dir):
    gaussian = {"emission_peak_nm", "emission_fwhm_nm"} & set(table)
    if gaussian and "emission_table" in table:
        raise MaterialError(f"{where}.emission_table: give either emission_peak_nm and emission_fwhm_nm "
                            "(Gaussian in energy) or emission_table, not both")
    if "emission_table" in table:
        spectrum = read_spectrum(f"{where}.emission_table", table["emission_table"], base_dir, 0.0, math.inf)
        if not spectrum[:, 1].sum() > 0:
            raise MaterialError(f"{where}.emission_table: needs a value > 0")
        return TabulatedEmission(spectrum[:, 0], spectrum[:, 1]), _with(table, "emission_table", spectrum)
    _require(table, ["emission_peak_nm", "emission_fwhm_nm"], where, "a Gaussian emission")
    peak = check_number(f"{where}.emission_peak_nm", table["emission_peak_nm"], *SPECTRUM_NM)
    fwhm = check_number(f"{where}.emission_fwhm_nm", table["emission_fwhm_nm"], 1e-3, 2 * peak - 1e-3)
    return GaussianEmission(peak, fwhm), table


def _absorption(name: str, table: dict, where: str, base_dir):
    kind = table.get("absorption")
    if kind not in ABSORPTION_KEYS:
        raise MaterialError(f"{where}.absorption: {kind!r} is not one of {sorted(ABSORPTION_KEYS)} "
                            "(moreels2009: PbS sized from its exciton; yu2003: CdTe/CdSe/CdS; exciton: "
                            "peak and one anchor; table: ε(λ) in M^-1 cm^-1)")
    needed = ABSORPTION_KEYS[kind]
    _require(table, needed, where, f"absorption = {kind!r}")
    others = {k for keys in ABSORPTION_KEYS.values() for k in keys} - set(needed)
    if others & set(table):
        raise MaterialError(f"{where}.{sorted(others & set(table))[0]}: not used by absorption = {kind!r} "
                            f"(it takes {', '.join(needed)})")
    if kind == "table":
        eps = read_spectrum(f"{where}.absorption_table", table["absorption_table"], base_dir, 1e-30, 1e12)
        spectrum = Spectrum(f"epsilon_{name}", eps[:, 0], eps[:, 1], "M^-1 cm^-1", source=name, citation=USER)
        return spectrum, None, _with(table, "absorption_table", eps)
    # the sizing curves are fits over measured sizes: outside them a user's QD is not described
    lo, hi = MOREELS_2009_EXCITON_NM if kind == "moreels2009" else \
        YU_2003_VALID_NM.get(table.get("material"), (300.0, 3000.0)) if kind == "yu2003" else (300.0, 3000.0)
    exciton = check_number(f"{where}.exciton_nm", table["exciton_nm"], lo, hi)
    fwhm = check_number(f"{where}.exciton_fwhm_ev", table["exciton_fwhm_ev"], 1e-3, 5.0)
    if kind == "moreels2009":
        return (*moreels2009_absorption(exciton, fwhm, name), table)
    anchor = (check_number(f"{where}.anchor_nm", table["anchor_nm"], SPECTRUM_NM[0], exciton - 1e-6),
              check_number(f"{where}.anchor_epsilon", table["anchor_epsilon"], 1e-30, 1e12))
    if kind == "yu2003":
        material = table["material"]
        if material not in YU_2003_DIAMETER:
            raise MaterialError(f"{where}.material: must be one of {sorted(YU_2003_DIAMETER)}, got {material!r}")
        diameter = float(yu2003_diameter_nm(material, [exciton])[0])
        if not diameter > 0:
            raise MaterialError(f"{where}.exciton_nm: {exciton:g} nm is outside Yu 2003's {material} sizing "
                                "curve (no positive diameter)")
        eps = float(yu2003_epsilon(material, diameter))
        sizing = f"{YU_2003}: {material} core d = {diameter:.2f} nm from the first exciton, its exciton eps"
    else:
        eps, sizing = check_number(f"{where}.exciton_epsilon", table["exciton_epsilon"], 1e-30, 1e12), None
    return ExcitonAbsorption(exciton, eps, fwhm, (anchor,), source=name), sizing, table


# --- tissues ----------------------------------------------------------------------------------------
def _tissue(name: str, table: dict, where: str, _base_dir, materials: Materials) -> tuple[Tissue, dict]:
    unknown_keys(table, TISSUE_KEYS, where)
    like = table.get("like")
    if like is not None and like not in preset_names():
        raise MaterialError(f"{where}.like: {like!r} is not a tissue preset; choose from {preset_names()}")
    fields = {}
    for key in TISSUE_FRACTIONS:
        if key in table:
            fields[key] = check_number(f"{where}.{key}", table[key], 0.0, 1.0)
        elif like is None:
            raise MaterialError(f"{where}.{key}: missing (a tissue without like = \"preset\" needs "
                                f"{', '.join(TISSUE_FRACTIONS)}, g, n and a scattering law)")
    for key, lo, hi in (("g", 0.0, 0.9999), ("n", 1.0, 3.0)):
        if key in table:
            fields[key] = check_number(f"{where}.{key}", table[key], lo, hi)
        elif like is None:
            raise MaterialError(f"{where}.{key}: missing (a tissue without like needs it)")
    if "scattering" in table or like is None:
        fields["scattering"] = _scattering(name, table, where)
    elif set(table) & ({k for keys in SCATTERING_KEYS.values() for k in keys} | {"scattering_valid_nm"}):
        raise MaterialError(f"{where}.scattering: the scattering_* keys need scattering = \"power\" or \"jacques\"")
    sources = {f"{name}.definition": USER + (f", starting from the {like} preset" if like else "")}
    if "source" in table:
        sources[f"{name}.source"] = str(table["source"])
    try:
        tissue = dataclasses.replace(tissue_preset(like), name=name, **fields) if like else Tissue(name=name, **fields)
    except ValueError as err:       # Tissue names the field, except for the sum of the fractions
        named = re.match(r"[a-z_]+: ", str(err))
        raise MaterialError(f"{where}.{err}" if named else f"{where}: {err}" +
                            (f" (with the values of {like} for those not set)" if like else "")) from None
    if like:          # the values the table sets are no longer the preset's typical ones
        tissue = dataclasses.replace(tissue, sources={**tissue.sources, **sources},
                                     typical={k: v for k, v in tissue.typical.items() if k not in fields})
    else:
        tissue.sources.update(sources)
    af = table.get("autofluorescence", like if like in default_names() else "none")
    if af != "none" and af not in default_names():
        raise MaterialError(f"{where}.autofluorescence: \"none\" or a tissue preset with one: {default_names()}, "
                            f"got {af!r}")
    materials.autofluorescence[name] = None if af == "none" else af
    return tissue, table


def _scattering(name: str, table: dict, where: str):
    kind = table.get("scattering")
    if kind not in SCATTERING_KEYS:
        raise MaterialError(f"{where}.scattering: {kind!r} is not one of {sorted(SCATTERING_KEYS)} "
                            "(power: mus' = a (lambda/500 nm)^-b; jacques: Jacques 2013 eq. 2)")
    _require(table, SCATTERING_KEYS[kind], where, f"scattering = {kind!r}")
    a = check_number(f"{where}.scattering_a_per_mm", table["scattering_a_per_mm"], 1e-9, 1e4)
    b = check_number(f"{where}.scattering_b", table["scattering_b"], 0.0, 10.0)
    valid = table.get("scattering_valid_nm", [400.0, 1700.0])
    if not isinstance(valid, list) or len(valid) != 2:
        raise MaterialError(f"{where}.scattering_valid_nm: expected [low, high] nm, got {valid!r}")
    valid = tuple(check_number(f"{where}.scattering_valid_nm", v, *SPECTRUM_NM) for v in valid)
    if not valid[0] < valid[1]:
        raise MaterialError(f"{where}.scattering_valid_nm: low must be below high, got {list(valid)}")
    citation = str(table.get("source", USER))
    if kind == "power":
        return PowerLawScattering(a, b, valid, source=f"{name}_scattering", citation=citation)
    f_ray = check_number(f"{where}.scattering_f_ray", table["scattering_f_ray"], 0.0, 1.0)
    return JacquesScattering(a, f_ray, b, valid_nm=valid, source=f"{name}_scattering", citation=citation)


# --- sensors ----------------------------------------------------------------------------------------
def _sensor(name: str, table: dict, where: str, base_dir, _materials) -> tuple[Sensor, dict]:
    unknown_keys(table, SENSOR_KEYS, where)
    like = table.get("like")
    if like is not None and like not in sensor_names():
        raise MaterialError(f"{where}.like: {like!r} is not a sensor preset; choose from {sensor_names()}")
    fields = {}
    if "qe_table" in table:
        qe = read_spectrum(f"{where}.qe_table", table["qe_table"], base_dir, 0.0, 1.0)
        fields.update(wavelengths_nm=qe[:, 0], qe=qe[:, 1])
        table = _with(table, "qe_table", qe)
    elif like is None:
        raise MaterialError(f"{where}.qe_table: missing (a sensor without like = \"preset\" needs its QE)")
    for key, (lo, hi) in SENSOR_NUMBERS.items():
        if key in table:
            fields[key] = check_number(f"{where}.{key}", table[key], lo, hi)
        elif like is None and key in ("read_noise_e", "dark_current_e_per_s", "full_well_e"):
            raise MaterialError(f"{where}.{key}: missing (a sensor without like needs read_noise_e, "
                                "dark_current_e_per_s and full_well_e)")
    if "binning" in table:
        if table["binning"] not in BINNING_MODES:
            raise MaterialError(f"{where}.binning: must be one of {list(BINNING_MODES)}, got {table['binning']!r}")
        fields["binning"] = table["binning"]
    if "bit_depth" in table:
        bits = check_number(f"{where}.bit_depth", table["bit_depth"], 1, 32)
        if not bits.is_integer():
            raise MaterialError(f"{where}.bit_depth: must be a whole number of bits in [1, 32], got {table['bit_depth']!r}")
        fields["bit_depth"] = int(bits)
    sources = {"definition": USER + (f", starting from the {like} preset" if like else "")}
    if "source" in table:
        sources["source"] = str(table["source"])
    try:
        if like:
            base = sensor_preset(like)
            sensor = dataclasses.replace(base, name=name, sources={**base.sources, **sources}, **fields)
        else:
            sensor = Sensor(name=name, sources=sources, **fields)
    except ValueError as err:
        raise MaterialError(f"{where}: {err}") from None
    return sensor, table
