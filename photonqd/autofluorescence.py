"""Tissue autofluorescence (AF): a second emitter, driven by the excitation stage.

Definition used by the fluorescence stages: the AF photons emitted in a voxel are

    N_AF = yield_per_absorbed × (excitation weight absorbed by the tissue in that voxel)

summed over all the tissue's chromophores (not only a fluorophore's share), with wavelengths drawn from
``emission``. The detected AF background in a camera band is then the AF stage's image; the fraction of AF
photons emitted inside a band is :meth:`Autofluorescence.band_fraction`.

Default spectrum (:func:`nir_af_emission`): a Gaussian core in NIR-I plus a NIR-II tail falling
exponentially in wavelength from 1000 to 1700 nm, weighted so that the AF photons in 1000–1600 nm are a
given fraction (measured in vivo) of those in 700–975 nm.

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

import numpy as np

from .optics.provenance import Provenance
from .optics.quantum_dots import GaussianEmission, TabulatedEmission
from .tables import preset_row, read_keyed_csv

DATA_DIR = Path(__file__).with_name("data")
DEFAULTS_FILE = "autofluorescence_defaults.csv"
KINDS = ("estimate", "upper_bound", "user")
NIR1_BAND_NM = (700.0, 975.0)     # the NIR-I and NIR-II emission bands of the measured AF ratio
NIR2_BAND_NM = (1000.0, 1600.0)   # (J. Biomed. Opt. 28(9), 094805 (2023); see the CSV header)
TAIL_NM = (1000.0, 1700.0)        # the tail: from the NIR-II band's start to the standard-InGaAs cutoff


def nir_af_emission(peak_nm: float, fwhm_nm: float, nir2_ratio: float, tail_decay_nm: float) -> TabulatedEmission:
    """AF spectrum: (1 − w)·Gaussian(peak, FWHM) + w·tail, tabulated on a 1 nm grid over 500–1700 nm.

    tail(λ) ∝ exp(−(λ − 1000 nm) / tail_decay_nm) on 1000–1700 nm, zero elsewhere. The weight w makes
    the AF photons in 1000–1600 nm equal ``nir2_ratio`` × those in 700–975 nm; a core whose own
    NIR-II share already exceeds that ratio is an error (narrow the core).
    """
    core = GaussianEmission(peak_nm, fwhm_nm)
    if not (math.isfinite(nir2_ratio) and 0 < nir2_ratio < 1):
        raise ValueError(f"nir2_ratio: must be in (0, 1), got {nir2_ratio!r}")
    if not (math.isfinite(tail_decay_nm) and tail_decay_nm > 0):
        raise ValueError(f"tail_decay_nm: must be > 0 nm, got {tail_decay_nm!r}")
    a, b = TAIL_NM

    def tail_share(lo, hi):  # fraction of the normalised tail in [lo, hi]
        lo, hi = max(lo, a), min(hi, b)
        if hi <= lo:
            return 0.0
        return (math.exp(-(lo - a) / tail_decay_nm) - math.exp(-(hi - a) / tail_decay_nm)) / -math.expm1(
            -(b - a) / tail_decay_nm)

    g1, g2 = core.band_fraction(*NIR1_BAND_NM), core.band_fraction(*NIR2_BAND_NM)
    if g2 >= nir2_ratio * g1:
        raise ValueError(f"emission_fwhm_nm: the Gaussian core alone puts {g2 / g1:.3g} of its 700-975 nm "
                         f"photons in 1000-1600 nm, above nir2_ratio {nir2_ratio:g}; narrow it")
    # (1 − w)(g2 − R g1) + w t2 = 0, from [(1 − w) g2 + w t2] / [(1 − w) g1] = R (the tail is 0 below 1000 nm)
    t2 = tail_share(*NIR2_BAND_NM)
    w = (nir2_ratio * g1 - g2) / (t2 + nir2_ratio * g1 - g2)
    wl = np.arange(500.0, b + 0.5, 1.0)
    wl = np.insert(wl, np.searchsorted(wl, a), np.nextafter(a, 0.0))  # the tail starts as a step at 1000 nm
    tail_pdf = np.where((wl >= a) & (wl <= b), np.exp(-(wl - a) / tail_decay_nm), 0.0)
    tail_pdf /= tail_decay_nm * -math.expm1(-(b - a) / tail_decay_nm)
    return TabulatedEmission(wl, (1.0 - w) * core.pdf(wl) + w * tail_pdf)


@dataclass(frozen=True)
class Autofluorescence:
    """AF of one tissue.

    yield_per_absorbed : AF photons emitted (all wavelengths) per excitation photon absorbed by the
        tissue, in [0, 1).
    emission : normalised emission spectrum (:class:`~photonqd.optics.GaussianEmission` or
        :class:`~photonqd.optics.TabulatedEmission`).
    excitation_nm : excitation wavelength the values refer to [nm], or None.
    lifetime_ns : AF decay time [ns], > 0, or None; not used by the steady-state model (for time gating).
    kind : "estimate", "upper_bound" (true yield lower by an unknown factor) or "user".
    sources : citations; typical : quantities whose values are typical, not measured for the tissue.
    """

    yield_per_absorbed: float
    emission: GaussianEmission | TabulatedEmission
    excitation_nm: float | None = None
    lifetime_ns: float | None = None
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
        if self.lifetime_ns is not None and not (math.isfinite(self.lifetime_ns) and self.lifetime_ns > 0):
            raise ValueError(f"lifetime_ns: must be > 0 ns or None, got {self.lifetime_ns!r}")
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


@lru_cache(maxsize=8)
def _default_emission(peak_nm, fwhm_nm, nir2_ratio, tail_decay_nm) -> TabulatedEmission:
    return nir_af_emission(peak_nm, fwhm_nm, nir2_ratio, tail_decay_nm)


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
        emission=_default_emission(float(r["emission_peak_nm"]), float(r["emission_fwhm_nm"]),
                                   float(r["nir2_ratio"]), float(r["tail_decay_nm"])),
        excitation_nm=float(r["excitation_nm"]),
        lifetime_ns=float(r["lifetime_ns"]),
        kind=r["kind"],
        sources={"basis": r["basis"], "table": f"photonqd/data/{DEFAULTS_FILE} (header: derivation and sources)"},
        typical={"yield_per_absorbed": basis, "emission": basis, "lifetime_ns": basis},
    )
    replaced = {"yield_per_absorbed", "emission", "lifetime_ns"} & set(overrides)
    # kind qualifies the yield and spectrum; a user's lifetime does not change it
    if replaced - {"lifetime_ns"} and "kind" not in overrides:
        overrides["kind"] = "user"
    # a user's value is no longer the typical literature value
    fields["typical"] = {k: v for k, v in fields["typical"].items() if k not in replaced}
    fields.update(overrides)
    return Autofluorescence(**fields)
