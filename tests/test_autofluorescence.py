"""Tissue autofluorescence: defaults for every tissue preset, NIR-II below NIR-I, overrides, bad inputs."""

import pytest

from photonqd.autofluorescence import Autofluorescence, default_autofluorescence, default_names
from photonqd.optics import GaussianEmission, Provenance, TabulatedEmission, preset_names


def test_defaults_exist_for_every_tissue_preset():
    assert set(preset_names()) <= set(default_names())
    for name in preset_names():
        af = default_autofluorescence(name)
        assert 0 < af.yield_per_absorbed < 1
        assert af.kind in ("estimate", "upper_bound")
        assert af.excitation_nm == 808
        assert af.sources["basis"] and af.typical


def test_nir2_band_yield_below_nir1():
    for name in preset_names():
        af = default_autofluorescence(name)
        nir1, nir2 = af.band_yield(700, 975), af.band_yield(1000, 1600)
        assert nir2 < nir1
        # the shipped spectrum is fitted to the 'more than two orders of magnitude' bound
        assert nir2 / nir1 == pytest.approx(1e-2, rel=0.02)
        assert af.band_yield(1000, 1700) < af.band_yield(850, 950)


def test_overrides():
    af = default_autofluorescence("liver", yield_per_absorbed=2e-4)
    assert af.yield_per_absorbed == 2e-4 and af.kind == "user"
    assert "yield_per_absorbed" not in af.typical
    em = TabulatedEmission([850, 900, 1000, 1100], [1.0, 0.5, 0.1, 0.0])
    af = default_autofluorescence("skull", emission=em)
    assert af.band_fraction(850, 1100) == pytest.approx(1.0, rel=1e-3)
    custom = Autofluorescence(1e-4, GaussianEmission(900, 100), excitation_nm=785)
    assert custom.band_yield(800, 1000) == pytest.approx(1e-4 * custom.band_fraction(800, 1000))
    prov = default_autofluorescence("dermis").provenance("dermis", Provenance())
    assert any("upper bound" in n for n in prov.notes) and prov.sources


@pytest.mark.parametrize("kw, match", [
    (dict(yield_per_absorbed=-1e-3), "yield_per_absorbed"),
    (dict(yield_per_absorbed=1.5), "yield_per_absorbed"),
    (dict(yield_per_absorbed="high"), "yield_per_absorbed"),
    (dict(excitation_nm=-808.0), "excitation_nm"),
    (dict(kind="guess"), "kind"),
])
def test_bad_inputs_raise(kw, match):
    with pytest.raises(ValueError, match=match):
        default_autofluorescence("dermis", **kw)


def test_bad_emission_and_tissue():
    with pytest.raises(TypeError, match="emission"):
        Autofluorescence(1e-3, emission=[850, 900])
    with pytest.raises(ValueError, match="tissue_name"):
        default_autofluorescence("kidney")
    with pytest.raises(ValueError, match="band"):
        default_autofluorescence("liver").band_fraction(1000, 900)
