"""Engine features behind fluorescence: fluorophore absorption, voxel emission sources, per-bin
detection efficiency and the bounded record of detected photons."""

import numpy as np
import pytest

import photonqd as pq
from photonqd.sampling import alias_probabilities, alias_table
from photonqd.sources import VoxelEmission
from photonqd.testing import zscore

OPTICS = np.array([[[0, 0, 0, 1], [0.05, 5, 0.8, 1.4]],
                   [[0, 0, 0, 1], [0.02, 4, 0.85, 1.4]],
                   [[0, 0, 0, 1], [0.03, 3, 0.9, 1.4]]])
ABSORPTION = np.array([[0.02, 0.001, 0.0005], [0.004, 0.0, 0.002]])  # 1/mm per µM, per bin


def labelled_medium():
    conc = np.zeros((2, 6, 6, 6), np.float32)
    conc[0, 2:4, 2:4, 1:3] = 5.0
    conc[1] = 0.5
    return pq.Medium(np.ones((6, 6, 6), np.uint8), 1.0, OPTICS, fluorophore_concentration=conc,
                     fluorophore_absorption=ABSORPTION)


def test_alias_table_reproduces_the_weights():
    w = np.random.default_rng(3).random(1000) ** 4
    accept, alias = alias_table(w)
    np.testing.assert_allclose(alias_probabilities(accept, alias), w / w.sum(), rtol=1e-6, atol=1e-12)
    with pytest.raises(ValueError, match="weights"):
        alias_table([0.0, 0.0])


def test_infinite_medium_species_share(backend):
    """Uniform fluorophore, isotropic source, no way out (mirror faces): the fluorophore absorbs
    mu_a,f / mu_a,total of everything absorbed (net roulette weight included)."""
    conc = np.full((1, 3, 3, 3), 2.0, np.float32)
    m = pq.Medium(np.ones((3, 3, 3), np.uint8), 1.0, [[0, 0, 0, 1], [0.03, 2.0, 0.9, 1.4]],
                  boundary="mirror", fluorophore_concentration=conc, fluorophore_absorption=[0.01])
    r = pq.Simulation(m, pq.IsotropicPoint((1.5, 1.5, 1.5)), photons=400).run(backend)
    share = 0.02 / 0.05
    assert r.absorbed_fraction == pytest.approx(1 + r.roulette, abs=1e-9)
    assert r.fluorophore_absorbed.sum() == pytest.approx(share * r.absorbed_fraction, rel=1e-5)


def test_fluorophores_add_absorption_and_split_it(backend, budget):
    m = labelled_medium()
    plain = pq.Medium(m.labels, 1.0, OPTICS)
    src = pq.GaussianBeam((3, 3, 0), waist=1.0)
    n = budget(kernel=50_000)
    with_qd = pq.Simulation(m, src, photons=n).run(backend)
    without = pq.Simulation(plain, src, photons=n).run(backend)
    assert without.fluorophore_absorbed is None
    assert with_qd.absorbed_fraction > without.absorbed_fraction
    per_species = with_qd.fluorophore_absorbed.sum(axis=(1, 2, 3))
    assert 0 < per_species.sum() < with_qd.absorbed_fraction
    # species 0 sits only in its labelled block
    outside = np.ones((6, 6, 6), bool)
    outside[2:4, 2:4, 1:3] = False
    assert with_qd.fluorophore_absorbed[0][outside].sum() == 0


def emission_run(backend, photons, **map_options):
    m = labelled_medium()
    density = np.zeros((6, 6, 6))
    density[2:4, 2:4, 1:3] = np.arange(8).reshape(2, 2, 2) + 1.0
    emission = VoxelEmission(density=density, bin_weights=[0.0, 0.3, 0.7])
    exit_map = pq.ExitMap((6, 6), 1.0, half_angle_deg=40, **map_options)
    return pq.Simulation(m, emission, photons=photons, exit_map=exit_map, rng_stream=1,
                         trace_photons=(0, 5, 9), trace_events=12).run(backend)


def test_emission_photons_trace_like_the_reference(fast_backend):
    ref, other = emission_run("numpy", 50).trace, emission_run(fast_backend, 50).trace
    recorded = ~np.isnan(ref)
    assert np.array_equal(recorded, ~np.isnan(other))
    np.testing.assert_allclose(other[recorded], ref[recorded], atol=2e-3)
    launch = ref[:, 0, :]
    assert np.all((launch[:, 0] >= 2) & (launch[:, 0] <= 4) & (launch[:, 2] >= 1) & (launch[:, 2] <= 3))


def test_emission_wavelength_bins_follow_the_weights(backend, budget):
    """Two emission bins with identical optics make detection blind to the bin, so the detected
    photons' bins follow the weights 0.3 : 0.7 (binomial statistics, 4 standard errors)."""
    optics = np.array([[[0, 0, 0, 1], [0.05, 5, 0.8, 1.4]]] + [[[0, 0, 0, 1], [0.02, 4, 0.9, 1.4]]] * 2)
    m = pq.Medium(np.ones((4, 4, 4), np.uint8), 1.0, optics)
    density = np.zeros((4, 4, 4))
    density[1:3, 1:3, 0:2] = 1.0
    n = budget(kernel=40_000)
    exit_map = pq.ExitMap((4, 4), 1.0, record_capacity=n)
    r = pq.Simulation(m, VoxelEmission(density=density, bin_weights=[0.0, 0.3, 0.7]), photons=n,
                      exit_map=exit_map, rng_stream=1).run(backend)
    assert r.detected_overflow == 0
    counts = np.bincount(r.detected["bin"], minlength=3)
    assert counts[0] == 0
    frac = counts[2] / counts.sum()
    assert abs(zscore(frac, np.sqrt(0.7 * 0.3 / counts.sum()), 0.7)) < 4


def test_bin_efficiency_weights_the_exit_map(backend, budget):
    n = budget(kernel=20_000)
    r = emission_run(backend, n, bin_efficiency=[0.0, 0.5, 1.0], record_capacity=n)
    eff = np.array([0.0, 0.5, 1.0])[r.detected["bin"]]
    assert r.exit_map.sum() == pytest.approx(np.sum(r.detected["weight"] * eff) / n, rel=1e-5)
    assert np.all(r.detected["uz"] < 0)
    assert np.all(np.arccos(-r.detected["uz"]) <= np.radians(40) + 1e-5)


def test_record_overflow_is_counted(backend):
    r = emission_run(backend, 3000, record_capacity=10)
    assert len(r.detected) == 10
    assert r.detected_overflow > 0
    assert r.detected_overflow + 10 == pytest.approx(r.batch_values("detected") @ r.batch_photons)


def test_emission_input_errors():
    m = labelled_medium()
    with pytest.raises(ValueError, match="density"):
        VoxelEmission(density=np.zeros((6, 6, 6)), bin_weights=[1, 1, 1])
    em = VoxelEmission(density=np.ones((5, 6, 6)), bin_weights=[1, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        pq.Simulation(m, em, photons=10).check()
    em = VoxelEmission(density=np.ones((6, 6, 6)), bin_weights=[1, 1])
    with pytest.raises(ValueError, match="bin_weights"):
        pq.Simulation(m, em, photons=10).check()
    with pytest.raises(ValueError, match="fluorophore_absorption"):
        pq.Medium(m.labels, 1.0, OPTICS, fluorophore_concentration=np.ones((6, 6, 6)),
                  fluorophore_absorption=[[0.1, 0.1]])
    with pytest.raises(ValueError, match="bin_efficiency"):
        pq.Simulation(m, pq.PencilBeam((3, 3, 0)), photons=10,
                      exit_map=pq.ExitMap((2, 2), 1.0, bin_efficiency=[1.0])).check()
