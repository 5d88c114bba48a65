"""Tissue presets, read from one cited table (``data/tissue_presets.csv``); no per-tissue code."""

from __future__ import annotations

from functools import lru_cache

from ..tables import preset_row, read_keyed_csv
from .chromophores import Chromophores
from .scattering import JACQUES_2013, JacquesScattering, PowerLawScattering, TabulatedScattering
from .spectra import DATA_DIR
from .tissue import Tissue

PRESET_FILE = "tissue_presets.csv"


@lru_cache(maxsize=1)
def preset_rows() -> dict[str, dict[str, str]]:
    """The preset table as {name: row}, values as written in the file."""
    return read_keyed_csv(DATA_DIR / PRESET_FILE, "name")


def preset_names() -> list[str]:
    return list(preset_rows())


def _scattering(row):
    lo, hi = (float(v) for v in row["scat_valid_nm"].split("-"))
    kind = row["scattering"]
    if kind == "jacques":
        return JacquesScattering(float(row["scat_a_per_mm"]), float(row["scat_f_ray"]), float(row["scat_b"]),
                                 valid_nm=(lo, hi), citation=JACQUES_2013)
    if kind == "power":
        return PowerLawScattering(float(row["scat_a_per_mm"]), float(row["scat_b"]), (lo, hi),
                                  source=f"{row['name']}_scattering", citation=row["scattering_source"])
    if kind == "table":
        return TabulatedScattering.whole_blood()
    raise ValueError(f"{PRESET_FILE}: unknown scattering kind {kind!r} for {row['name']!r}")


def tissue_preset(name: str, chromophores: Chromophores | None = None, **overrides) -> Tissue:
    """A :class:`Tissue` from the preset table; keyword arguments override any Tissue field.

    Presets: epidermis, dermis, subcutaneous_fat, skeletal_muscle, brain_grey_matter,
    brain_white_matter, skull, liver, breast, tumour_generic, whole_blood. See
    ``preset_rows()[name]`` for the sources and which values are typical.
    """
    row = preset_row(preset_rows(), name, "name", "tissue")
    typical_basis = "typical literature value, not measured for a specific sample"
    fields = dict(
        name=name,
        blood=float(row["blood"]),
        saturation=float(row["saturation"]),
        water=float(row["water"]),
        fat=float(row["fat"]),
        melanin=float(row["melanin"]),
        scattering=_scattering(row),
        g=float(row["g"]) if row["g"] else None,
        n=float(row["n"]),
        chromophores=chromophores or Chromophores(),
        sources={f"{name}.composition": row["composition_source"], f"{name}.scattering": row["scattering_source"]},
        typical={q: typical_basis for q in row["typical"].split(";") if q},
    )
    fields.update(overrides)
    return Tissue(**fields)
