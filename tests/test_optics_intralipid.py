"""Intralipid: concentration mapping, Michels 2008 fits in range, Mie (or a clear error) beyond."""

import sys

import numpy as np
import pytest

from photonqd.optics import Intralipid, Provenance
from photonqd.optics.intralipid import MIE_HINT, STOCK_LIPID_VOLUME_FRACTION, michels_g, michels_mus

try:
    import miepython  # noqa: F401

    HAVE_MIE = True
except ImportError:
    HAVE_MIE = False


def test_percent_maps_to_soybean_oil_volume_fraction():
    il = Intralipid.from_percent(1.0)  # 1 g oil per 100 mL
    assert il.lipid_volume_fraction == pytest.approx(0.01 / 0.92)
    assert il.dilution == pytest.approx(1 / 20)
    assert STOCK_LIPID_VOLUME_FRACTION["Intralipid 20%"] == pytest.approx(0.2 / 0.92)


def test_michels_fits_within_range():
    il = Intralipid.from_percent(20.0)
    prov = Provenance()
    lam = np.array([500.0, 633.0, 800.0])
    np.testing.assert_allclose(il.mus(lam, prov), 3.873e8 * lam**-2.397)
    np.testing.assert_allclose(il.anisotropy(lam, prov), 1.090 - 6.812e-4 * lam)
    assert not prov.extrapolations
    # Diluted 1 % Intralipid at 633 nm: μs' ≈ 1 mm⁻¹, the classic phantom value.
    musp = Intralipid.from_percent(1.0).mus_reduced([633.0], Provenance())[0]
    assert 0.8 < musp < 1.3


@pytest.mark.skipif(not HAVE_MIE, reason="miepython not installed")
def test_mie_beyond_michels_range_is_continuous_and_flagged():
    il = Intralipid.from_percent(2.0)
    prov = Provenance()
    mus_in, mus_out = il.mus([900.0, 902.0], prov)
    assert mus_out == pytest.approx(mus_in, rel=0.06)
    g = il.anisotropy([1300.0, 1700.0], prov)
    linear = michels_g("Intralipid 20%", np.array([1300.0, 1700.0]))
    assert np.all(g > 0.1) and linear[1] < 0  # the linear law would be unphysical here
    assert {"intralipid mus,g", "n_water"} == set(prov.extrapolated_quantities)
    assert any("Mie" in e.method for e in prov.extrapolations)
    assert np.all(il.mus([1300.0], Provenance()) < michels_mus("Intralipid 20%", [900.0]) * 0.1)


def test_without_miepython_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "miepython", None)
    with pytest.raises(ImportError, match="miepython"):
        Intralipid.from_percent(1.0).mus([1300.0], Provenance())
    assert "photonqd[mie]" in MIE_HINT


@pytest.mark.parametrize("phi", [0.0, -0.1, 0.5])
def test_bad_fraction_raises(phi):
    with pytest.raises(ValueError, match="lipid_volume_fraction"):
        Intralipid(phi)
    with pytest.raises(ValueError, match="stock"):
        Intralipid(0.01, stock="Lipovenoes 10%")
