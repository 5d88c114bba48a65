"""Time-gated detection (photonqd.gating) and QD luminescence lifetimes.

The gate factors are checked against an independent numerical solution: the rate equation
dN/dt = P(t) − N/τ integrated by scipy over the pulse train, period after period, until the population at
the start of a period stops changing, with the photons emitted inside the gate (∫ N/τ dt) integrated
alongside.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from photonqd.gating import (
    PulsedExcitation,
    TimeGate,
    dark_duty_factor,
    gate_factor,
    leakage_factor,
    qd_gate_factor,
)
from photonqd.optics import qd_preset, qd_preset_names
from photonqd.optics.quantum_dots import ExcitonAbsorption, GaussianEmission, QuantumDot


def numerical_gate_factor(tau, period, pulse, t_open, t_close, max_periods=3000):
    """Gate photons and all photons emitted in one period of the steady-state pulse train, per excitation.

    State: N (excited population), photons emitted in the gate, photons emitted in total. The excitation
    rate is 1/pulse on [0, pulse), so one excitation lands per period. Integration runs piecewise between
    the times where P(t) or the gate switch, so no step straddles a discontinuity.
    """
    edges = sorted({0.0, pulse, t_open, t_close, period})
    jac_cache = {}

    def rhs(on, gated):
        def f(t, y):
            emit = y[0] / tau
            return [(1.0 / pulse if on else 0.0) - emit, emit if gated else 0.0, emit]
        return f

    def jac(gated):
        if gated not in jac_cache:
            jac_cache[gated] = np.array([[-1 / tau, 0, 0], [1 / tau if gated else 0, 0, 0], [1 / tau, 0, 0]])
        return jac_cache[gated]

    n = 0.0
    for _ in range(max_periods):
        y = np.array([n, 0.0, 0.0])
        for a, b in zip(edges[:-1], edges[1:]):
            mid = 0.5 * (a + b)
            on, gated = mid < pulse, t_open <= mid < t_close
            sol = solve_ivp(rhs(on, gated), (a, b), y, method="Radau", jac=jac(gated),
                            rtol=1e-11, atol=1e-16 * max(1.0, tau / pulse))
            y = sol.y[:, -1]
        converged = abs(y[0] - n) <= 1e-12 * max(abs(n), 1e-300)
        n = y[0]
        if converged:
            return y[1], y[2]
    raise AssertionError("pulse train did not reach its steady state")


# (lifetime, period, pulse width, delay after the pulse's end, gate width), all in s.
CASES = [
    (1e-6, 20e-6, 10e-9, 100e-9, 10e-6),   # τ ≪ T, short pulse: PbS/CdS-like
    (1e-6, 1e-6, 100e-9, 50e-9, 500e-9),   # τ = T: earlier pulses' tails matter
    (3.8e-6, 1e-6, 200e-9, 100e-9, 600e-9),  # τ > T: Ag2S-like at 1 MHz
    (150e-9, 2e-6, 300e-9, -200e-9, 800e-9),  # gate opens during the pulse
    (50e-9, 1e-6, 500e-9, -400e-9, 200e-9),  # gate entirely inside a long pulse
    (2e-9, 1e-6, 10e-9, 5e-9, 50e-9),      # autofluorescence-like τ, short delay
    (5e-9, 1e-6, 200e-9, -100e-9, 300e-9),  # pulse much longer than τ
]


@pytest.mark.parametrize("tau, period, pulse, delay, width", CASES)
def test_gate_factor_matches_numerical_rate_equation(tau, period, pulse, delay, width):
    gate = TimeGate(PulsedExcitation(period, pulse), delay, width)
    in_gate, total = numerical_gate_factor(tau, period, pulse, gate.open_s, gate.close_s)
    assert total == pytest.approx(1.0, rel=1e-7)  # steady state: all that is absorbed is emitted
    assert gate_factor(tau, gate) == pytest.approx(in_gate, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("tau", [1e-9, 1e-7, 1e-6, 1e-5, 1e-3])
def test_always_open_gate_collects_everything(tau):
    ex = PulsedExcitation(1e-6, 100e-9)
    assert gate_factor(tau, TimeGate(ex, -100e-9, 1e-6)) == pytest.approx(1.0, rel=1e-12)


def test_short_pulse_limit():
    d, w = 100e-9, 2e-6
    for tau in (50e-9, 300e-9, 1e-6):  # τ ≪ T
        gate = TimeGate(PulsedExcitation(1e-3, tau * 1e-7), d, w)
        assert gate_factor(tau, gate) == pytest.approx(math.exp(-d / tau) * -math.expm1(-w / tau), rel=1e-6)
    tau, period = 1e-6, 1.5e-6  # τ ~ T: the tails of earlier pulses add 1/(1 − e^(−T/τ))
    gate = TimeGate(PulsedExcitation(period, 1e-15), 100e-9, 1e-6)
    expected = math.exp(-d / tau) * -math.expm1(-1e-6 / tau) / -math.expm1(-period / tau)
    assert gate_factor(tau, gate) == pytest.approx(expected, rel=1e-6)


def test_adjacent_gates_add():
    ex = PulsedExcitation(2e-6, 300e-9)
    taus = np.array([3e-9, 80e-9, 700e-9, 5e-6])
    parts = [TimeGate(ex, -250e-9, 150e-9), TimeGate(ex, -100e-9, 400e-9), TimeGate(ex, 300e-9, 1.4e-6)]
    whole = TimeGate(ex, -250e-9, 1.95e-6)
    np.testing.assert_allclose(sum(gate_factor(taus, g) for g in parts), gate_factor(taus, whole), rtol=1e-12)


def test_gate_factor_broadcasts_and_falls_with_delay():
    ex = PulsedExcitation(10e-6, 10e-9)
    taus = np.array([[1e-9, 1e-8], [1e-7, 1e-6]])
    out = gate_factor(taus, TimeGate(ex, 100e-9, 5e-6))
    assert out.shape == taus.shape and np.all((out >= 0) & (out <= 1))
    assert isinstance(gate_factor(1e-6, TimeGate(ex, 100e-9, 5e-6)), float)
    delays = [0.0, 50e-9, 200e-9, 1e-6]
    values = [gate_factor(1e-6, TimeGate(ex, d, 4e-6)) for d in delays]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_leakage_factor():
    ex = PulsedExcitation(1e-6, 100e-9)
    assert leakage_factor(TimeGate(ex, 0.0, 500e-9)) == 0.0
    assert leakage_factor(TimeGate(ex, 20e-9, 500e-9)) == 0.0
    assert leakage_factor(TimeGate(ex, -100e-9, 900e-9)) == pytest.approx(1.0)
    assert leakage_factor(TimeGate(ex, -50e-9, 500e-9)) == pytest.approx(0.5)
    assert leakage_factor(TimeGate(ex, -80e-9, 30e-9)) == pytest.approx(0.3)  # gate inside the pulse


def test_dark_duty_factor():
    ex = PulsedExcitation.from_rate(100e3, 10e-9)
    assert ex.period_s == pytest.approx(10e-6) and ex.repetition_rate_hz == pytest.approx(100e3)
    assert ex.duty_cycle == pytest.approx(1e-3) and ex.peak_to_average == pytest.approx(1e3)
    assert dark_duty_factor(TimeGate(ex, 100e-9, 4e-6)) == pytest.approx(0.4)
    assert dark_duty_factor(TimeGate(ex, 100e-9, 4e-6, sensor="integrating")) == 1.0


@pytest.mark.parametrize("make, field", [
    (lambda: PulsedExcitation(0.0, 1e-9), "period_s"),
    (lambda: PulsedExcitation(float("nan"), 1e-9), "period_s"),
    (lambda: PulsedExcitation(1e-6, -1e-9), "pulse_width_s"),
    (lambda: PulsedExcitation(1e-6, 2e-6), "pulse_width_s"),
    (lambda: PulsedExcitation.from_rate(0.0, 1e-9), "repetition_rate_hz"),
    (lambda: TimeGate(PulsedExcitation(1e-6, 100e-9), -150e-9, 100e-9), "delay_s"),
    (lambda: TimeGate(PulsedExcitation(1e-6, 100e-9), 900e-9, 1e-9), "delay_s"),
    (lambda: TimeGate(PulsedExcitation(1e-6, 100e-9), 0.0, 0.0), "width_s"),
    (lambda: TimeGate(PulsedExcitation(1e-6, 100e-9), 100e-9, 900e-9), "width_s"),
    (lambda: TimeGate(PulsedExcitation(1e-6, 100e-9), 0.0, 1e-7, sensor="shutter"), "sensor"),
    (lambda: gate_factor(0.0, TimeGate(PulsedExcitation(1e-6, 1e-8), 0.0, 1e-7)), "lifetime_s"),
    (lambda: gate_factor([1e-6, np.nan], TimeGate(PulsedExcitation(1e-6, 1e-8), 0.0, 1e-7)), "lifetime_s"),
])
def test_bad_input_names_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_presets_carry_cited_lifetimes():
    expected_ns = {"cdtese_zns_800": 150, "cuins2_zns_780": 300, "ag2s_1200": 3800,
                   "pbs_cds_1100": 1000, "pbs_cds_1300": 1000, "pbs_cds_1550": 1000}
    for name in qd_preset_names():
        qd = qd_preset(name)
        assert qd.lifetime_ns == expected_ns[name]
        assert qd.sources["lifetime"] and "lifetime" in qd.typical
    # The classes' orders of magnitude: µs for PbS/CdS and Ag2S, 10² ns for CuInS2, ~10² ns for CdTeSe.
    assert all(150 <= qd_preset(n).lifetime_ns <= 4000 for n in ("ag2s_1200", "pbs_cds_1300"))


def _user_qd(**kw):
    return QuantumDot("mine", ExcitonAbsorption(800.0, 1e5, 0.1, ((400.0, 1e6),)), 0.5,
                      GaussianEmission(820.0, 40.0), **kw)


def test_qd_without_lifetime_cannot_be_gated():
    gate = TimeGate(PulsedExcitation(10e-6, 10e-9), 100e-9, 5e-6)
    qd = _user_qd()
    assert qd.lifetime_ns is None
    with pytest.raises(ValueError, match="lifetime_ns"):
        qd_gate_factor(qd, gate)
    timed = dataclasses.replace(qd, lifetime_ns=250)
    assert qd_gate_factor(timed, gate) == pytest.approx(gate_factor(250e-9, gate))


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf"), "fast"])
def test_qd_lifetime_validated(bad):
    with pytest.raises(ValueError, match="lifetime_ns"):
        _user_qd(lifetime_ns=bad)


def test_docs_worked_example():
    """The numbers quoted in docs/gating.md."""
    ex = PulsedExcitation.from_rate(100e3, 10e-9)
    gate = TimeGate(ex, 100e-9, 9.0e-6)
    assert qd_gate_factor(qd_preset("pbs_cds_1300"), gate) == pytest.approx(0.900, abs=5e-4)
    assert gate_factor(5e-9, gate) == pytest.approx(8.9e-10, rel=0.01)
    assert qd_gate_factor(qd_preset("cdtese_zns_800"), gate) == pytest.approx(0.497, abs=5e-4)
    assert leakage_factor(gate) == 0.0
    assert dark_duty_factor(gate) == pytest.approx(0.9)
