"""Transport physics on every backend present: exact identities first, then statistics."""

import dataclasses
import math

import numpy as np
import pytest

import photonqd as pq
from photonqd.testing import slab, zscore


def test_energy_balance_is_exact(backend):
    """Fixed-point tallies: specular + missed + absorbed + escaped + alive - roulette = 1."""
    labels = np.ones((6, 6, 6), np.uint8)
    labels[2:4, 2:4, 1:3] = 2
    m = pq.Medium(labels, 1.0, [[0, 0, 0, 1], [0.5, 3.0, 0.7, 1.4], [0.05, 8.0, 0.9, 1.33]])
    sim = pq.Simulation(m, pq.GaussianBeam((3, 3, 0), waist=1.0), photons=2000, time_gate_ns=0.03,
                        roulette_threshold=0.2, roulette_boost=5.0, batch_photons=500)
    r = sim.run(backend)
    assert r.specular > 0 and r.alive > 0 and r.roulette != 0
    assert abs(r.energy_balance() - 1.0) < 1e-12


def test_beer_lambert_exact(backend):
    """No scattering, matched index: every photon leaves with exactly exp(-mu_a d)."""
    m = slab(mua=0.7, mus=0.0, g=0.0, n=1.0, thickness=2.0)
    r = pq.Simulation(m, pq.PencilBeam((50, 50, 0)), photons=1000).run(backend)
    assert r.transmittance == pytest.approx(math.exp(-1.4), rel=1e-5)
    assert r.absorbed_fraction == pytest.approx(1 - math.exp(-1.4), rel=1e-5)


def test_specular_reflection_at_normal_incidence(backend):
    n = 1.4
    m = slab(mua=1.0, mus=5.0, g=0.0, n=n, thickness=1.0)
    r = pq.Simulation(m, pq.PencilBeam((50, 50, 0)), photons=200).run(backend)
    assert r.specular == pytest.approx(((n - 1) / (n + 1)) ** 2, rel=1e-5)
    off = pq.Simulation(m, pq.PencilBeam((50, 50, 0), specular=False), photons=200).run(backend)
    assert off.specular == 0.0


def test_fresnel_sampled_at_exit_matches_slab_transmission(backend, budget):
    """Non-scattering slab n = 1.5 in air: T = (1-R)^2 e^-t / (1 - R^2 e^-2t) summed over bounces."""
    m = slab(mua=0.1, mus=0.0, g=0.0, n=1.5, thickness=3.0)
    n = budget(kernel=100_000)
    r = pq.Simulation(m, pq.PencilBeam((50, 50, 0)), photons=n, batch_photons=n // 10).run(backend)
    R, a = 0.04, math.exp(-0.3)
    expected_t = (1 - R) ** 2 * a / (1 - R**2 * a**2)
    expected_r = R + R * (1 - R) ** 2 * a**2 / (1 - R**2 * a**2)
    t, st = r.mean_and_error("escaped z+")
    assert abs(zscore(t, st, expected_t)) < 4
    assert abs(zscore(r.specular + r.diffuse_reflectance, r.mean_and_error("escaped z-")[1], expected_r)) < 4


def test_time_gate_stops_photons_at_t_max(backend):
    """Ballistic photons in n = 1.37: alive weight at the gate = exp(-mu_a c t / n) exactly."""
    m = pq.Medium.uniform((4, 4, 400), 1.0, 0.01, 0.0, 0.0, 1.37, n_ambient=1.37)
    r = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=500, time_gate_ns=0.5).run(backend)
    path = 299.792458 * 0.5 / 1.37
    assert r.alive == pytest.approx(math.exp(-0.01 * path), rel=1e-5)
    assert r.transmittance == 0.0


def test_mirror_and_cyclic_sides_agree(backend, budget):
    """A laterally uniform slab gives the same reflectance with mirror or cyclic side faces."""
    n = budget(kernel=50_000)
    values = []
    for side in ("mirror", "cyclic"):
        m = slab(mua=0.1, mus=5.0, g=0.8, n=1.4, thickness=1.0, side=side, width=0.7)
        r = pq.Simulation(m, pq.PencilBeam((0.35, 0.35, 0)), photons=n, batch_photons=n // 10, seed=3 if side == "mirror" else 4).run(backend)
        values.append(r.mean_and_error("escaped z-"))
    (a, sa), (b, sb) = values
    assert abs(zscore(a, sa, b, sb)) < 4


def test_exit_map_sums_to_diffuse_reflectance(backend):
    m = pq.Medium.uniform((8, 8, 4), 0.5, 0.05, 4.0, 0.8, 1.4)
    sim = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=1000, exit_map=pq.ExitMap.covering(m))
    r = sim.run(backend)
    assert r.exit_map.shape == (8, 8)
    assert r.exit_map.sum() == pytest.approx(r.diffuse_reflectance, rel=1e-9)
    assert r.exit_map[:4, :4].sum() > r.exit_map[4:, 4:].sum()  # brightest around the beam


def test_exit_map_acceptance_cone(backend, budget):
    """Isotropic point in a clear, index-matched layer: escape within a cone of half-angle theta
    through the top face is (1 - cos theta) / 2 of all photons (binomial statistics)."""
    m = pq.Medium.uniform((1, 1, 1), (1000.0, 1000.0, 1.0), 0.0, 0.0, 0.0, 1.0)
    n = budget(kernel=100_000)
    cone = pq.ExitMap((1, 1), 1000.0, half_angle_deg=60.0)
    r = pq.Simulation(m, pq.IsotropicPoint((500, 500, 0.5)), photons=n, exit_map=cone).run(backend)
    p = (1 - math.cos(math.radians(60))) / 2
    assert abs(zscore(r.exit_map.sum(), math.sqrt(p * (1 - p) / n), p)) < 4
    assert abs(zscore(r.diffuse_reflectance, math.sqrt(0.25 / n), 0.5)) < 4


def test_rectangle_source_from_air_enters_the_grid(backend):
    """MCX cube60planar-style launch 10 mm above the surface; part of the beam misses."""
    m = pq.Medium.uniform((10, 10, 10), 1.0, 0.05, 1.0, 0.0, 1.37)
    src = pq.RectangleSource((1, 1, -10), edge1=(12, 0, 0), edge2=(0, 12, 0))
    r = pq.Simulation(m, src, photons=2000).run(backend)
    hit = 81 / 144  # the 12 x 12 mm beam overlaps the 10 x 10 mm face on 9 x 9 mm
    assert r.missed == pytest.approx(1 - hit, abs=4 * np.sqrt(hit * (1 - hit) / 2000))
    assert r.specular == pytest.approx((1 - r.missed) * (0.37 / 2.37) ** 2, rel=1e-5)
    assert abs(r.energy_balance() - 1) < 1e-12


def test_seed_reproducibility(backend):
    m = pq.Medium.uniform((5, 5, 5), 1.0, 0.1, 2.0, 0.5, 1.4)
    runs = [pq.Simulation(m, pq.PencilBeam((2.5, 2.5, 0)), photons=300, seed=s).run(backend)
            for s in (5, 5, 6)]
    assert np.array_equal(runs[0].absorbed, runs[1].absorbed)
    assert not np.array_equal(runs[0].absorbed, runs[2].absorbed)


def test_batching_does_not_change_the_answer(backend):
    """Each photon's stream depends on its index only, so batch size cannot change tallies."""
    m = pq.Medium.uniform((5, 5, 5), 1.0, 0.1, 2.0, 0.5, 1.4)
    a, b = (pq.Simulation(m, pq.PencilBeam((2.5, 2.5, 0)), photons=300, batch_photons=bs).run(backend)
            for bs in (300, 77))
    assert np.array_equal(a.absorbed, b.absorbed)
    assert a.escaped == b.escaped


def test_reference_launches_together_equal_launches_one_by_one():
    """The NumPy reference transports several launches in one vectorised pass (one tail per
    group, not per launch); each launch's tallies, records and detected count must equal those
    of launching it alone, with fluorescent species, fluence, exit map and records on."""
    from photonqd.backends import get_backend
    from photonqd.backends.reference import ReferenceRunner
    from photonqd.kernel_abi import SCALAR_SLOTS
    from photonqd.kernel_source import build_plan

    conc = np.zeros((1, 6, 6, 6), dtype=np.float32)
    conc[0, 2:4, 2:4, 1:3] = 1.0
    m = pq.Medium.uniform((6, 6, 6), 0.5, 0.1, 3.0, 0.8, 1.37, fluorophore_concentration=conc,
                          fluorophore_absorption=np.array([[0.2]]))
    sim = pq.Simulation(m, pq.DiskSource((1.5, 1.5, 0), radius=1.0), photons=600, fluence=True,
                        exit_map=dataclasses.replace(pq.ExitMap.covering(m), record_capacity=100))
    runner = get_backend("numpy").prepare(build_plan(sim))
    launches = [(0, 250), (250, 100), (350, 250)]
    together = runner.launch_many(launches)
    alone = [ReferenceRunner(runner.plan).launch(first, n) for first, n in launches]
    detected = runner.plan.layout.off_scalar + SCALAR_SLOTS["DETECTED"]
    for a, b in zip(together, alone):
        assert np.array_equal(a.tally, b.tally)
        assert np.array_equal(a.records, b.records)
        assert a.tally[detected] >= len(a.records) > 0      # every launch counts its own detections
    assert not np.array_equal(together[0].tally, together[2].tally)
    assert [len(g) for g in runner.groups([(0, 80_000)] * 3)] == [2, 1]   # GROUP_PHOTONS


def test_keep_batches_keeps_only_what_is_asked(backend):
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.1, 2.0, 0.5, 1.4)
    sim = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=200, batch_photons=50,
                        exit_map=pq.ExitMap.covering(m), keep_batches=("exit_map",))
    r = sim.run(backend)
    assert len(r.batch_tallies) == 4 and all(set(b) == {"exit_map"} for b in r.batch_tallies)
    assert np.allclose(sum(b["exit_map"] for b in r.batch_tallies) / 4, r.exit_map)
    with pytest.raises(ValueError, match="keep_batches"):
        pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=10, keep_batches=("images",)).check()
