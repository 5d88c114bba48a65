"""Discrete sampling tables shared by the kernels and the NumPy reference."""

from __future__ import annotations

import numpy as np


def alias_table(weights) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table for sampling index i with probability weights[i] / sum(weights).

    Returns (accept, alias): draw k uniformly in [0, n), keep k if a second uniform is below
    accept[k], else take alias[k]. Exact up to the float32 rounding of ``accept``.
    """
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights: need at least one positive, finite, non-negative weight")
    n = w.size
    scaled = w * (n / w.sum())
    accept = np.ones(n)
    alias = np.arange(n, dtype=np.int64)
    small = list(np.flatnonzero(scaled < 1.0))
    large = list(np.flatnonzero(scaled >= 1.0))
    while small and large:
        s, g = small.pop(), large[-1]
        accept[s] = scaled[s]
        alias[s] = g
        scaled[g] -= 1.0 - scaled[s]
        if scaled[g] < 1.0:
            large.pop()
            small.append(g)
    # leftovers are 1 up to rounding
    return accept.astype(np.float32), alias.astype(np.uint32)


def alias_probabilities(accept: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The distribution an alias table samples (for tests)."""
    n = len(accept)
    p = accept.astype(np.float64) / n
    np.add.at(p, alias.astype(np.int64), (1.0 - accept.astype(np.float64)) / n)
    return p
