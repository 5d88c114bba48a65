"""Argument conversion that names the field: every bad value becomes a ValueError or TypeError
whose message starts with the field's name and says what is allowed, never a bare NumPy or int()
message."""

from __future__ import annotations

import math
import numbers

import numpy as np

#: Largest float32 value: lengths and times the kernels hold in float32 must stay below it.
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Smallest normal float32: smaller positive values lose precision or flush to zero in the kernels.
FLOAT32_TINY = float(np.finfo(np.float32).tiny)


def integer(name: str, value, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi]; a float must be whole (1000.0 is 1000, 2.5 is refused)."""
    allowed = f"must be an integer in [{lo}, {hi}]"
    if isinstance(value, (str, bytes)):
        try:
            value = int(value)
        except ValueError:
            raise ValueError(f"{name}: {allowed}, got {value!r}") from None
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: {allowed}, got {value!r}")
    if isinstance(value, numbers.Integral):
        out = int(value)
    else:
        if not (math.isfinite(value) and float(value).is_integer()):
            raise ValueError(f"{name}: {allowed}, got {value!r}")
        out = int(value)
    if not lo <= out <= hi:
        raise ValueError(f"{name}: {allowed}, got {value!r}")
    return out


def real(name: str, value, allowed: str) -> float:
    """``value`` as a float (a real number, not a string or None); the range is the caller's."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number ({allowed}), got {value!r}")
    return float(value)


def float_array(name: str, value, shape: tuple | None = None) -> np.ndarray:
    """``value`` as a float64 array (broadcast to ``shape`` if given), naming ``name`` on failure."""
    try:
        out = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers, got {value!r}") from None
    if shape is not None:
        if out.ndim > len(shape) or (out.ndim and out.shape != shape and out.size != 1):
            raise ValueError(f"{name}: expected {int(np.prod(shape))} numbers (or one for all), got {value!r}")
        out = np.broadcast_to(out.reshape(()) if out.size == 1 and out.ndim else out, shape).copy()
    return out
