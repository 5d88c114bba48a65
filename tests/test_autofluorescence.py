"""Tissue autofluorescence: defaults for every tissue preset, NIR-II below NIR-I with a NIR-II tail,
lifetime, overrides, bad inputs."""

import math

import numpy as np
import pytest

from photonqd.autofluorescence import Autofluorescence, default_autofluorescence, default_names, nir_af_emission
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
        # the tail's weight is solved for the measured 'more than two orders of magnitude' (JBO 2023)
        assert nir2 / nir1 == pytest.approx(1e-2, rel=1e-3)
        assert af.band_yield(1000, 1700) < af.band_yield(850, 950)
        assert af.lifetime_ns == 0.2 and "lifetime_ns" in af.typical


def test_nir2_af_reaches_the_nir2_windows():
    # measured organ AF falls by orders, not by 1e6, into NIR-IIa/b: per photon in 820-900 nm the
    # 1250-1400 and 1500-1650 nm windows get 1e-3 to 1e-2 (the single Gaussian gave 7e-7 and 2e-11)
    af = default_autofluorescence("liver")
    nir1 = af.band_fraction(820, 900)
    iia, iib = af.band_fraction(1250, 1400) / nir1, af.band_fraction(1500, 1650) / nir1
    assert 1e-3 < iib < iia < 1e-2
    # the NIR-II photons are not crowded below 1100 nm: 1250-1600 nm holds a fifth or more of 1000-1600 nm
    assert af.band_fraction(1250, 1600) > 0.2 * af.band_fraction(1000, 1600)
    old = GaussianEmission(848, 129)
    assert old.band_fraction(1250, 1600) < 1e-4 * old.band_fraction(1000, 1600)


def test_nir_af_emission_shape():
    em = nir_af_emission(848, 100, nir2_ratio=0.02, tail_decay_nm=250)
    assert em.band_fraction(500, 1700) == pytest.approx(1.0, abs=1e-4)
    assert em.band_fraction(1000, 1600) / em.band_fraction(700, 975) == pytest.approx(0.02, rel=1e-3)
    # past the core the spectrum is the tail: per nm it falls by e over tail_decay_nm
    assert em.pdf([1300.0])[0] / em.pdf([1550.0])[0] == pytest.approx(math.e, rel=1e-3)
    assert np.all(np.diff(em.pdf(np.linspace(1000.5, 1700, 200))) < 0)
    assert em.pdf([1750.0])[0] == 0
    # NIR-I is the core's: it peaks where the Gaussian does (per nm, 844 nm for an energy peak at 848 nm)
    wl = np.linspace(800, 900, 1001)
    assert wl[np.argmax(em.pdf(wl))] == pytest.approx(wl[np.argmax(GaussianEmission(848, 100).pdf(wl))], abs=1)


@pytest.mark.parametrize("args, match", [
    ((848, 100, 0.0, 300), "nir2_ratio"),
    ((848, 100, 1.2, 300), "nir2_ratio"),
    ((848, 100, 0.01, 0.0), "tail_decay_nm"),
    ((848, 200, 0.01, 300), "emission_fwhm_nm"),  # its own tail already exceeds the ratio
])
def test_nir_af_emission_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        nir_af_emission(*args)


def test_overrides():
    af = default_autofluorescence("liver", yield_per_absorbed=2e-4)
    assert af.yield_per_absorbed == 2e-4 and af.kind == "user"
    assert "yield_per_absorbed" not in af.typical
    em = TabulatedEmission([850, 900, 1000, 1100], [1.0, 0.5, 0.1, 0.0])
    af = default_autofluorescence("skull", emission=em)
    assert af.band_fraction(850, 1100) == pytest.approx(1.0, rel=1e-3)
    custom = Autofluorescence(1e-4, GaussianEmission(900, 100), excitation_nm=785)
    assert custom.band_yield(800, 1000) == pytest.approx(1e-4 * custom.band_fraction(800, 1000))
    # a measured lifetime replaces the typical one without touching the yield's kind
    af = default_autofluorescence("dermis", lifetime_ns=1.5)
    assert af.lifetime_ns == 1.5 and af.kind == "upper_bound" and "lifetime_ns" not in af.typical
    prov = default_autofluorescence("dermis").provenance("dermis", Provenance())
    assert any("upper bound" in n for n in prov.notes) and prov.sources


@pytest.mark.parametrize("kw, match", [
    (dict(yield_per_absorbed=-1e-3), "yield_per_absorbed"),
    (dict(yield_per_absorbed=1.5), "yield_per_absorbed"),
    (dict(yield_per_absorbed="high"), "yield_per_absorbed"),
    (dict(excitation_nm=-808.0), "excitation_nm"),
    (dict(lifetime_ns=0.0), "lifetime_ns"),
    (dict(lifetime_ns=math.inf), "lifetime_ns"),
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
