"""Packaged chromophore tables against the reference files in shared/data/spectra."""

import warnings
from pathlib import Path

import numpy as np
import pytest

from photonqd.optics import Chromophores, Provenance, Spectrum, molar_to_mua
from photonqd.optics.chromophores import BLOOD_HB_MOLAR
from photonqd.optics.provenance import ExtrapolationWarning
from photonqd.optics.spectra import packaged_spectrum

REF = Path(__file__).resolve().parents[2] / "shared" / "data" / "spectra"
if not REF.is_dir():
    REF = Path("/work/shared/data/spectra")
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason="reference spectra not available")


def _segelstein_mua(lam_nm):
    from photonqd.optics.derive_tables import _read_yml_table

    t = _read_yml_table(REF / "water_segelstein1981.yml", "tabulated nk")
    lam = t[:, 0] * 1e3
    mua = 4 * np.pi * t[:, 2] / (lam * 1e-6)
    return np.exp(np.interp(lam_nm, lam, np.log(mua)))


@needs_ref
def test_water_matches_segelstein_within_2_percent():
    lam = np.array([970.0, 1200.0, 1450.0, 1550.0])
    shipped = Chromophores("segelstein1981").water(lam, Provenance())
    np.testing.assert_allclose(shipped, _segelstein_mua(lam), rtol=0.02)
    # Published magnitude check: ~31 cm⁻¹ at the 1450 nm peak (README pitfall note).
    assert 2.8 < shipped[2] < 3.3


def test_water_models_differ_and_provenance_says_so():
    prov = Provenance()
    seg = Chromophores("segelstein1981").water([1450.0], prov)
    ked = Chromophores("kedenburg2012").water([1450.0], Provenance())
    assert 0.05 < abs(ked[0] / seg[0] - 1) < 0.2
    assert any("kedenburg2012 differs" in n for n in prov.notes)
    with pytest.raises(ValueError, match="water"):
        Chromophores("hale_querry1973")


@needs_ref
@pytest.mark.parametrize("lam", [450.0, 500.0, 560.0, 660.0, 760.0, 800.0, 850.0, 940.0, 1000.0])
def test_hemoglobin_matches_prahl(lam):
    prahl = np.loadtxt(REF / "hemoglobin_prahl_molar_extinction.txt", skiprows=1)
    row = prahl[prahl[:, 0] == lam][0]
    hbo2 = packaged_spectrum("hbo2_molar_extinction.csv", "x")([lam], Provenance())[0]
    hb = packaged_spectrum("hb_molar_extinction.csv", "x")([lam], Provenance())[0]
    assert hbo2 == pytest.approx(row[1], rel=1e-4)
    assert hb == pytest.approx(row[2], rel=1e-4)


def test_units_round_trip():
    # ε [M⁻¹ cm⁻¹] -> μa [mm⁻¹]: ln(10)·ε·c/10; 1 M, ε = 10/ln(10) gives 1 mm⁻¹.
    assert molar_to_mua(10.0 / np.log(10.0), 1.0) == pytest.approx(1.0)
    # Whole blood at 800 nm with Prahl's HbO2 ε = 816 M⁻¹cm⁻¹: 0.4 mm⁻¹ (Jacques 2013, ~4 cm⁻¹).
    mua = Chromophores().oxy_blood([800.0], Provenance())[0]
    assert mua == pytest.approx(np.log(10) * 816 * BLOOD_HB_MOLAR / 10, rel=0.01)
    assert BLOOD_HB_MOLAR == pytest.approx(150 / 64500)


@needs_ref
def test_lipid_units_m_to_mm():
    ref = np.loadtxt(REF / "fat_vanveen.txt", skiprows=1)
    lam = np.array([500.0, 930.0, 1040.0])
    expected = np.interp(lam, ref[:, 0], ref[:, 1]) / 1000.0
    np.testing.assert_allclose(Chromophores().lipid(lam, Provenance()), expected, rtol=1e-3)


def test_lipid_above_1098_is_flagged_and_user_table_replaces_it():
    prov = Provenance()
    Chromophores().lipid([1000.0, 1210.0, 1700.0], prov)
    (e,) = prov.extrapolations
    assert e.quantity == "mua_lipid" and e.valid_nm[1] == 1098 and e.requested_nm == (1210.0, 1700.0)
    with pytest.warns(ExtrapolationWarning, match="mua_lipid"):
        Chromophores().lipid([1300.0])
    user = Spectrum("mua_lipid_user", [400.0, 1800.0], [0.01, 0.1], "mm^-1", "user table")
    prov = Provenance()
    Chromophores(lipid=user).lipid([1300.0], prov)
    assert not prov.extrapolations


def test_hemoglobin_tail_is_continuous_and_bounded():
    prov = Provenance()
    c = Chromophores()
    below, above = c.oxy_blood([998.0, 1002.0], prov)
    assert above == pytest.approx(below, rel=0.03)
    assert not prov.extrapolations
    c.deoxy_blood([1400.0], prov)
    assert prov.extrapolated_quantities == ["epsilon_hb"]


def test_melanin_power_law():
    prov = Provenance()
    mua = Chromophores.melanosome([500.0, 1000.0], prov)
    np.testing.assert_allclose(mua, [51.9, 51.9 * 2**-3.5])
    assert not prov.extrapolations
    Chromophores.melanosome([1300.0], prov)
    assert prov.extrapolated_quantities == ["mua_melanosome"]


@pytest.mark.parametrize("bad", [[0.0], [-5.0], [np.nan], []])
def test_bad_wavelengths_raise(bad):
    with pytest.raises(ValueError, match="wavelengths_nm"):
        Chromophores().water(bad)


def test_no_warning_inside_range():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Chromophores().water([800.0])
