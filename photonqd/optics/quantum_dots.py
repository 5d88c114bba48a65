"""Quantum dots: absorption ε(λ) [M⁻¹ cm⁻¹], quantum yield, emission spectrum, brightness.

Sizing curves
    Yu et al. 2003 (W. W. Yu, L. Qu, W. Guo, X. Peng, Chem. Mater. 15, 2854-2860): diameter from the
    first-exciton wavelength and ε at that peak for CdTe, CdSe and CdS.
    Moreels et al. 2009 (I. Moreels et al., ACS Nano 3, 3023-3030): PbS band gap
    E = 0.41 + 1/(0.0252 d² + 0.283 d) eV and ε₄₀₀ = 0.0233 d³ µM⁻¹ cm⁻¹ (d in nm).

Absorption model
    :class:`ExcitonAbsorption` joins cited or typical anchor points: the first-exciton peak
    (ε_X at λ_X, with a Gaussian low-energy edge in photon energy) and one or more shorter-wavelength
    anchors (e.g. ε₄₀₀), interpolated linearly in log ε against photon energy. The valley after the
    exciton peak and higher excitonic peaks are not modelled. A measured spectrum can be supplied
    instead as a :class:`~photonqd.optics.spectra.Spectrum` of ε in M⁻¹ cm⁻¹.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from math import erf, log, sqrt

import numpy as np

from ..tables import preset_row, read_keyed_csv
from .chromophores import LN10
from .provenance import Provenance, check_range, check_wavelengths
from .spectra import DATA_DIR, Spectrum

HC_EV_NM = 1239.841984  # h·c [eV nm]
FWHM_TO_SIGMA = 1.0 / (2.0 * sqrt(2.0 * log(2.0)))

YU_2003 = "W. W. Yu, L. Qu, W. Guo, X. Peng, Chem. Mater. 15, 2854-2860 (2003)"
MOREELS_2009 = "I. Moreels et al., ACS Nano 3, 3023-3030 (2009)"

# Yu 2003: D [nm] = polynomial in the first-exciton wavelength λ [nm] (highest power first), and
# ε at the first exciton = A·D^p [M⁻¹ cm⁻¹]. Ranges: first-exciton wavelengths of the calibration
# samples, approximately.
YU_2003_DIAMETER = {
    "CdTe": (9.8127e-7, -1.7147e-3, 1.0064, -194.84),
    "CdSe": (1.6122e-9, -2.6575e-6, 1.6242e-3, -0.4277, 41.57),
    "CdS": (-6.6521e-8, 1.9557e-4, -9.2352e-2, 13.29),
}
YU_2003_EPSILON = {"CdTe": (10043.0, 2.12), "CdSe": (5857.0, 2.65), "CdS": (21536.0, 2.3)}
YU_2003_VALID_NM = {"CdTe": (500.0, 710.0), "CdSe": (450.0, 650.0), "CdS": (300.0, 470.0)}

# Moreels 2009 sizes studied, approximately (nm).
MOREELS_2009_VALID_D_NM = (3.0, 9.0)


def _material(material):
    if material not in YU_2003_DIAMETER:
        raise ValueError(f"material: must be one of {sorted(YU_2003_DIAMETER)}, got {material!r}")


def yu2003_diameter_nm(material: str, first_exciton_nm, provenance: Provenance | None = None):
    """Core diameter [nm] from the first-exciton absorption wavelength (Yu et al. 2003)."""
    _material(material)
    wl = check_wavelengths(first_exciton_nm)
    check_range(wl, YU_2003_VALID_NM[material], f"yu2003_diameter[{material}]", "yu2003", provenance,
                "sizing polynomial extended")
    return np.polyval(YU_2003_DIAMETER[material], wl)


def yu2003_epsilon(material: str, diameter_nm):
    """ε at the first-exciton peak [M⁻¹ cm⁻¹] for a core diameter [nm] (Yu et al. 2003)."""
    _material(material)
    d = np.asarray(diameter_nm, dtype=float)
    if np.any(d <= 0):
        raise ValueError("diameter_nm: must be > 0")
    a, p = YU_2003_EPSILON[material]
    return a * d**p


def moreels2009_bandgap_ev(diameter_nm, provenance: Provenance | None = None):
    """PbS band gap [eV] for a diameter [nm]: 0.41 + 1/(0.0252 d² + 0.283 d) (Moreels et al. 2009)."""
    d = np.asarray(diameter_nm, dtype=float)
    if np.any(d <= 0):
        raise ValueError("diameter_nm: must be > 0")
    check_range(d, MOREELS_2009_VALID_D_NM, "moreels2009_bandgap(d)", "moreels2009", provenance,
                "sizing curve extended")
    return 0.41 + 1.0 / (0.0252 * d**2 + 0.283 * d)


def moreels2009_diameter_nm(bandgap_ev):
    """Inverse of :func:`moreels2009_bandgap_ev` (band gap must exceed the 0.41 eV bulk gap)."""
    e = np.asarray(bandgap_ev, dtype=float)
    if np.any(e <= 0.41):
        raise ValueError("bandgap_ev: must exceed the bulk PbS gap of 0.41 eV")
    c = 1.0 / (e - 0.41)
    return (-0.283 + np.sqrt(0.283**2 + 4 * 0.0252 * c)) / (2 * 0.0252)


def moreels2009_epsilon400(diameter_nm):
    """ε at 400 nm [M⁻¹ cm⁻¹] of PbS: 0.0233·d³ µM⁻¹ cm⁻¹ (Moreels et al. 2009)."""
    d = np.asarray(diameter_nm, dtype=float)
    if np.any(d <= 0):
        raise ValueError("diameter_nm: must be > 0")
    return 0.0233e6 * d**3


@dataclass(frozen=True)
class ExcitonAbsorption:
    """ε(λ) [M⁻¹ cm⁻¹] from a first-exciton peak and shorter-wavelength anchors.

    exciton_nm, exciton_epsilon : first-exciton peak wavelength [nm] and ε there.
    exciton_fwhm_ev : FWHM [eV] of the peak's Gaussian low-energy edge, > 0.
    anchors : ((λ [nm], ε), ...) at wavelengths shorter than the exciton peak.
    Wavelengths shorter than the shortest anchor hold its ε and are flagged as extrapolated.
    """

    exciton_nm: float
    exciton_epsilon: float
    exciton_fwhm_ev: float
    anchors: tuple[tuple[float, float], ...]
    source: str = "qd"

    def __post_init__(self):
        for name in ("exciton_nm", "exciton_epsilon", "exciton_fwhm_ev"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name}: must be > 0, got {v!r}")
        if not self.anchors or any(l <= 0 or l >= self.exciton_nm or e <= 0 for l, e in self.anchors):
            raise ValueError("anchors: need at least one (wavelength, epsilon) with 0 < wavelength < exciton_nm "
                             "and epsilon > 0")

    def __call__(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        wl = check_wavelengths(wavelengths_nm)
        pts = sorted([(self.exciton_nm, self.exciton_epsilon), *self.anchors], reverse=True)
        energy = np.array([HC_EV_NM / l for l, _ in pts])
        log_eps = np.log([e for _, e in pts])
        check_range(wl, (pts[-1][0], np.inf), "epsilon_qd", self.source, provenance,
                    "held at shortest anchor")
        e = HC_EV_NM / wl
        sigma = self.exciton_fwhm_ev * FWHM_TO_SIGMA
        edge = log_eps[0] - 0.5 * ((e - energy[0]) / sigma) ** 2
        return np.exp(np.where(e < energy[0], edge, np.interp(e, energy, log_eps)))


@dataclass(frozen=True)
class GaussianEmission:
    """Emission spectrum Gaussian in photon energy, given its peak [nm] and FWHM [nm] at the peak."""

    peak_nm: float
    fwhm_nm: float

    def __post_init__(self):
        if not (np.isfinite(self.peak_nm) and self.peak_nm > 0):
            raise ValueError(f"peak_nm: must be > 0, got {self.peak_nm!r}")
        if not (np.isfinite(self.fwhm_nm) and 0 < self.fwhm_nm < 2 * self.peak_nm):
            raise ValueError(f"fwhm_nm: must be > 0 and < 2*peak_nm, got {self.fwhm_nm!r}")

    @property
    def peak_ev(self) -> float:
        return HC_EV_NM / self.peak_nm

    @property
    def fwhm_ev(self) -> float:
        """Energy FWHM spanning λ_peak ± FWHM/2."""
        return HC_EV_NM / (self.peak_nm - self.fwhm_nm / 2) - HC_EV_NM / (self.peak_nm + self.fwhm_nm / 2)

    def pdf(self, wavelengths_nm) -> np.ndarray:
        """Probability density per nm (normalised over all wavelengths)."""
        wl = check_wavelengths(wavelengths_nm)
        sigma = self.fwhm_ev * FWHM_TO_SIGMA
        e = HC_EV_NM / wl
        return np.exp(-0.5 * ((e - self.peak_ev) / sigma) ** 2) / (sigma * sqrt(2 * np.pi)) * HC_EV_NM / wl**2

    def band_fraction(self, lo_nm: float, hi_nm: float) -> float:
        """Fraction of emitted photons with wavelength in [lo_nm, hi_nm]."""
        if not 0 < lo_nm < hi_nm:
            raise ValueError("band: need 0 < lo_nm < hi_nm")
        sigma = self.fwhm_ev * FWHM_TO_SIGMA
        z = lambda lam: (HC_EV_NM / lam - self.peak_ev) / (sigma * sqrt(2.0))  # noqa: E731
        return 0.5 * (erf(z(lo_nm)) - erf(z(hi_nm)))


@dataclass(frozen=True)
class TabulatedEmission:
    """Emission spectrum from a table (any positive scale; normalised here)."""

    wavelengths_nm: np.ndarray
    intensity: np.ndarray

    def __post_init__(self):
        wl = check_wavelengths(self.wavelengths_nm)
        v = np.asarray(self.intensity, dtype=float)
        if wl.shape != v.shape or wl.size < 2 or np.any(np.diff(wl) <= 0) or np.any(v < 0) or v.sum() <= 0:
            raise ValueError("emission table: increasing wavelengths and non-negative intensities of equal length")
        object.__setattr__(self, "wavelengths_nm", wl)
        object.__setattr__(self, "intensity", v / np.trapezoid(v, wl))

    def pdf(self, wavelengths_nm) -> np.ndarray:
        return np.interp(check_wavelengths(wavelengths_nm), self.wavelengths_nm, self.intensity, left=0, right=0)

    def band_fraction(self, lo_nm: float, hi_nm: float) -> float:
        if not 0 < lo_nm < hi_nm:
            raise ValueError("band: need 0 < lo_nm < hi_nm")
        grid = np.linspace(lo_nm, hi_nm, 2001)
        return float(np.trapezoid(self.pdf(grid), grid))


@dataclass(frozen=True)
class QuantumDot:
    """A QD species.

    absorption : :class:`ExcitonAbsorption` or a :class:`Spectrum` of ε [M⁻¹ cm⁻¹].
    quantum_yield : in (0, 1].
    emission : :class:`GaussianEmission` or :class:`TabulatedEmission`.
    sources : citations; typical : quantities whose values are typical, not product-specific.
    lifetime_ns : mean luminescence lifetime [ns], > 0, or None (unknown). Optional, because only time
        gating (:mod:`photonqd.gating`) needs it; a QD without one is imaged CW as before, and gating it
        raises a ValueError naming ``lifetime_ns``. Every preset has one.
    """

    name: str
    absorption: ExcitonAbsorption | Spectrum
    quantum_yield: float
    emission: GaussianEmission | TabulatedEmission
    sources: dict[str, str] = field(default_factory=dict)
    typical: dict[str, str] = field(default_factory=dict)
    lifetime_ns: float | None = None

    def __post_init__(self):
        if not (np.isfinite(self.quantum_yield) and 0 <= self.quantum_yield <= 1):
            raise ValueError(f"quantum_yield: must be in [0, 1], got {self.quantum_yield!r}")
        if self.lifetime_ns is not None:
            try:
                tau = float(self.lifetime_ns)
            except (TypeError, ValueError):
                tau = float("nan")
            if not (np.isfinite(tau) and tau > 0):
                raise ValueError(f"lifetime_ns: must be a finite number > 0 ns, or None, got {self.lifetime_ns!r}")
            object.__setattr__(self, "lifetime_ns", tau)

    def _provenance(self, provenance):
        if provenance is not None:
            provenance.sources.update({f"{self.name}.{k}": v for k, v in self.sources.items()})
            provenance.typical.update({f"{self.name}.{k}": v for k, v in self.typical.items()})

    def epsilon(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Decadic molar extinction ε [M⁻¹ cm⁻¹]."""
        self._provenance(provenance)
        return self.absorption(wavelengths_nm, provenance)

    def mua_per_uM(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Absorption coefficient per µM of QDs [mm⁻¹ µM⁻¹] = ln(10)·ε·1e-6/10."""
        return LN10 * self.epsilon(wavelengths_nm, provenance) * 1e-6 / 10.0

    def brightness(self, excitation_nm: float, provenance: Provenance | None = None) -> float:
        """ε(λex)·QY [M⁻¹ cm⁻¹]."""
        return float(self.epsilon([excitation_nm], provenance)[0] * self.quantum_yield)


# -- presets ------------------------------------------------------------------------------------
# Typical PbS first-exciton ε for d = 5 nm; Moreels 2009 found ε at the gap to scale as d^1.3.
PBS_EXCITON_EPSILON_5NM_TYPICAL = 1.5e5


def moreels2009_absorption(exciton_nm: float, exciton_fwhm_ev: float, source: str) -> tuple[ExcitonAbsorption, str]:
    """A PbS QD's absorption sized from its first exciton (Moreels 2009): the core diameter from
    the exciton's energy, ε₄₀₀ of that core as the anchor, the typical exciton ε scaled as d^1.3;
    and a note of the sizing for the provenance."""
    d = float(moreels2009_diameter_nm(HC_EV_NM / exciton_nm))
    anchors = ((400.0, float(moreels2009_epsilon400(d))),)
    exciton_eps = PBS_EXCITON_EPSILON_5NM_TYPICAL * (d / 5.0) ** 1.3
    note = f"{MOREELS_2009}: PbS core d = {d:.2f} nm from the first exciton; eps400 of the core"
    return ExcitonAbsorption(exciton_nm, exciton_eps, exciton_fwhm_ev, anchors, source=source), note


@lru_cache(maxsize=1)
def qd_preset_rows() -> dict[str, dict[str, str]]:
    return read_keyed_csv(DATA_DIR / "qd_presets.csv", "name")


def qd_preset_names() -> list[str]:
    return list(qd_preset_rows())


def qd_preset(name: str) -> QuantumDot:
    """A QD preset from ``data/qd_presets.csv`` (sources and typical labels in the table)."""
    r = preset_row(qd_preset_rows(), name, "name", "QD")
    exciton_nm = float(r["exciton_nm"])
    sources = {"preset": r["sources"], "lifetime": r["lifetime_sources"]}
    if r["sizing"] == "moreels2009":
        absorption, sources["sizing"] = moreels2009_absorption(exciton_nm, float(r["exciton_fwhm_ev"]), name)
    else:
        anchors = ((float(r["anchor_nm"]), float(r["anchor_epsilon"])),)
        absorption = ExcitonAbsorption(exciton_nm, float(r["exciton_epsilon"]), float(r["exciton_fwhm_ev"]),
                                       anchors, source=name)
    basis = "typical of the literature for this QD class, not measured for a specific product"
    return QuantumDot(
        name=name,
        absorption=absorption,
        quantum_yield=float(r["quantum_yield"]),
        emission=GaussianEmission(float(r["emission_peak_nm"]), float(r["emission_fwhm_nm"])),
        sources=sources,
        typical={q: basis for q in r["typical"].split(";") if q},
        lifetime_ns=float(r["lifetime_ns"]),
    )
