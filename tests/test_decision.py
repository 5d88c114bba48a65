"""Detection decisions with Monte Carlo errors (photonqd.decision)."""

import math

import numpy as np
import pytest

from photonqd.decision import DETECTABLE, NOT_DETECTABLE, UNDECIDED, Z, depth_limit, verdict


def test_verdict_keeps_z_errors_from_the_threshold():
    assert verdict(5.0, 0.9, 3.0) == DETECTABLE          # 5 - 2 x 0.9 = 3.2 >= 3
    assert verdict(5.0, 1.1, 3.0) == UNDECIDED           # 5 - 2.2 < 3 <= 5 + 2.2
    assert verdict(1.0, 0.9, 3.0) == NOT_DETECTABLE      # 1 + 1.8 < 3
    assert verdict(3.0, 0.0, 3.0) == DETECTABLE
    assert verdict(float("nan"), 0.1, 3.0) == UNDECIDED
    assert verdict(10.0, float("nan"), 3.0) == UNDECIDED
    assert verdict(5.0, 1.1, 3.0, z=1.0) == DETECTABLE


def test_crossing_of_an_exponential_is_found_between_grid_depths():
    depths = np.arange(1.0, 11.0)
    cnr = 300 * np.exp(-(depths - 1.0))                  # crosses 3 at 1 + ln(100)
    limit = depth_limit(depths, cnr, 0.05 * cnr, 3.0)
    assert limit.status == "crossing"
    assert limit.estimate == pytest.approx(1 + math.log(100), abs=1e-9)
    # the interval is the crossings of cnr (1 -+ 2 x 0.05): log-linear between grid points
    assert limit.low == pytest.approx(1 + math.log(100 * 0.9), abs=1e-9)
    assert limit.high == pytest.approx(1 + math.log(100 * 1.1), abs=1e-9)
    assert limit.half_width == pytest.approx(0.5 * math.log(1.1 / 0.9), abs=1e-9)


def test_bounds_at_the_ends_of_the_range():
    depths = [1.0, 2.0, 3.0]
    beyond = depth_limit(depths, [50, 20, 10], [1, 1, 1], 3.0)
    assert beyond.status == "beyond" and beyond.estimate == 3.0 and beyond.describe() == ">= 3"
    shallower = depth_limit(depths, [1, 0.5, 0.1], [0.1, 0.1, 0.1], 3.0)
    assert shallower.status == "shallower" and shallower.describe() == "< 1"
    # the mean stays above the threshold but its band does not: no bound can be claimed
    unresolved = depth_limit(depths, [50, 20, 4], [1, 1, 2], 3.0)
    assert unresolved.status == "unresolved"


def test_unsorted_input_and_infinite_errors():
    limit = depth_limit([3.0, 1.0, 2.0], [1.0, 30.0, 9.0], [float("nan"), 1.0, 1.0], 3.0)
    assert limit.status == "crossing" and 2.0 < limit.estimate < 3.0
    assert limit.high == math.inf     # an unknown error at the deeper depth gives no upper bound


def test_z_is_two():
    assert Z == 2.0
