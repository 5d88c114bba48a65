"""Tissue model: Jacques 2013 scattering, chromophore mixing, presets and input validation."""

import numpy as np
import pytest

from photonqd.optics import (
    BLOOD_WATER_FRACTION,
    JacquesScattering,
    PowerLawScattering,
    Provenance,
    Tissue,
    preset_names,
    tissue_preset,
)
from photonqd.optics.derive_tables import fit_brain_scattering
from photonqd.optics.presets import preset_rows
from photonqd.optics.scattering import JACQUES_2013_TABLE2

from test_optics_spectra import REF, needs_ref


@pytest.mark.parametrize("tissue_type", sorted(JACQUES_2013_TABLE2))
def test_jacques_eq2_reproduces_table2_at_500nm(tissue_type):
    a_cm = JACQUES_2013_TABLE2[tissue_type][0]
    musp = JacquesScattering.from_table2(tissue_type).reduced([500.0], Provenance())
    assert musp[0] == pytest.approx(a_cm / 10.0)


def test_jacques_eq2_worked_value_at_800nm():
    """Skin (a' 48.0 cm⁻¹, f_Ray 0.409, b_Mie 0.702) at 800 nm, by hand:
    (800/500)^-4 = 0.152588, (800/500)^-0.702 = 0.719049,
    μs' = 48.0 × (0.409 × 0.152588 + 0.591 × 0.719049) = 48.0 × 0.487366 = 23.39 cm⁻¹ = 2.339 mm⁻¹."""
    musp = JacquesScattering.from_table2("skin").reduced([800.0], Provenance())[0]
    assert musp == pytest.approx(2.3394, abs=5e-4)


def test_scattering_extrapolation_recorded():
    prov = Provenance()
    JacquesScattering.from_table2("skin").reduced([800.0, 1300.0, 1600.0], prov)
    (e,) = prov.extrapolations
    assert e.quantity == "mus_reduced" and e.requested_nm == (1300.0, 1600.0)


def _tissue(**kw):
    args = dict(name="t", blood=0.02, saturation=0.7, water=0.7, fat=0.1, melanin=0.0,
                scattering=JacquesScattering.from_table2("soft tissue"), g=0.9, n=1.37)
    args.update(kw)
    return Tissue(**args)


def test_mua_is_the_chromophore_sum_with_blood_water_counted_once():
    t = _tissue()
    lam = np.array([600.0, 800.0, 1000.0])
    c, p = t.chromophores, Provenance()
    expected = (0.02 * (0.7 * c.oxy_blood(lam, p) + 0.3 * c.deoxy_blood(lam, p))
                + 0.7 * c.water(lam, p) + 0.1 * c.lipid(lam, p))
    np.testing.assert_allclose(t.mua(lam, Provenance()), expected)
    mus = t.mus(lam, Provenance())
    np.testing.assert_allclose(mus * 0.1, t.mus_reduced(lam, Provenance()))


@needs_ref
def test_whole_blood_preset_reproduces_bosschaart():
    """Hemoglobin-only tail + W_blood·water must give back the whole-blood data it came from."""
    ref = np.loadtxt(REF / "whole_blood_bosschaart2014.txt", skiprows=1)
    blood = tissue_preset("whole_blood", saturation=1.0)
    for lam in (1050.0, 1100.0, 1200.0):
        row = ref[ref[:, 0] == lam][0]
        # tail is scaled by 0.896 to join Prahl at 1000 nm: allow that offset
        assert blood.mua([lam], Provenance())[0] == pytest.approx(row[1], rel=0.12)
    assert blood.water == pytest.approx(BLOOD_WATER_FRACTION, abs=1e-4)
    props = blood.properties([800.0])
    assert props.g[0] == pytest.approx(0.9833, abs=1e-3)


@pytest.mark.parametrize("field,value", [("blood", -0.1), ("water", 1.2), ("saturation", 2.0),
                                         ("fat", np.nan), ("melanin", -1e-3)])
def test_fraction_out_of_range_raises(field, value):
    with pytest.raises(ValueError, match=field):
        _tissue(**{field: value})


def test_sum_above_one_raises():
    with pytest.raises(ValueError, match="sum to at most 1"):
        _tissue(water=0.7, fat=0.35)


def test_water_must_include_blood_water():
    with pytest.raises(ValueError, match="counted once"):
        _tissue(blood=0.5, water=0.1, fat=0.0)


@pytest.mark.parametrize("kw,match", [({"g": 1.0}, "g"), ({"g": -0.1}, "g"), ({"n": 0.9}, "n"),
                                      ({"g": None}, "g")])
def test_bad_g_n_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        _tissue(**kw)


def test_bad_scattering_parameters_raise():
    with pytest.raises(ValueError, match="f_ray"):
        JacquesScattering(2.0, 1.5, 1.0)
    with pytest.raises(ValueError, match="a_prime_per_mm"):
        JacquesScattering(-2.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="b"):
        PowerLawScattering(1.0, -1.0, (500, 1000), "s", "c")


def test_wavelength_dependent_g_and_n():
    t = _tissue(g=lambda lam: 0.8 + 1e-4 * (lam - 500.0), n=lambda lam: 1.40 - 1e-5 * lam)
    props = t.properties([500.0, 1000.0])
    np.testing.assert_allclose(props.g, [0.8, 0.85])
    np.testing.assert_allclose(props.n, [1.395, 1.39])


def test_all_presets_load_with_sources():
    names = preset_names()
    for required in ("epidermis", "dermis", "subcutaneous_fat", "skeletal_muscle", "brain_grey_matter",
                     "brain_white_matter", "skull", "liver", "breast", "tumour_generic", "whole_blood"):
        assert required in names
    for name in names:
        props = tissue_preset(name).properties(np.arange(400.0, 1701.0, 100.0))
        assert np.all(props.mua > 0) and np.all(props.mus > 0) and np.all((props.g >= 0) & (props.g < 1))
        assert any(k.endswith(".composition") for k in props.provenance.sources)


def test_brain_presets_match_their_documented_fit():
    fits = fit_brain_scattering()
    rows = preset_rows()
    for tissue, name in (("grey", "brain_grey_matter"), ("white", "brain_white_matter")):
        a, b = fits[tissue]
        assert float(rows[name]["scat_a_per_mm"]) == pytest.approx(a, abs=1e-3)
        assert float(rows[name]["scat_b"]) == pytest.approx(b, abs=1e-3)


def test_preset_override_and_unknown_name():
    assert tissue_preset("dermis", blood=0.01).blood == 0.01
    with pytest.raises(ValueError, match="unknown tissue preset"):
        tissue_preset("kidney")
