"""Scattering laws for tissues: Jacques 2013 eq. 2, a plain power law, and tabulated μs and g.

Each law knows the wavelength range its parameters were fitted over; evaluating outside it is
recorded in the provenance as an extrapolation of the law.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .provenance import Provenance, check_range, check_wavelengths
from .spectra import Spectrum, packaged_spectrum

JACQUES_2013 = "S. L. Jacques, Phys. Med. Biol. 58, R37-R61 (2013), eq. 2 and Table 2"

# Jacques 2013 Table 2 means fit spectra digitised mostly between ~400 and ~1000 nm (Table 1 lists
# each spectrum's span; a few reach 1100-1300 nm); this is the range treated as measured.
JACQUES_2013_VALID_NM = (400.0, 1000.0)

# Table 2 mean parameters: a' [cm⁻¹] at 500 nm, f_Ray, b_Mie.
JACQUES_2013_TABLE2 = {
    "skin": (48.0, 0.409, 0.702),
    "brain": (27.4, 0.315, 1.087),
    "breast": (18.7, 0.288, 0.685),
    "bone": (15.3, 0.022, 0.326),
    "soft tissue": (19.1, 0.153, 1.091),
    "fibrous tissue": (29.2, 0.489, 0.644),
    "fatty tissue": (19.3, 0.174, 0.447),
}


def _check_positive(name, value):
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a finite number > 0, got {value!r}")


@dataclass(frozen=True)
class JacquesScattering:
    """μs'(λ) = a' [f_Ray (λ/500)^-4 + (1 - f_Ray)(λ/500)^-b_Mie]  (Jacques 2013, eq. 2).

    a_prime_per_mm : μs' at 500 nm [mm⁻¹] (Jacques tabulates cm⁻¹: divide by 10).
    f_ray : Rayleigh fraction of μs' at 500 nm, in [0, 1].
    b_mie : Mie scattering power, >= 0.
    """

    a_prime_per_mm: float
    f_ray: float
    b_mie: float
    valid_nm: tuple[float, float] = JACQUES_2013_VALID_NM
    source: str = "jacques2013"
    citation: str = JACQUES_2013

    def __post_init__(self):
        _check_positive("a_prime_per_mm", self.a_prime_per_mm)
        if not 0.0 <= self.f_ray <= 1.0:
            raise ValueError(f"f_ray: must be in [0, 1], got {self.f_ray!r}")
        if not np.isfinite(self.b_mie) or self.b_mie < 0:
            raise ValueError(f"b_mie: must be >= 0, got {self.b_mie!r}")

    @classmethod
    def from_table2(cls, tissue_type: str) -> "JacquesScattering":
        """The Jacques 2013 Table 2 mean for ``tissue_type`` (one of ``JACQUES_2013_TABLE2``)."""
        if tissue_type not in JACQUES_2013_TABLE2:
            raise ValueError(f"tissue_type: must be one of {sorted(JACQUES_2013_TABLE2)}, got {tissue_type!r}")
        a_cm, f, b = JACQUES_2013_TABLE2[tissue_type]
        return cls(a_cm / 10.0, f, b)

    def reduced(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        wl = check_wavelengths(wavelengths_nm)
        check_range(wl, self.valid_nm, "mus_reduced", self.source, provenance, "scattering law extended")
        if provenance is not None:
            provenance.cite(self.source, self.citation)
        x = wl / 500.0
        return self.a_prime_per_mm * (self.f_ray * x**-4 + (1.0 - self.f_ray) * x**-self.b_mie)

    anisotropy = None  # g is set by the tissue, not by this law


@dataclass(frozen=True)
class PowerLawScattering:
    """μs'(λ) = a (λ/λ_ref)^-b with a [mm⁻¹] at λ_ref (default 500 nm)."""

    a_per_mm: float
    b: float
    valid_nm: tuple[float, float]
    source: str
    citation: str
    ref_nm: float = 500.0

    def __post_init__(self):
        _check_positive("a_per_mm", self.a_per_mm)
        _check_positive("ref_nm", self.ref_nm)
        if not np.isfinite(self.b) or self.b < 0:
            raise ValueError(f"b: must be >= 0, got {self.b!r}")

    def reduced(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        wl = check_wavelengths(wavelengths_nm)
        check_range(wl, self.valid_nm, "mus_reduced", self.source, provenance, "power law extended")
        if provenance is not None:
            provenance.cite(self.source, self.citation)
        return self.a_per_mm * (wl / self.ref_nm) ** -self.b

    anisotropy = None


@dataclass(frozen=True)
class TabulatedScattering:
    """Scattering coefficient and anisotropy from tables (e.g. whole blood, Bosschaart 2014)."""

    mus: Spectrum
    g: Spectrum

    @classmethod
    def whole_blood(cls) -> "TabulatedScattering":
        f = "whole_blood_scattering_bosschaart2014.csv"
        return cls(packaged_spectrum(f, "bosschaart2014", 1), packaged_spectrum(f, "bosschaart2014", 2))

    def reduced(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return self.mus(wavelengths_nm, provenance) * (1.0 - self.g(wavelengths_nm, provenance))

    def anisotropy(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return self.g(wavelengths_nm, provenance)
