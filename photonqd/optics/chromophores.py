"""Absorption spectra of the tissue chromophores: water, oxy-/deoxy-hemoglobin, lipid, melanin.

All absorption coefficients are in mm⁻¹ for the pure chromophore (volume fraction 1); blood means
whole blood at 150 g/L hemoglobin *without* its water, so that a tissue's water fraction W counts
every water molecule once, blood water included (Jacques 2013, Phys. Med. Biol. 58 R37, eq. 1).
"""

from __future__ import annotations

import numpy as np

from .provenance import Provenance, check_range, check_wavelengths
from .spectra import Spectrum, packaged_spectrum, read_table

LN10 = float(np.log(10.0))

# Whole-blood hemoglobin: 150 g/L, 64 500 g/mol (Jacques 2013; Prahl, omlc.org/spectra/hemoglobin).
HB_G_PER_L = 150.0
HB_MOLAR_MASS_G_PER_MOL = 64500.0
BLOOD_HB_MOLAR = HB_G_PER_L / HB_MOLAR_MASS_G_PER_MOL

# Effective water volume fraction of whole blood, fitted to the Bosschaart et al. 2014 water band
# when the hemoglobin-only tail was derived (see derive_tables.hemoglobin_tail); physiological
# whole blood at Hct 45 % holds ~0.8, the fit absorbs the water-band temperature shift.
BLOOD_WATER_FRACTION = float(read_table("hbo2_molar_extinction.csv")[0]["blood_water_fraction"])

WATER_MODELS = {
    "segelstein1981": "water_segelstein1981.csv",
    "kedenburg2012": "water_kedenburg2012.csv",
}

# Melanosome absorption, Jacques 2013 (Phys. Med. Biol. 58 R37): μa = 519 (λ/500 nm)^-3.5 cm⁻¹.
# The supporting data (melanosome explosive-vaporisation thresholds and optical measurements,
# omlc.org/spectra/melanin/mua.html) span roughly the near-UV to the 1064 nm Nd:YAG line.
MELANOSOME_MUA_500_PER_MM = 51.9
MELANOSOME_EXPONENT = 3.5
MELANOSOME_VALID_NM = (350.0, 1064.0)
MELANOSOME_CITATION = ("S. L. Jacques, Phys. Med. Biol. 58, R37-R61 (2013): mua_mel = 519 (lambda/500nm)^-3.5 "
                       "cm^-1 for the melanosome interior")


def molar_to_mua(epsilon_per_M_cm, concentration_M):
    """μa [mm⁻¹] of a decadic molar extinction ε [M⁻¹ cm⁻¹] at concentration c [M]: ln(10)·ε·c/10."""
    return LN10 * np.asarray(epsilon_per_M_cm) * concentration_M / 10.0


def water_refractive_index(wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
    """Refractive index of water, Sellmeier fit of Kedenburg et al. 2012 (20 °C, 500-1600 nm).

    n² - 1 = 0.75831 λ²/(λ² - 0.01007) + 0.08495 λ²/(λ² - 8.91377), λ in µm
    (Opt. Mater. Express 2, 1588 (2012); refractiveindex.info 'formula 2' coefficients).
    """
    wl = check_wavelengths(wavelengths_nm)
    check_range(wl, (500.0, 1600.0), "n_water", "kedenburg2012", provenance, "Sellmeier formula extended")
    if provenance is not None:
        provenance.cite("kedenburg2012", "S. Kedenburg et al., Opt. Mater. Express 2, 1588-1611 (2012)")
    l2 = (wl * 1e-3) ** 2
    return np.sqrt(1.0 + 0.75831 * l2 / (l2 - 0.01007) + 0.08495 * l2 / (l2 - 8.91377))


class Chromophores:
    """The set of chromophore spectra a tissue uses.

    Parameters
    ----------
    water : ``"segelstein1981"`` (default) or ``"kedenburg2012"``. The two differ by ~10 % at the
        1450 nm band (temperature and method): that is real model uncertainty, and the difference over
        the evaluated wavelengths is written into the provenance.
    lipid : optional user :class:`Spectrum` of lipid μa [mm⁻¹] replacing van Veen et al. 2005, e.g.
        to cover the 1210 and 1730 nm lipid bands. Without it, lipid above 1098 nm is held at its
        1098 nm value and flagged as an extrapolation.
    """

    def __init__(self, water: str = "segelstein1981", lipid: Spectrum | None = None):
        if water not in WATER_MODELS:
            raise ValueError(f"water: must be one of {sorted(WATER_MODELS)}, got {water!r}")
        self.water_model = water
        self._water = packaged_spectrum(WATER_MODELS[water], water)
        self._lipid = lipid if lipid is not None else packaged_spectrum("lipid_vanveen2005.csv", "vanveen2005")
        self._hbo2 = packaged_spectrum("hbo2_molar_extinction.csv", "prahl+bosschaart2014")
        self._hb = packaged_spectrum("hb_molar_extinction.csv", "prahl+bosschaart2014")

    def water(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """μa of pure water [mm⁻¹]; records the alternative model's difference as uncertainty."""
        mua = self._water(wavelengths_nm, provenance)
        if provenance is not None:
            self._note_water_uncertainty(np.asarray(wavelengths_nm, dtype=float), mua, provenance)
        return mua

    def _note_water_uncertainty(self, wl, mua, provenance):
        other_key = next(k for k in WATER_MODELS if k != self.water_model)
        other = packaged_spectrum(WATER_MODELS[other_key], other_key)
        both = (wl >= max(other.valid_nm[0], self._water.valid_nm[0])) & (
            wl <= min(other.valid_nm[1], self._water.valid_nm[1]))
        if not np.any(both):
            return
        rel = np.abs(other(wl[both]) / mua[both] - 1.0)
        i = int(np.argmax(rel))
        provenance.note(
            f"water mua model uncertainty: {other_key} differs from {self.water_model} by up to "
            f"{100 * rel[i]:.1f} % (at {wl[both][i]:g} nm) over the evaluated wavelengths"
        )

    def oxy_blood(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """μa [mm⁻¹] of the hemoglobin in fully oxygenated whole blood (150 g/L), water excluded."""
        return molar_to_mua(self._hbo2(wavelengths_nm, provenance), BLOOD_HB_MOLAR)

    def deoxy_blood(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """μa [mm⁻¹] of the hemoglobin in fully deoxygenated whole blood (150 g/L), water excluded."""
        return molar_to_mua(self._hb(wavelengths_nm, provenance), BLOOD_HB_MOLAR)

    def lipid(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """μa of lipid [mm⁻¹] (van Veen et al. 2005 unless a user table was given)."""
        return self._lipid(wavelengths_nm, provenance)

    @staticmethod
    def melanosome(wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """μa of the melanosome interior [mm⁻¹], Jacques 2013 power law."""
        wl = check_wavelengths(wavelengths_nm)
        check_range(wl, MELANOSOME_VALID_NM, "mua_melanosome", "jacques2013", provenance,
                    "power law extended")
        if provenance is not None:
            provenance.cite("jacques2013", MELANOSOME_CITATION)
        return MELANOSOME_MUA_500_PER_MM * (wl / 500.0) ** -MELANOSOME_EXPONENT
