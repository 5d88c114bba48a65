"""Provenance of optical values: which sources were used and what was extrapolated.

Every spectrum and model knows the wavelength range its source measured. Evaluating outside that range
is allowed, but it is recorded here, and the record travels with the values into the optics table and
from there into results (``Provenance.to_dict`` gives plain types for HDF5/JSON).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np


class ExtrapolationWarning(UserWarning):
    """A value was evaluated outside its source's measured range and no Provenance was given."""


@dataclass
class Extrapolation:
    """One quantity evaluated outside the range its source measured."""

    quantity: str
    source: str
    valid_nm: tuple[float, float]
    requested_nm: tuple[float, float]
    n_points: int
    method: str

    def to_dict(self) -> dict:
        return {
            "quantity": self.quantity,
            "source": self.source,
            "valid_nm": [float(v) for v in self.valid_nm],
            "requested_nm": [float(v) for v in self.requested_nm],
            "n_points": int(self.n_points),
            "method": self.method,
        }


@dataclass
class Provenance:
    """Citations, extrapolations, typical-value labels and model-uncertainty notes for a set of values."""

    sources: dict[str, str] = field(default_factory=dict)
    extrapolations: list[Extrapolation] = field(default_factory=list)
    typical: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def cite(self, key: str, citation: str) -> None:
        self.sources[key] = citation

    def label_typical(self, quantity: str, basis: str) -> None:
        """Mark a value as typical (representative of the literature), not measured for this case."""
        self.typical[quantity] = basis

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def record_extrapolation(self, quantity, source, valid_nm, wavelengths_outside, method) -> None:
        """Record the wavelengths at which ``quantity`` was evaluated outside ``valid_nm``."""
        outside = np.asarray(wavelengths_outside, dtype=float)
        self._add(Extrapolation(quantity, source, (float(valid_nm[0]), float(valid_nm[1])),
                                (float(outside.min()), float(outside.max())), int(outside.size), method))

    def _add(self, new: Extrapolation) -> None:
        # One record per (quantity, source, method): repeated evaluations widen it.
        for e in self.extrapolations:
            if (e.quantity, e.source, e.method) == (new.quantity, new.source, new.method):
                e.requested_nm = (min(e.requested_nm[0], new.requested_nm[0]),
                                  max(e.requested_nm[1], new.requested_nm[1]))
                e.n_points += new.n_points
                return
        self.extrapolations.append(Extrapolation(new.quantity, new.source, new.valid_nm,
                                                 new.requested_nm, new.n_points, new.method))

    @property
    def extrapolated_quantities(self) -> list[str]:
        return sorted({e.quantity for e in self.extrapolations})

    def merge(self, other: "Provenance") -> "Provenance":
        """Fold ``other`` into this record (in place) and return self."""
        self.sources.update(other.sources)
        self.typical.update(other.typical)
        for text in other.notes:
            self.note(text)
        for e in other.extrapolations:
            self._add(e)
        return self

    def to_dict(self) -> dict:
        return {
            "sources": dict(self.sources),
            "extrapolations": [e.to_dict() for e in self.extrapolations],
            "extrapolated_quantities": self.extrapolated_quantities,
            "typical": dict(self.typical),
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Provenance":
        return cls(
            sources=dict(d.get("sources", {})),
            extrapolations=[
                Extrapolation(e["quantity"], e["source"], tuple(e["valid_nm"]), tuple(e["requested_nm"]),
                              e["n_points"], e["method"])
                for e in d.get("extrapolations", [])
            ],
            typical=dict(d.get("typical", {})),
            notes=list(d.get("notes", [])),
        )


def check_wavelengths(wavelengths_nm) -> np.ndarray:
    """Return wavelengths as a float array; raise ValueError unless all are finite and > 0."""
    wl = np.asarray(wavelengths_nm, dtype=float)
    if wl.size == 0 or not np.all(np.isfinite(wl)) or np.any(wl <= 0):
        raise ValueError("wavelengths_nm: every wavelength must be finite and > 0 nm")
    return wl


def check_range(wl, valid_nm, quantity, source, provenance, method) -> None:
    """Record (or warn about) the wavelengths of ``wl`` outside ``valid_nm``."""
    outside = wl[(wl < valid_nm[0]) | (wl > valid_nm[1])]
    if outside.size == 0:
        return
    if provenance is None:
        warnings.warn(
            f"{quantity} ({source}) evaluated at {outside.min():g}-{outside.max():g} nm, outside the "
            f"measured range {valid_nm[0]:g}-{valid_nm[1]:g} nm ({method}); pass a Provenance to record it",
            ExtrapolationWarning,
            stacklevel=3,
        )
    else:
        provenance.record_extrapolation(quantity, source, valid_nm, outside, method)
