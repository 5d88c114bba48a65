"""Tissue autofluorescence (AF): a second emitter, driven by the excitation stage.

Definition used by the fluorescence stages: the AF photons emitted in a voxel are

    N_AF = yield_per_absorbed × (excitation weight absorbed by the tissue in that voxel)

summed over all the tissue's chromophores (not only a fluorophore's share), with wavelengths drawn from
``emission``. The detected AF background in a camera band is then the AF stage's image; the fraction of AF
photons emitted inside a band is :meth:`Autofluorescence.band_fraction`.

Defaults (``data/autofluorescence_defaults.csv``) exist for every tissue preset of
:mod:`photonqd.optics`; they are typical values with stated bases, mostly upper bounds, and apply to
excitation near 808 nm. No absolute NIR yield of tissue AF was found in the literature; how the shipped
numbers were derived, and their uncertainty, is written in the file's header and in ``docs/camera.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .optics.provenance import Provenance
from .optics.quantum_dots import GaussianEmission, TabulatedEmission
from .tables import preset_row, read_keyed_csv

DATA_DIR = Path(__file__).with_name("data")
DEFAULTS_FILE = "autofluorescence_defaults.csv"
KINDS = ("estimate", "upper_bound", "user")


@dataclass(frozen=True)
class Autofluorescence:
    """AF of one tissue.

    yield_per_absorbed : AF photons emitted (all wavelengths) per excitation photon absorbed by the
        tissue, in [0, 1).
    emission : normalised emission spectrum (:class:`~photonqd.optics.GaussianEmission` or
        :class:`~photonqd.optics.TabulatedEmission`).
    excitation_nm : excitation wavelength the values refer to [nm], or None.
    kind : "estimate", "upper_bound" (true yield lower by an unknown factor) or "user".
    sources : citations; typical : quantities whose values are typical, not measured for the tissue.
    """

    yield_per_absorbed: float
    emission: GaussianEmission | TabulatedEmission
    excitation_nm: float | None = None
    kind: str = "user"
    sources: dict[str, str] = field(default_factory=dict)
    typical: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        try:
            y = float(self.yield_per_absorbed)
        except (TypeError, ValueError):
            y = math.nan
        if not (math.isfinite(y) and 0 <= y < 1):
            raise ValueError(f"yield_per_absorbed: must be in [0, 1) AF photons per absorbed photon, "
                             f"got {self.yield_per_absorbed!r}")
        object.__setattr__(self, "yield_per_absorbed", y)
        if not isinstance(self.emission, (GaussianEmission, TabulatedEmission)):
            raise TypeError("emission: expected a photonqd.optics GaussianEmission or TabulatedEmission")
        if self.excitation_nm is not None and not (math.isfinite(self.excitation_nm) and self.excitation_nm > 0):
            raise ValueError(f"excitation_nm: must be > 0 nm or None, got {self.excitation_nm!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {KINDS}, got {self.kind!r}")

    def band_fraction(self, lo_nm: float, hi_nm: float) -> float:
        """Fraction of AF photons emitted with wavelength in [lo_nm, hi_nm]."""
        return float(self.emission.band_fraction(lo_nm, hi_nm))

    def band_yield(self, lo_nm: float, hi_nm: float) -> float:
        """AF photons emitted in [lo_nm, hi_nm] per absorbed excitation photon."""
        return self.yield_per_absorbed * self.band_fraction(lo_nm, hi_nm)

    def provenance(self, tissue: str, provenance: Provenance | None = None) -> Provenance:
        prov = provenance if provenance is not None else Provenance()
        for k, v in self.sources.items():
            prov.cite(f"{tissue}.autofluorescence.{k}", v)
        for k, v in self.typical.items():
            prov.label_typical(f"{tissue}.autofluorescence.{k}", v)
        if self.kind == "upper_bound":
            prov.note(f"{tissue} autofluorescence yield is an upper bound, not an estimate")
        return prov


@lru_cache(maxsize=1)
def _default_rows() -> dict[str, dict[str, str]]:
    return read_keyed_csv(DATA_DIR / DEFAULTS_FILE, "tissue")


def default_names() -> list[str]:
    return list(_default_rows())


def default_autofluorescence(tissue_name: str, **overrides) -> Autofluorescence:
    """Default AF of a tissue preset (``photonqd.optics.preset_names()``); keywords override any field.

    Overriding ``yield_per_absorbed`` or ``emission`` marks the result as kind "user" unless ``kind``
    is given too.
    """
    r = preset_row(_default_rows(), tissue_name, "tissue_name", "autofluorescence")
    basis = "typical of the literature, not measured for this tissue"
    fields = dict(
        yield_per_absorbed=float(r["yield_per_absorbed"]),
        emission=GaussianEmission(float(r["emission_peak_nm"]), float(r["emission_fwhm_nm"])),
        excitation_nm=float(r["excitation_nm"]),
        kind=r["kind"],
        sources={"basis": r["basis"], "table": f"photonqd/data/{DEFAULTS_FILE} (header: derivation and sources)"},
        typical={"yield_per_absorbed": basis, "emission": basis},
    )
    replaced = {"yield_per_absorbed", "emission"} & set(overrides)
    if replaced and "kind" not in overrides:
        overrides["kind"] = "user"
    # a user's value is no longer the typical literature value
    fields["typical"] = {k: v for k, v in fields["typical"].items() if k not in replaced}
    fields.update(overrides)
    return Autofluorescence(**fields)
