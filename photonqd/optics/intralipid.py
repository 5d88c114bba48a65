"""Intralipid (soybean-oil emulsion) phantoms.

Concentration
    Intralipid is labelled by its soybean-oil content in g per 100 mL: "Intralipid 20 %" holds 200 g/L
    soybean oil, 12 g/L egg phospholipid and 22 g/L glycerol (Michels et al. 2008, Table 1). This
    module reads "X % Intralipid" in a diluted phantom the same way, as X g soybean oil per 100 mL
    (so "1 % Intralipid" is a 1:20 dilution of Intralipid 20 %), and converts it to the lipid
    (soybean oil) volume fraction φ = (X/100) / ρ_oil with ρ_oil = 0.92 g/mL. Phospholipid is not
    counted: much of it forms small vesicles that scatter little (Rotenberg et al., Biochim. Biophys.
    Acta 1086, 265 (1991)).

Scattering
    Within 350-900 nm, the range Michels et al. measured, μs(λ) = a·λ^-b and g(λ) = y0 + a_g·λ from
    their fits (S. Michels, F. Foschum, A. Kienle, Opt. Express 16, 5907 (2008), Tables 3-4), scaled
    linearly with φ from the stock (independent scattering; dense emulsions scatter less than linear).
    Outside that range the linear g law is *not* extrapolated (it reaches g ≈ 0 near 1600 nm):
    instead Mie theory is evaluated for a log-normal droplet-diameter distribution fitted to the
    Michels fits over 450-900 nm (``data/intralipid_mie_lognormal.csv``), which needs the optional
    ``miepython`` package (``pip install photonqd[mie]``).

Absorption
    μa = (1 - φ)·μa,water. Soybean-oil absorption is not included (no soybean-oil table is shipped);
    this is recorded in the provenance. n is that of water (Kedenburg 2012 Sellmeier).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .chromophores import Chromophores, water_refractive_index
from .provenance import Provenance, check_range, check_wavelengths
from .spectra import DATA_DIR
from .tissue import TissueOptics

MICHELS_CITATION = "S. Michels, F. Foschum, A. Kienle, Opt. Express 16, 5907-5925 (2008), Tables 1-4"
MICHELS_VALID_NM = (350.0, 900.0)

# Michels 2008: μs = a λ^-b [mm⁻¹, λ in nm] (Table 4); g = y0 + a_g λ (Table 3, a_g < 0).
MICHELS_2008 = {
    "Intralipid 10%": {"a": 4.857e8, "b": 2.644, "y0": 1.018, "a_g": -8.820e-4, "oil_g_per_L": 100.0},
    "Intralipid 20%": {"a": 3.873e8, "b": 2.397, "y0": 1.090, "a_g": -6.812e-4, "oil_g_per_L": 200.0},
    "Intralipid 30%": {"a": 2.645e8, "b": 2.199, "y0": 1.066, "a_g": -4.408e-4, "oil_g_per_L": 300.0},
}

# Soybean oil density ~0.92 g/mL at 20-25 °C (Codex Alimentarius CXS 210-1999: relative density
# 0.919-0.925 at 20 °C) and refractive index ~1.47 in the visible (n_D 1.466-1.470 at 40 °C, same
# standard); the dispersion of the oil is neglected (typical value).
SOYBEAN_OIL_DENSITY_G_PER_ML = 0.92
SOYBEAN_OIL_N = 1.47

STOCK_LIPID_VOLUME_FRACTION = {
    stock: p["oil_g_per_L"] / 1000.0 / SOYBEAN_OIL_DENSITY_G_PER_ML for stock, p in MICHELS_2008.items()
}

MIE_HINT = ("Intralipid scattering outside 350-900 nm (the measured range of Michels et al. 2008) needs Mie "
            "theory; install the optional extra: pip install 'photonqd[mie]' (miepython). The linear "
            "g(lambda) law is not extrapolated because it falls to g = 0 near 1600 nm.")


def _stock(stock: str) -> dict:
    if stock not in MICHELS_2008:
        raise ValueError(f"stock: must be one of {sorted(MICHELS_2008)}, got {stock!r}")
    return MICHELS_2008[stock]


def michels_mus(stock: str, wavelengths_nm) -> np.ndarray:
    """μs [mm⁻¹] of the undiluted stock, Michels 2008 Table 4 power law (no range check)."""
    p = _stock(stock)
    return p["a"] * np.asarray(wavelengths_nm, dtype=float) ** -p["b"]


def michels_g(stock: str, wavelengths_nm) -> np.ndarray:
    """g of the stock, Michels 2008 Table 3 linear law (no range check)."""
    p = _stock(stock)
    return p["y0"] + p["a_g"] * np.asarray(wavelengths_nm, dtype=float)


def mie_mus_g(wavelengths_nm, lipid_volume_fraction, median_diameter_nm, sigma_ln, provenance=None):
    """μs [mm⁻¹] and g of oil droplets in water with a log-normal number distribution of diameters.

    Requires ``miepython``; raises ImportError with installation advice otherwise.
    """
    try:
        import miepython
    except ImportError as exc:
        raise ImportError(MIE_HINT) from exc
    wl = check_wavelengths(wavelengths_nm)
    ln_d = np.log(median_diameter_nm) + sigma_ln * np.linspace(-4.0, 4.0, 161)
    d = np.exp(ln_d)
    weight = np.exp(-0.5 * ((ln_d - np.log(median_diameter_nm)) / sigma_ln) ** 2)  # per unit ln d
    volume_per_droplet = weight * np.pi * d**3 / 6.0
    n_water = water_refractive_index(wl, provenance)
    mus = np.empty_like(wl)
    g = np.empty_like(wl)
    for i, (lam, nw) in enumerate(zip(wl, n_water)):
        _, qsca, _, gi = miepython.efficiencies_mx(SOYBEAN_OIL_N / nw, np.pi * d * nw / lam)
        cross = weight * qsca * np.pi * d**2 / 4.0
        mus[i] = lipid_volume_fraction * cross.sum() / volume_per_droplet.sum() * 1e6  # nm⁻¹ -> mm⁻¹
        g[i] = np.sum(cross * gi) / cross.sum()
    return mus, g


@lru_cache(maxsize=1)
def mie_distributions() -> dict[str, tuple[float, float]]:
    """Fitted log-normal (median diameter nm, σ of ln d) per stock, from the packaged table."""
    with open(DATA_DIR / "intralipid_mie_lognormal.csv", newline="") as fh:
        rows = csv.DictReader(ln for ln in fh if not ln.startswith("#"))
        return {r["stock"]: (float(r["median_diameter_nm"]), float(r["sigma_ln"])) for r in rows}


@dataclass(frozen=True)
class Intralipid:
    """An aqueous dilution of an Intralipid stock.

    lipid_volume_fraction : soybean-oil volume fraction φ, 0 < φ <= that of the stock.
    stock : "Intralipid 10%", "Intralipid 20%" (default) or "Intralipid 30%", whose Michels 2008 fits apply.
    water : water absorption model, as in :class:`Chromophores`.
    """

    lipid_volume_fraction: float
    stock: str = "Intralipid 20%"
    water: str = "segelstein1981"
    name: str = "intralipid"

    def __post_init__(self):
        _stock(self.stock)
        phi_max = STOCK_LIPID_VOLUME_FRACTION[self.stock]
        phi = self.lipid_volume_fraction
        if not (np.isfinite(phi) and 0.0 < phi <= phi_max + 1e-12):
            raise ValueError(f"lipid_volume_fraction: must be in (0, {phi_max:.4f}] (the {self.stock} stock), "
                             f"got {phi!r}")

    @classmethod
    def from_percent(cls, percent: float, stock: str = "Intralipid 20%", **kw) -> "Intralipid":
        """From "X % Intralipid", read as X g soybean oil per 100 mL (see module docstring)."""
        if not (np.isfinite(percent) and percent > 0):
            raise ValueError(f"percent: must be > 0 (g soybean oil per 100 mL), got {percent!r}")
        return cls(percent / 100.0 / SOYBEAN_OIL_DENSITY_G_PER_ML, stock, **kw)

    @property
    def dilution(self) -> float:
        """φ relative to the stock's φ."""
        return self.lipid_volume_fraction / STOCK_LIPID_VOLUME_FRACTION[self.stock]

    def mua(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        if provenance is not None:
            provenance.note("intralipid mua: water only; soybean-oil absorption not included (no table shipped)")
        return (1.0 - self.lipid_volume_fraction) * Chromophores(self.water).water(wavelengths_nm, provenance)

    def _scattering(self, wl, provenance):
        inside = (wl >= MICHELS_VALID_NM[0]) & (wl <= MICHELS_VALID_NM[1])
        mus = self.dilution * michels_mus(self.stock, wl)
        g = michels_g(self.stock, wl)
        if provenance is not None:
            provenance.cite("michels2008", MICHELS_CITATION)
        if not np.all(inside):
            median, sigma = mie_distributions()[self.stock]
            mus_mie, g_mie = mie_mus_g(wl[~inside], self.lipid_volume_fraction, median, sigma, provenance)
            mus[~inside], g[~inside] = mus_mie, g_mie
            check_range(wl, MICHELS_VALID_NM, "intralipid mus,g", "michels2008", provenance,
                        f"Mie theory, log-normal droplets (median {median:g} nm, sigma_ln {sigma:g}) "
                        "fitted to the Michels fits")
        return mus, g

    def mus(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return self._scattering(check_wavelengths(wavelengths_nm), provenance)[0]

    def anisotropy(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return self._scattering(check_wavelengths(wavelengths_nm), provenance)[1]

    def mus_reduced(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        mus, g = self._scattering(check_wavelengths(wavelengths_nm), provenance)
        return mus * (1.0 - g)

    def refractive_index(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        return water_refractive_index(wavelengths_nm, provenance)

    def properties(self, wavelengths_nm) -> TissueOptics:
        wl = check_wavelengths(wavelengths_nm)
        prov = Provenance()
        mus, g = self._scattering(wl, prov)
        optics = TissueOptics(wl, self.mua(wl, prov), mus, mus * (1.0 - g), g, self.refractive_index(wl, prov), prov)
        for e in prov.extrapolations:
            e.quantity = f"{self.name}:{e.quantity}"
        return optics
