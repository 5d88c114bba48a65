"""Detection decisions that respect the Monte Carlo error (DESIGN.md, "Detection decisions").

A criterion value c with standard error s against a threshold k, at z standard errors:

* detectable      when c - z s >= k
* not detectable  when c + z s <  k
* undecided       otherwise (more photons would decide it; reported as such, never as either).

The depth limit is where the criterion crosses k, interpolated between the two studied depths
that bracket it (linear in log c where both values are positive), with the interval from the
crossings of c - z s and c + z s. At the end of the studied range it is a bound ("beyond").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Standard errors a decision keeps from the threshold (two-sided 95 %).
Z = 2.0

DETECTABLE, NOT_DETECTABLE, UNDECIDED = "yes", "no", "undecided"


def verdict(value: float, error: float, threshold: float, z: float = Z) -> str:
    """yes / no / undecided for one criterion value and its standard error (NaN error: undecided
    unless the value is exactly decided without noise, error 0)."""
    if not math.isfinite(value):
        return UNDECIDED
    if not math.isfinite(error):
        return UNDECIDED
    if value - z * error >= threshold:
        return DETECTABLE
    if value + z * error < threshold:
        return NOT_DETECTABLE
    return UNDECIDED


@dataclass
class DepthLimit:
    """The deepest detectable target depth (mm) with its z-sigma interval [low, high].

    status: "crossing" (the criterion crosses the threshold inside the studied range),
            "beyond" (detectable at the deepest depth: the limit is >= estimate),
            "shallower" (not detectable at the shallowest depth: the limit is < estimate),
            "unresolved" (no depth is decided detectable, or the data do not allow a crossing).
    """

    estimate: float
    low: float
    high: float
    status: str

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def describe(self) -> str:
        if self.status == "beyond":
            return f">= {self.estimate:.3g}"
        if self.status == "shallower":
            return f"< {self.estimate:.3g}"
        if self.status == "unresolved":
            return "unresolved"
        return f"{self.estimate:.3g} [{self.low:.3g}, {self.high:.3g}]"


def _crossing(depths: np.ndarray, curve: np.ndarray, threshold: float) -> float | None:
    """Depth where ``curve`` first falls below ``threshold`` (None: never; -inf: at the first)."""
    below = np.flatnonzero(~(curve >= threshold))
    if not below.size:
        return None
    i = int(below[0])
    if i == 0:
        return -math.inf
    d0, d1, c0, c1 = depths[i - 1], depths[i], curve[i - 1], curve[i]
    if not math.isfinite(c1):
        return float(d0)
    if c0 > 0 and c1 > 0 and threshold > 0:
        t = (math.log(c0) - math.log(threshold)) / (math.log(c0) - math.log(c1))
    else:
        t = (c0 - threshold) / (c0 - c1)
    return float(d0 + min(max(t, 0.0), 1.0) * (d1 - d0))


def depth_limit(depths, values, errors, threshold: float, z: float = Z) -> DepthLimit:
    """The depth limit of one probe from its criterion values and standard errors per depth."""
    order = np.argsort(np.asarray(depths, dtype=np.float64))
    d = np.asarray(depths, dtype=np.float64)[order]
    c = np.asarray(values, dtype=np.float64)[order]
    s = np.asarray(errors, dtype=np.float64)[order]
    s = np.where(np.isfinite(s), s, np.inf)
    if not d.size:
        return DepthLimit(math.nan, math.nan, math.nan, "unresolved")
    est, low, high = (_crossing(d, c, threshold), _crossing(d, c - z * s, threshold),
                      _crossing(d, c + z * s, threshold))
    if est is None:                       # the mean never falls below: a lower bound
        if low is None:
            return DepthLimit(float(d[-1]), float(d[-1]), math.inf, "beyond")
        return DepthLimit(float(d[-1]), max(low, float(d[0])), math.inf, "unresolved")
    if est == -math.inf:
        if high == -math.inf:
            return DepthLimit(float(d[0]), -math.inf, float(d[0]), "shallower")
        return DepthLimit(float(d[0]), -math.inf, float(d[0]) if high is None else high, "unresolved")
    low = float(d[0]) if low == -math.inf else low
    high = math.inf if high is None else high
    return DepthLimit(est, low, high, "crossing")
