"""Tabulated spectra: the packaged chromophore tables and user-supplied tables.

A :class:`Spectrum` is a table of a positive quantity against wavelength [nm] that knows its unit,
its citation and the wavelength range its source measured. Absorption is interpolated linearly in
log(value) against wavelength (absorption bands are closer to exponential than linear between
samples); outside the table the end value is held, and the evaluation is recorded as an
extrapolation (see :mod:`photonqd.optics.provenance`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .provenance import Provenance, check_range, check_wavelengths

DATA_DIR = Path(__file__).with_name("data")


@dataclass(frozen=True)
class Spectrum:
    """A tabulated spectrum.

    Parameters
    ----------
    name : quantity name used in provenance records, e.g. ``"mua_water"``.
    wavelengths_nm : strictly increasing wavelengths [nm].
    values : values at those wavelengths (in ``unit``); must be > 0 when ``log_interp``.
    unit : unit of ``values``, e.g. ``"mm^-1"``.
    source : short citation key; ``citation`` the full reference.
    valid_nm : measured range (defaults to the table's range).
    log_interp : interpolate log(value) (absorption) rather than value (e.g. anisotropy).
    """

    name: str
    wavelengths_nm: np.ndarray
    values: np.ndarray
    unit: str
    source: str
    citation: str = ""
    valid_nm: tuple[float, float] | None = None
    log_interp: bool = True

    def __post_init__(self):
        wl = check_wavelengths(self.wavelengths_nm)
        v = np.asarray(self.values, dtype=float)
        if wl.ndim != 1 or wl.shape != v.shape or wl.size < 2:
            raise ValueError(f"{self.name}: wavelengths_nm and values must be 1-D of equal length >= 2")
        if np.any(np.diff(wl) <= 0):
            raise ValueError(f"{self.name}: wavelengths_nm must be strictly increasing")
        if not np.all(np.isfinite(v)) or (self.log_interp and np.any(v <= 0)):
            raise ValueError(f"{self.name}: values must be finite" + (" and > 0" if self.log_interp else ""))
        object.__setattr__(self, "wavelengths_nm", wl)
        object.__setattr__(self, "values", v)
        if self.valid_nm is None:
            object.__setattr__(self, "valid_nm", (float(wl[0]), float(wl[-1])))

    def __call__(self, wavelengths_nm, provenance: Provenance | None = None) -> np.ndarray:
        """Values at ``wavelengths_nm`` (any shape); extrapolation is recorded in ``provenance``."""
        wl = check_wavelengths(wavelengths_nm)
        check_range(wl, self.valid_nm, self.name, self.source, provenance, "end value held")
        if provenance is not None:
            provenance.cite(self.source, self.citation or self.source)
        if self.log_interp:
            return np.exp(np.interp(wl, self.wavelengths_nm, np.log(self.values)))
        return np.interp(wl, self.wavelengths_nm, self.values)


def read_table(filename: str) -> tuple[dict[str, str], list[str], np.ndarray]:
    """Header (``# key: value`` lines), column names and data of a packaged CSV file."""
    header, rows, columns = {}, [], None
    for line in (DATA_DIR / filename).read_text().splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
        elif columns is None:
            columns = line.split(",")
        elif line.strip():
            rows.append(line.split(","))
    return header, columns, np.array(rows, dtype=float)


@lru_cache(maxsize=None)
def packaged_spectrum(filename: str, source: str, column: int = 1) -> Spectrum:
    """Load column ``column`` of a packaged table as a :class:`Spectrum` (cached)."""
    header, columns, data = read_table(filename)
    lo, hi = (float(v) for v in header["valid_range_nm"].split("-"))
    return Spectrum(
        name=header["quantity"] if len(columns) == 2 else f"{header['quantity']}:{columns[column]}",
        wavelengths_nm=data[:, 0],
        values=data[:, column],
        unit=header["unit"],
        source=source,
        citation=header["citation"],
        valid_nm=(lo, hi),
        log_interp=header.get("interpolation", "log") == "log",
    )
