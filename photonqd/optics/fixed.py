"""Wavelength-independent optics: a tissue given directly by (μa, μs, g, n).

For problems stated by their optical coefficients rather than by a composition: MCX's benchmarks,
the validation slabs, a user's measured medium at one wavelength. It takes the same values at every
wavelength, so it sits in a photonqd.scene.Scene beside composition-based tissues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .provenance import Provenance, check_wavelengths
from .tissue import TissueOptics


@dataclass(frozen=True)
class FixedOptics:
    """μa and μs in mm⁻¹, the anisotropy g in (-1, 1) and the refractive index n >= 1, the same at
    every wavelength; ``citation`` (optional) is recorded in the provenance under ``name``."""

    mua: float
    mus: float
    g: float
    n: float
    name: str = "fixed"
    citation: str = ""

    def __post_init__(self):
        for field, value, ok, allowed in (("mua", self.mua, lambda v: v >= 0, ">= 0 1/mm"),
                                          ("mus", self.mus, lambda v: v >= 0, ">= 0 1/mm"),
                                          ("g", self.g, lambda v: -1 < v < 1, "in (-1, 1)"),
                                          ("n", self.n, lambda v: v >= 1, ">= 1")):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not (math.isfinite(value) and ok(value)):
                raise ValueError(f"{self.name}.{field}: must be {allowed}, got {value!r}")

    @property
    def row(self) -> tuple[float, float, float, float]:
        """(μa, μs, g, n): one row of the engine's optics table."""
        return (float(self.mua), float(self.mus), float(self.g), float(self.n))

    def properties(self, wavelengths_nm) -> TissueOptics:
        wl = check_wavelengths(wavelengths_nm)
        provenance = Provenance()
        if self.citation:
            provenance.cite(f"{self.name}.optics", self.citation)
        mus_reduced = self.mus * (1.0 - self.g)
        return TissueOptics(wl, np.full_like(wl, self.mua), np.full_like(wl, self.mus),
                            np.full_like(wl, mus_reduced), np.full_like(wl, self.g), np.full_like(wl, self.n),
                            provenance)
