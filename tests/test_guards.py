"""Every photon ends whatever the input; tallies cannot wrap; any split of a run into launches, and
any launch configuration, gives the same tallies bit for bit."""

import numpy as np
import pytest

import photonqd as pq
from photonqd.kernel_source import build_plan, max_launch_photons
from photonqd.tallies import ExactSum


def test_trapped_photons_are_stopped_and_balance_closes(backend):
    """F1 (a): a clear (non-scattering) label in a closed mirror box never scatters, so roulette
    never runs. The flight-time guard stops each photon after exactly L = c t / n of path: the
    stopped weight is (1 - R) exp(-mu_a L), R the normal-incidence Fresnel loss at entry."""
    mua, n, t = 1e-4, 1.37, 20.0
    m = pq.Medium.uniform((4, 4, 4), 1.0, mua, 0.0, 0.0, n, boundary="mirror")
    # a gate beyond the guard passes the pre-launch check (which refuses a clear closed box
    # without a gate), so the guard is what ends the photons
    sim = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=200, max_flight_ns=t, time_gate_ns=1e5)
    with pytest.warns(RuntimeWarning, match="stopped by a guard"):
        r = sim.run(backend)
    r_fresnel = ((n - 1) / (n + 1)) ** 2
    path = t * 299.792458 / n
    assert r.specular == pytest.approx(r_fresnel, rel=1e-5)
    assert r.stopped == pytest.approx((1 - r_fresnel) * np.exp(-mua * path), rel=1e-4)
    assert abs(r.energy_balance() - 1.0) < 1e-12


def test_total_internal_reflection_trap_ends(backend):
    """A clear cube at n = 1.5 traps ~23 % of isotropic photons by total internal reflection."""
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.0, 0.0, 0.0, 1.5)
    sim = pq.Simulation(m, pq.IsotropicPoint((2, 2, 2)), photons=400, max_flight_ns=2.0, time_gate_ns=1e5)
    with pytest.warns(RuntimeWarning, match="stopped by a guard"):
        r = sim.run(backend)
    assert 0.1 < r.stopped < 0.4
    assert abs(r.energy_balance() - 1.0) < 1e-12


def test_step_guard(backend):
    m = pq.Medium.uniform((4, 4, 4), 1.0, 0.001, 10.0, 0.9, 1.37, boundary="mirror")
    sim = pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=100, max_steps=50)
    with pytest.warns(RuntimeWarning):
        r = sim.run(backend)
    assert r.stopped > 0.9 and r.steps <= 50
    assert abs(r.energy_balance() - 1.0) < 1e-12


def test_launch_size_bounds_every_tally():
    """One photon adds at most 1 + 64 weight or its gate-bounded path to an entry."""
    n = max_launch_photons(t_gate_ns=1000.0, n_min=1.0)
    assert n * 1000.0 * 299.792458 * 2**24 < 2**63 and n * 65 * 2**32 < 2**63
    assert max_launch_photons(t_gate_ns=5.0, n_min=1.37) == 2**31 - 1 or \
        max_launch_photons(t_gate_ns=5.0, n_min=1.37) > 10**7
    m = pq.Medium.uniform((2, 2, 2), 1e4, 0.0, 0.0, 0.0, 1.0, boundary="mirror")
    sim = pq.Simulation(m, pq.PencilBeam((5000, 5000, 0)), photons=10, time_gate_ns=1e5,
                        max_flight_ns=1e6)
    sim.check()
    plan = build_plan(sim)
    assert plan.max_launch_photons * 1e5 * 299.792458 * 2**24 < 2**63


def test_fluence_cannot_wrap():
    """The review's reproducer (F2): a 10 m mirror box, clear, 1e5 ns gate, 45 000 photons came back
    as 0.185 of the exact fluence. Now launches are sized to the bound and merged exactly."""
    m = pq.Medium(np.ones((1, 1, 1), np.uint8), 1e4, [[0, 0, 0, 1], [0, 0, 0, 1]], boundary="mirror")
    r = pq.Simulation(m, pq.PencilBeam((5000, 5000, 0)), photons=45_000, time_gate_ns=1e5,
                      max_flight_ns=1e5).run("numpy")
    exact = 299.792458 * 1e5 / 1e12   # c T / V per photon, 1/mm^2
    assert r.fluence[0, 0, 0] == pytest.approx(exact, rel=1e-6)
    assert r.alive == pytest.approx(1.0)


def test_exact_sum_never_wraps():
    acc = ExactSum(3)
    big = np.array([2**62, -2**62, 5], np.int64)
    for _ in range(10):
        acc.add(big)
    assert [acc.value(i) for i in range(3)] == [10 * 2**62, -10 * 2**62, 50]
    assert acc.as_float()[0] == pytest.approx(10 * 2.0**62)


def test_any_split_gives_identical_tallies(fast_backend):
    """A run is a sequence of launches: the split (batch size) does not change one bit."""
    labels = np.ones((8, 8, 6), np.uint8)
    labels[2:5, 2:5, 1:4] = 2
    m = pq.Medium(labels, 0.5, [[0, 0, 0, 1], [0.05, 5.0, 0.8, 1.37], [0.2, 8.0, 0.9, 1.45]])
    runs = [pq.Simulation(m, pq.GaussianBeam((2, 2, 0), waist=0.8), photons=6000, batch_photons=b,
                          exit_map=pq.ExitMap.covering(m)).run(fast_backend) for b in (6000, 1000, 777)]
    for r in runs[1:]:
        np.testing.assert_array_equal(r.absorbed, runs[0].absorbed)
        np.testing.assert_array_equal(r.fluence, runs[0].fluence)
        np.testing.assert_array_equal(r.exit_map, runs[0].exit_map)
        assert r.escaped == runs[0].escaped and r.steps == runs[0].steps


def test_continued_run_equals_one_run(backend):
    """first_photon continues a run's photon sequence: [0, n) then [n, 2n) is the run of 2n, and
    reduce_batch keeps what it returns of each batch."""
    import dataclasses

    m = pq.Medium.uniform((6, 6, 6), 0.5, 0.05, 5.0, 0.9, 1.37)
    n = 400 if backend == "numpy" else 3000
    first = pq.Simulation(m, pq.PencilBeam((1.5, 1.5, 0)), photons=n, batch_photons=n // 2,
                          keep_batches=("fluence",), reduce_batch=lambda b: float(b["fluence"].sum()))
    a = first.run(backend)
    b = dataclasses.replace(first, first_photon=n).run(backend)
    both = dataclasses.replace(first, photons=2 * n).run(backend)
    np.testing.assert_allclose(0.5 * (a.absorbed + b.absorbed), both.absorbed, rtol=1e-12, atol=1e-15)
    assert not np.array_equal(a.absorbed, b.absorbed)            # new photons, not a repeat
    assert a.batch_tallies == pytest.approx([float(t) for t in a.batch_tallies])
    assert all(isinstance(t, float) for t in a.batch_tallies + both.batch_tallies)
    assert sum(both.batch_tallies[:2]) == pytest.approx(sum(a.batch_tallies), rel=1e-12)
    with pytest.raises(ValueError, match="first_photon"):
        dataclasses.replace(first, first_photon=-1).check()
    with pytest.raises(TypeError, match="reduce_batch"):
        dataclasses.replace(first, reduce_batch=3).check()


def test_launch_configuration_does_not_change_results(monkeypatch):
    """Persistent work-items take photons from a counter: how many there are changes nothing."""
    from photonqd.backends import available
    if "opencl" not in available():
        pytest.skip("no OpenCL device")
    from photonqd.backends import opencl
    m = pq.Medium.uniform((8, 8, 8), 0.5, 0.05, 5.0, 0.9, 1.37)
    sim = lambda: pq.Simulation(m, pq.PencilBeam((2, 2, 0)), photons=3000)  # noqa: E731
    base = sim().run("opencl")
    for groups in (1, 13):
        monkeypatch.setattr(opencl, "CPU_GROUPS_PER_UNIT", groups)
        r = sim().run("opencl")
        np.testing.assert_array_equal(r.absorbed, base.absorbed)
        np.testing.assert_array_equal(r.fluence, base.fluence)
        assert r.batch_scalars.tolist() == base.batch_scalars.tolist()
