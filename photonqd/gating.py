"""Time-gated detection under pulsed excitation: factors that turn CW-equivalent images into gated ones.

Why factors suffice
    Photons cross a few mm of tissue in well under 1 ns, while QD luminescence lasts 10²–10⁴ ns. Every
    emitter's light therefore leaves the tissue with the time course of its own excited-state
    population, and the spatial image of one emitter does not depend on when in the period it is taken.
    The gated image of an emitter is its CW image, computed at the same AVERAGE excitation power, times
    its own :func:`gate_factor` — the fraction of its emitted photons that fall inside the gates. Tissue
    autofluorescence (lifetime ~ns) is one more emitter: ``gate_factor(af_lifetime_s, gate)``. Excitation
    leakage arrives while the laser is on and is scaled by :func:`leakage_factor`; dark charge by
    :func:`dark_duty_factor`. Read noise is unchanged (one read per exposure).

Timing convention (all times in seconds)
    Each period T starts with a rectangular pulse of width p: the excitation rate is constant on
    [0, p) and zero on [p, T). The gate opens ``delay_s`` after the END of the pulse, at
    t₀ = p + delay_s, and closes at t₁ = t₀ + width_s. ``delay_s`` may be negative, down to −p, to open
    the gate during the pulse; the gate must close before the next pulse starts (t₁ ≤ T). A gate with
    delay_s = −p and width_s = T is open all the time, which is ungated CW-equivalent detection:
    every factor is then 1.

Assumptions
    Linear excitation: an emitter absorbs far less than one photon per pulse (σ·F ≪ 1, F the photon
    fluence of one pulse = average fluence × T / p), so there is no ground-state depletion or Auger loss;
    check this with :attr:`PulsedExcitation.peak_to_average`. Mono-exponential decay with lifetime τ;
    for a multi-exponential decay with intensity fractions f_i (Σ f_i = 1), the factor is
    Σ f_i · gate_factor(τ_i) because the rate equation is linear. Ideal gate (instantaneous, complete
    extinction when closed) and ideal rectangular laser pulse with no tail; the transit time in tissue
    is neglected (< 1 ns against gate delays of tens of ns and more).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SENSOR_MODES = ("gated", "integrating")
# Relative slack on "the gate fits in the period" so that widths computed as T − p − d pass.
_FIT_RTOL = 1e-9
# Below this δ = Δt/τ, δ + expm1(−δ) loses digits to cancellation; its Taylor series does not.
_SERIES_BELOW = 1e-4


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: must be a finite number > 0 s, got {value!r}")
    return v


@dataclass(frozen=True)
class PulsedExcitation:
    """A periodic train of rectangular excitation pulses at a fixed average power.

    period_s : repetition period T [s], > 0 (see :meth:`from_rate`).
    pulse_width_s : duration p of each pulse [s], 0 < p ≤ T (p = T is CW).
    """

    period_s: float
    pulse_width_s: float

    def __post_init__(self):
        period = _positive("period_s", self.period_s)
        width = _positive("pulse_width_s", self.pulse_width_s)
        if width > period * (1 + _FIT_RTOL):
            raise ValueError(f"pulse_width_s: must be in (0, period_s = {period!r}] s, got {self.pulse_width_s!r}")
        object.__setattr__(self, "period_s", period)
        object.__setattr__(self, "pulse_width_s", min(width, period))

    @classmethod
    def from_rate(cls, repetition_rate_hz: float, pulse_width_s: float) -> PulsedExcitation:
        """A pulse train from its repetition rate [Hz] (> 0) instead of its period."""
        try:
            rate = float(repetition_rate_hz)
        except (TypeError, ValueError):
            rate = math.nan
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"repetition_rate_hz: must be a finite number > 0 Hz, got {repetition_rate_hz!r}")
        return cls(1.0 / rate, pulse_width_s)

    @property
    def repetition_rate_hz(self) -> float:
        return 1.0 / self.period_s

    @property
    def duty_cycle(self) -> float:
        """p / T: the fraction of time the laser is on."""
        return self.pulse_width_s / self.period_s

    @property
    def peak_to_average(self) -> float:
        """T / p: peak irradiance over average irradiance (for the linearity check σ·F ≪ 1)."""
        return self.period_s / self.pulse_width_s


@dataclass(frozen=True)
class TimeGate:
    """A detection gate repeated once per excitation period.

    excitation : :class:`PulsedExcitation`.
    delay_s : gate opening after the END of the excitation pulse [s], ≥ −pulse_width_s (a negative delay
        opens the gate during the pulse and lets laser light in: see :func:`leakage_factor`).
    width_s : how long the gate stays open [s], > 0, closing no later than the next pulse:
        pulse_width_s + delay_s + width_s ≤ period_s.
    sensor : "gated" — the sensor itself integrates (and collects dark charge) only while the gate is
        open (gated InGaAs, intensified or SPAD cameras); or "integrating" — the sensor integrates over
        the whole exposure and an optical shutter in front of it (chopper, Pockels cell) does the gating,
        so dark charge accrues all the time.
    """

    excitation: PulsedExcitation
    delay_s: float
    width_s: float
    sensor: str = "gated"

    def __post_init__(self):
        if not isinstance(self.excitation, PulsedExcitation):
            raise TypeError("excitation: expected a photonqd.gating.PulsedExcitation")
        p, period = self.excitation.pulse_width_s, self.excitation.period_s
        try:
            delay = float(self.delay_s)
        except (TypeError, ValueError):
            delay = math.nan
        if not (math.isfinite(delay) and delay >= -p):
            raise ValueError(f"delay_s: must be a finite number >= -pulse_width_s = {-p!r} s (measured from the "
                             f"pulse's end), got {self.delay_s!r}")
        room = period - (p + delay)
        if room <= 0:
            raise ValueError(f"delay_s: the gate would open at or after the next pulse (delay_s < period_s - "
                             f"pulse_width_s = {period - p!r} s required), got {self.delay_s!r}")
        width = _positive("width_s", self.width_s)
        if width > room + _FIT_RTOL * period:
            raise ValueError(f"width_s: the gate must close before the next pulse, so width_s <= period_s - "
                             f"pulse_width_s - delay_s = {room!r} s, got {self.width_s!r}")
        if self.sensor not in SENSOR_MODES:
            raise ValueError(f"sensor: must be one of {SENSOR_MODES}, got {self.sensor!r}")
        object.__setattr__(self, "delay_s", delay)
        object.__setattr__(self, "width_s", min(width, room))

    @property
    def open_s(self) -> float:
        """Gate opening time after the pulse's START [s]."""
        return self.excitation.pulse_width_s + self.delay_s

    @property
    def close_s(self) -> float:
        """Gate closing time after the pulse's START [s] (≤ period)."""
        return min(self.open_s + self.width_s, self.excitation.period_s)


def _one_minus_exp(x):
    """1 − e^(−x) without cancellation for small x."""
    return -np.expm1(-x)


def _phi(d):
    """δ − (1 − e^(−δ)) ≥ 0, accurate for small δ."""
    series = d * d * (0.5 - d * (1.0 / 6.0 - d / 24.0))
    return np.where(d < _SERIES_BELOW, series, d + np.expm1(-np.maximum(d, _SERIES_BELOW)))


def gate_factor(lifetime_s, gate: TimeGate):
    """Fraction of an emitter's emitted photons that fall inside the gates (periodic steady state).

    lifetime_s : luminescence lifetime τ [s], > 0; a scalar or an array (the result has its shape).
    gate : :class:`TimeGate`.

    Derivation. Scale the excitation so that one excitation lands per period: rate 1/p on [0, p),
    0 on [p, T). The excited population N obeys dN/dt = P(t) − N/τ and emits at N/τ (the quantum yield
    multiplies the CW image and cancels here). Write u = p/τ, s = T/τ.
      During the pulse:  N(t) = N₀ e^(−t/τ) + (τ/p)(1 − e^(−t/τ)),     0 ≤ t ≤ p.
      After it:          N(t) = N_p e^(−(t−p)/τ),                      p ≤ t ≤ T.
    Periodicity, N(T) = N₀, with N_p = N(p), gives the steady state, which includes the tails of all
    earlier pulses:
      N_p = [(1 − e^(−u))/u] / (1 − e^(−s)),    N₀ = N_p e^(−(s−u)).
    The photons emitted on [a, b] are ∫ N/τ dt. With x = a/τ and δ = (b − a)/τ:
      after the pulse (p ≤ a):  N_p e^(−(x−u)) (1 − e^(−δ));
      during it (b ≤ p):        [δ − (1 − e^(−δ)) + (1 − e^(−x))(1 − e^(−δ))]/u + N₀ e^(−x)(1 − e^(−δ)),
    the first form of the pulse term, δ/u + (N₀ − 1/u) e^(−x)(1 − e^(−δ)), regrouped so that no two large
    terms cancel when τ ≫ p. Over the whole period the two add to 1 (everything absorbed is emitted),
    so the gate factor is the sum over the gate's parts inside and after the pulse.
    Short-pulse limit (u → 0, gate after the pulse, delay d and width w):
      G = e^(−d/τ) (1 − e^(−w/τ)) / (1 − e^(−T/τ))  →  e^(−d/τ)(1 − e^(−w/τ))   for τ ≪ T.
    """
    if not isinstance(gate, TimeGate):
        raise TypeError("gate: expected a photonqd.gating.TimeGate")
    tau = np.asarray(lifetime_s, dtype=float)
    if tau.size == 0 or not np.all(np.isfinite(tau)) or np.any(tau <= 0):
        raise ValueError(f"lifetime_s: must be finite numbers > 0 s, got {lifetime_s!r}")
    p, period = gate.excitation.pulse_width_s, gate.excitation.period_s
    t0, t1 = gate.open_s, gate.close_s
    u, s = p / tau, period / tau
    n_p = (_one_minus_exp(u) / u) / _one_minus_exp(s)
    total = np.zeros_like(tau)
    if t0 < p:  # the part of the gate during the pulse
        a, b = t0, min(t1, p)
        x, d = a / tau, (b - a) / tau
        n_0 = n_p * np.exp(-(s - u))
        total += (_phi(d) + _one_minus_exp(x) * _one_minus_exp(d)) / u + n_0 * np.exp(-x) * _one_minus_exp(d)
    if t1 > p:  # the part after the pulse
        a, b = max(t0, p), t1
        total += n_p * np.exp(-(a - p) / tau) * _one_minus_exp((b - a) / tau)
    total = np.clip(total, 0.0, 1.0)  # rounding only; the exact value lies in [0, 1]
    return float(total) if total.ndim == 0 else total


def qd_gate_factor(qd, gate: TimeGate) -> float:
    """:func:`gate_factor` for a :class:`~photonqd.optics.QuantumDot` from its ``lifetime_ns``.

    Raises ValueError naming ``lifetime_ns`` when the QD has none (user-built QDs may leave it unset).
    """
    tau_ns = getattr(qd, "lifetime_ns", None)
    if tau_ns is None:
        raise ValueError(f"lifetime_ns: quantum dot {getattr(qd, 'name', qd)!r} has no luminescence lifetime, "
                         "which time gating needs; give it lifetime_ns > 0 (ns) or use a preset")
    return float(gate_factor(float(tau_ns) * 1e-9, gate))


def leakage_factor(gate: TimeGate) -> float:
    """Fraction of the excitation pulse's photons that arrive while the gate is open.

    Leakage (laser light through the emission filter) arrives with the pulse itself, so the gated
    leakage image is the CW leakage image times the gate's overlap with [0, p) divided by p: 0 whenever
    the gate opens after the pulse ends (delay_s ≥ 0). Laser tails and finite gate extinction, which set
    the real floor, are not modelled.
    """
    if not isinstance(gate, TimeGate):
        raise TypeError("gate: expected a photonqd.gating.TimeGate")
    p = gate.excitation.pulse_width_s
    overlap = min(gate.close_s, p) - gate.open_s
    return max(overlap, 0.0) / p


def dark_duty_factor(gate: TimeGate) -> float:
    """Factor on the dark charge of a CW exposure of the same length.

    "gated" sensor: width_s / period_s (dark charge only while the gate is open; the exposure counts the
    same number of periods). "integrating" sensor: 1.
    """
    if not isinstance(gate, TimeGate):
        raise TypeError("gate: expected a photonqd.gating.TimeGate")
    if gate.sensor == "integrating":
        return 1.0
    return (gate.close_s - gate.open_s) / gate.excitation.period_s
