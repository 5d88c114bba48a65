"""Tissue optical properties from chromophore content and a scattering law (Jacques 2013).

μa(λ) = B·S·μa,oxy(λ) + B·(1-S)·μa,deoxy(λ) + W·μa,water(λ) + F·μa,lipid(λ) + M·μa,melanosome(λ)

with B the whole-blood volume fraction (hemoglobin at 150 g/L, *without* its water), W the total
water volume fraction *including the water of the blood*, F lipid, M melanosome volume fraction
(Jacques 2013, Phys. Med. Biol. 58 R37, eq. 1). μs = μs'/(1 - g).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from .chromophores import BLOOD_WATER_FRACTION, Chromophores
from .provenance import Provenance, check_wavelengths
from .scattering import JacquesScattering, PowerLawScattering, TabulatedScattering
from .spectra import Spectrum

Scattering = Union[JacquesScattering, PowerLawScattering, TabulatedScattering]
SpectralParam = Union[float, Spectrum, Callable]


@dataclass
class TissueOptics:
    """Optical properties of one tissue at a set of wavelengths, with their provenance."""

    wavelengths_nm: np.ndarray
    mua: np.ndarray          # mm⁻¹
    mus: np.ndarray          # mm⁻¹
    mus_reduced: np.ndarray  # mm⁻¹
    g: np.ndarray
    n: np.ndarray
    provenance: Provenance


def _fraction(name, value):
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: volume fraction must be in [0, 1], got {value!r}")
    return float(value)


@dataclass
class Tissue:
    """A tissue described by its chromophore volume fractions and scattering.

    Parameters
    ----------
    name : label used in provenance and plots.
    blood : B, whole-blood volume fraction [0, 1].
    saturation : S, hemoglobin oxygen saturation [0, 1].
    water : W, water volume fraction [0, 1], blood water included (so W >= B·W_blood, with W_blood =
        ``BLOOD_WATER_FRACTION``, the water fraction of whole blood).
    fat : F, lipid volume fraction [0, 1].
    melanin : M, melanosome volume fraction [0, 1].
    scattering : :class:`JacquesScattering`, :class:`PowerLawScattering` or :class:`TabulatedScattering`.
    g : anisotropy: a constant in [0, 1), a :class:`Spectrum`, or a callable λ[nm] -> g. Must be None
        when the scattering law is tabulated with its own g.
    n : refractive index (constant >= 1, Spectrum or callable).
    chromophores : chromophore spectra (water model, optional user lipid table).
    sources : citation strings for the composition, recorded in the provenance.
    typical : quantities whose values are typical rather than measured for this tissue.

    The non-overlapping volume B·(1 - W_blood) + W + F + M must not exceed 1.
    """

    name: str
    blood: float
    saturation: float
    water: float
    fat: float
    melanin: float
    scattering: Scattering
    g: SpectralParam | None = 0.9
    n: SpectralParam = 1.4
    chromophores: Chromophores = field(default_factory=Chromophores)
    sources: dict[str, str] = field(default_factory=dict)
    typical: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        for attr in ("blood", "saturation", "water", "fat", "melanin"):
            setattr(self, attr, _fraction(attr, getattr(self, attr)))
        if self.water + 1e-9 < self.blood * BLOOD_WATER_FRACTION:
            raise ValueError(
                f"water: must be >= blood * {BLOOD_WATER_FRACTION:.3f} = {self.blood * BLOOD_WATER_FRACTION:.4f} "
                "because W includes the water of the blood (blood water is counted once, in W)"
            )
        total = self.blood * (1.0 - BLOOD_WATER_FRACTION) + self.water + self.fat + self.melanin
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"blood*(1-{BLOOD_WATER_FRACTION:.3f}) + water + fat + melanin = {total:.4f}: "
                "volume fractions must sum to at most 1"
            )
        own_g = getattr(self.scattering, "anisotropy", None)
        if own_g is not None and self.g is not None:
            raise ValueError("g: must be None when the scattering table provides its own anisotropy")
        if own_g is None and self.g is None:
            raise ValueError("g: required (constant in [0, 1), Spectrum or callable)")
        if isinstance(self.g, (int, float)) and not 0.0 <= self.g < 1.0:
            raise ValueError(f"g: anisotropy must be in [0, 1), got {self.g!r}")
        if isinstance(self.n, (int, float)) and not (np.isfinite(self.n) and self.n >= 1.0):
            raise ValueError(f"n: refractive index must be >= 1, got {self.n!r}")

    # -- absorption ---------------------------------------------------------------------------
    def mua(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Absorption coefficient μa [mm⁻¹]."""
        wl = check_wavelengths(wavelengths_nm)
        c = self.chromophores
        mua = self.water * c.water(wl, provenance)
        if self.blood > 0:
            mua = mua + self.blood * (self.saturation * c.oxy_blood(wl, provenance)
                                      + (1.0 - self.saturation) * c.deoxy_blood(wl, provenance))
        if self.fat > 0:
            mua = mua + self.fat * c.lipid(wl, provenance)
        if self.melanin > 0:
            mua = mua + self.melanin * c.melanosome(wl, provenance)
        return mua

    # -- scattering ---------------------------------------------------------------------------
    def anisotropy(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Anisotropy g (mean cosine of the scattering angle)."""
        wl = check_wavelengths(wavelengths_nm)
        if self.g is None:
            g = self.scattering.anisotropy(wl, provenance)
        else:
            g = self._spectral(self.g, wl, provenance)
        if np.any((g < 0) | (g >= 1)):
            raise ValueError(f"g: anisotropy of tissue {self.name!r} left [0, 1) at some wavelength")
        return g

    def mus_reduced(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Reduced scattering coefficient μs' = μs(1 - g) [mm⁻¹]."""
        return self.scattering.reduced(check_wavelengths(wavelengths_nm), provenance)

    def mus(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Scattering coefficient μs = μs'/(1 - g) [mm⁻¹]."""
        wl = check_wavelengths(wavelengths_nm)
        return self.mus_reduced(wl, provenance) / (1.0 - self.anisotropy(wl, provenance))

    def refractive_index(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return self._spectral(self.n, check_wavelengths(wavelengths_nm), provenance)

    @staticmethod
    def _spectral(param, wl, provenance):
        if isinstance(param, Spectrum):
            return param(wl, provenance)
        if callable(param):
            return np.asarray(param(wl), dtype=float) * np.ones_like(wl)
        return np.full_like(wl, float(param))

    def properties(self, wavelengths_nm) -> TissueOptics:
        """All properties at once, with a provenance record of sources and extrapolations."""
        wl = check_wavelengths(wavelengths_nm)
        prov = Provenance()
        for key, citation in self.sources.items():
            prov.cite(key, citation)
        for quantity, basis in self.typical.items():
            prov.label_typical(f"{self.name}.{quantity}", basis)
        musp = self.mus_reduced(wl, prov)
        g = self.anisotropy(wl, prov)
        optics = TissueOptics(wl, self.mua(wl, prov), musp / (1.0 - g), musp, g,
                              self.refractive_index(wl, prov), prov)
        # Name the tissue in each record so that records stay distinct in a multi-tissue table.
        for e in prov.extrapolations:
            e.quantity = f"{self.name}:{e.quantity}"
        return optics
