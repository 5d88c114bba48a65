"""Measuring a checked quantity from a Result and judging it against its reference.

The rule
--------
A check passes when

    |value - reference| <= Z_MAX * sigma,   sigma = sqrt(SE**2 + tolerance**2),   Z_MAX = 4,

where SE is the batch-means standard error of the simulated value (the run is split into 20 equal
batches, so SE has 19 degrees of freedom) and ``tolerance`` the reference's own standard
uncertainty (rounding of the published digits, its Monte Carlo or discretisation error).

Why 4: the deviation divided by sigma follows roughly Student's t with 19 degrees of freedom, for
which P(|t| > 4) = 8e-4; over the ~20 checks of the full set a false alarm is then ~1.5 % likely,
and the seeds are fixed, so a passing table stays passing until the physics changes. Why this is
still strict: at each case's full photon count sigma is below 0.5 % of every checked value (0.2 %
for the van de Hulst Rd), so a 2 % error lies beyond 4 sigma and fails; tests/test_validation.py
checks this for every case on a kernel backend. Exact references (Beer-Lambert) have SE = 0 and a
tolerance of float32 rounding, so there the rule checks to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from photonqd.tallies import batch_mean_error

from .cases import Case, Check

Z_MAX = 4.0

#: Checked quantities: meaning, and the Result scalar columns (photonqd.tallies.SCALAR_COLUMNS)
#: whose sum they are.
QUANTITIES = {
    "R": ("total reflectance (specular + diffuse)", ("specular", "escaped z-")),
    "Rd": ("diffuse reflectance", ("escaped z-",)),
    "T": ("total transmittance (unscattered included)", ("escaped z+",)),
    "A": ("absorbed fraction", ("absorbed",)),
}


def measure(result, quantity: str) -> tuple[float, float]:
    """Mean and batch-means standard error of ``quantity`` in ``result``."""
    _, columns = QUANTITIES[quantity]
    per_batch = np.sum([result.batch_values(col) for col in columns], axis=0)
    return batch_mean_error(per_batch, result.batch_photons)


@dataclass(frozen=True)
class Outcome:
    """One check of one case after a run."""

    case: Case
    check: Check
    value: float
    error: float  # batch-means standard error

    @property
    def sigma(self) -> float:
        return math.hypot(self.error, self.check.tolerance)

    @property
    def deviation(self) -> float:
        """(value - reference) in units of sigma."""
        return (self.value - self.check.reference) / self.sigma

    @property
    def passed(self) -> bool:
        # a NaN error (fewer than two batches) must not pass silently
        return bool(abs(self.deviation) <= Z_MAX)


def judge(case: Case, result) -> list[Outcome]:
    """Every check of ``case`` against a finished run of it."""
    return [Outcome(case, check, *measure(result, check.quantity)) for check in case.checks]
