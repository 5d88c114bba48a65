"""Quantum dots: published sizing curves, absorption/emission models, presets, validation."""

import numpy as np
import pytest

from photonqd.optics import (
    ExcitonAbsorption,
    GaussianEmission,
    Provenance,
    QuantumDot,
    TabulatedEmission,
    moreels2009_bandgap_ev,
    moreels2009_diameter_nm,
    moreels2009_epsilon400,
    qd_preset,
    qd_preset_names,
    yu2003_diameter_nm,
    yu2003_epsilon,
)
from photonqd.optics.quantum_dots import HC_EV_NM


def test_moreels_pbs_5nm():
    # ε400 = 0.0233 d³ µM⁻¹cm⁻¹ -> 2.91e6 M⁻¹cm⁻¹ at d = 5 nm (Moreels 2009).
    assert moreels2009_epsilon400(5.0) == pytest.approx(2.9125e6)
    # E = 0.41 + 1/(0.0252·25 + 0.283·5) = 0.41 + 1/2.045 = 0.8990 eV -> 1379 nm.
    assert moreels2009_bandgap_ev(5.0) == pytest.approx(0.89900, abs=1e-4)
    assert HC_EV_NM / moreels2009_bandgap_ev(5.0) == pytest.approx(1379.1, abs=0.5)
    assert moreels2009_diameter_nm(moreels2009_bandgap_ev(5.0)) == pytest.approx(5.0)


def test_yu2003_cdse_example():
    # CdSe first exciton at 550 nm -> D ≈ 3.0 nm; ε = 5857 D^2.65 (Yu et al. 2003).
    d = yu2003_diameter_nm("CdSe", 550.0, Provenance())
    assert d == pytest.approx(3.04, abs=0.02)
    assert yu2003_epsilon("CdSe", d) == pytest.approx(5857 * d**2.65)
    prov = Provenance()
    yu2003_diameter_nm("CdTe", 800.0, prov)
    assert prov.extrapolated_quantities == ["yu2003_diameter[CdTe]"]
    with pytest.raises(ValueError, match="material"):
        yu2003_diameter_nm("InP", 600.0)


def test_emission_gaussian_in_energy_is_normalised():
    em = GaussianEmission(1300.0, 135.0)
    lam = np.linspace(700.0, 3000.0, 20001)
    assert np.trapezoid(em.pdf(lam), lam) == pytest.approx(1.0, abs=1e-3)
    assert em.band_fraction(700.0, 3000.0) == pytest.approx(1.0, abs=1e-3)
    # Half of the photons lie above the peak energy, i.e. below the peak wavelength.
    assert em.band_fraction(500.0, 1300.0) == pytest.approx(0.5, abs=1e-9)
    tab = TabulatedEmission(lam, em.pdf(lam) * 7.0)
    assert tab.band_fraction(1200.0, 1400.0) == pytest.approx(em.band_fraction(1200.0, 1400.0), abs=1e-3)


@pytest.mark.parametrize("fwhm", [-10.0, 0.0, np.nan])
def test_bad_fwhm_raises(fwhm):
    with pytest.raises(ValueError, match="fwhm_nm"):
        GaussianEmission(800.0, fwhm)


def test_absorption_model_and_conversion():
    absn = ExcitonAbsorption(800.0, 2e5, 0.1, ((400.0, 4e6),))
    prov = Provenance()
    eps = absn([400.0, 800.0, 600.0, 1000.0], prov)
    assert eps[0] == pytest.approx(4e6) and eps[1] == pytest.approx(2e5)
    assert 2e5 < eps[2] < 4e6 and eps[3] < 1e-6 * eps[1]
    qd = QuantumDot("x", absn, 0.5, GaussianEmission(820.0, 40.0))
    # 1 µM of ε = 2e5 M⁻¹cm⁻¹: μa = ln(10)·2e5·1e-6/10 = 0.0461 mm⁻¹.
    assert qd.mua_per_uM([800.0], prov)[0] == pytest.approx(np.log(10) * 0.02)
    assert qd.brightness(800.0) == pytest.approx(1e5)
    absn([300.0], prov)
    assert prov.extrapolated_quantities == ["epsilon_qd"]


@pytest.mark.parametrize("qy", [1.2, -0.1, float("nan")])
def test_bad_quantum_yield_raises(qy):
    with pytest.raises(ValueError, match="quantum_yield"):
        QuantumDot("x", ExcitonAbsorption(800.0, 1e5, 0.1, ((400.0, 1e6),)), qy, GaussianEmission(820.0, 40.0))


def test_bad_absorption_raises():
    with pytest.raises(ValueError, match="anchors"):
        ExcitonAbsorption(800.0, 1e5, 0.1, ((900.0, 1e6),))
    with pytest.raises(ValueError, match="exciton_fwhm_ev"):
        ExcitonAbsorption(800.0, 1e5, -0.1, ((400.0, 1e6),))


def test_presets_exist_and_label_typical_values():
    names = qd_preset_names()
    for required in ("cdtese_zns_800", "pbs_cds_1100", "pbs_cds_1300", "pbs_cds_1550", "ag2s_1200", "cuins2_zns_780"):
        assert required in names
    for name in names:
        qd = qd_preset(name)
        prov = Provenance()
        assert qd.epsilon([808.0], prov)[0] > 0
        assert any(k.startswith(f"{name}.") for k in prov.typical)
    pbs = qd_preset("pbs_cds_1300")
    d = moreels2009_diameter_nm(HC_EV_NM / 1250.0)
    assert pbs.epsilon([400.0], Provenance())[0] == pytest.approx(moreels2009_epsilon400(d))
