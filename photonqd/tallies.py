"""Tally layout (shared with kernels/transport.cl) and the normalised result of a simulation.

Tallies accumulate as 64-bit integers in fixed point, so sums are exact, independent of the order
in which threads add them, and identical run to run:
  photon weight:            2**32 per unit weight (absorbed, escaped, specular, exit map, ...)
  track length (fluence):   2**24 per unit weight x mm
A launch is sized so that no entry can wrap (kernel_source.max_launch_photons: one photon adds
at most 1 + MAX_ROULETTE_GAIN weight and its flight-time bound in track length to any entry);
launches are merged on the host in an ExactSum, which cannot wrap either. Sums are converted and
divided by the number of launched photons on the host.

Energy balance: every launched unit of weight ends in exactly one of specular, missed, absorbed,
escaped (six faces and ambient voxels), alive-at-gate or stopped (by a guard); Russian roulette
adds (survivors) or removes (losers) weight, tallied as ``roulette`` (expectation 0). In fixed
point the identity specular + missed + absorbed + escaped + alive + stopped - roulette = 1 holds
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .kernel_abi import (COUNT_SLOTS, FACES, FIX_TRACK, FIX_WEIGHT, MAX_INDEX, N_SCALARS,
                         SCALAR_SLOTS)

#: The largest number of photons one run may launch: photon indices are 64-bit and launches are
#: merged exactly (ExactSum), so the limit is where a per-photon normalisation stops being exact.
MAX_PHOTONS = 2**53


@dataclass(frozen=True)
class TallyLayout:
    """Offsets of each tally in the flat int64 buffer: absorbed weight (n_voxels), fluence track
    (fluence_bands volumes of n_voxels, one per wavelength band; none without fluence), absorbed
    weight per fluorophore species (n_species volumes), scalar slots, exit map."""

    n_voxels: int
    fluence: bool
    n_species: int
    map_pixels: int
    fluence_bands: int = 1

    @property
    def off_fluence(self) -> int:
        return self.n_voxels

    @property
    def fluence_volumes(self) -> int:
        return self.fluence_bands if self.fluence else 0

    @property
    def off_species(self) -> int:
        """Start of the per-species absorbed weight, (n_species, n_voxels)."""
        return self.n_voxels * (1 + self.fluence_volumes)

    @property
    def off_scalar(self) -> int:
        return self.off_species + self.n_species * self.n_voxels

    @property
    def off_map(self) -> int:
        return self.off_scalar + N_SCALARS

    @property
    def size(self) -> int:
        return self.off_map + self.map_pixels

    def check(self) -> None:
        """Refuse a layout the kernel's 32-bit indices cannot address, before anything is allocated."""
        if self.size > MAX_INDEX:
            raise ValueError(
                f"tallies: {self.size} entries (medium: {self.n_voxels} voxels x "
                f"{self.off_scalar // self.n_voxels} volume tallies + {self.map_pixels} exit_map "
                f"pixels) exceed the kernel's limit of {MAX_INDEX}; use fewer voxels, fewer "
                "fluorophore species, fewer fluence_bands, fluence=False or a smaller exit_map")


class ExactSum:
    """Exact running sum of int64 tally buffers: two limbs (high words and low 32 bits), so the
    total of any number of launches never wraps (range 2^95) and does not depend on how the
    photons were split into launches."""

    def __init__(self, size: int):
        self.hi = np.zeros(size, dtype=np.int64)
        self.lo = np.zeros(size, dtype=np.int64)   # always in [0, 2^32)

    def add(self, values: np.ndarray) -> None:
        self.lo += values                 # |values| < 2^62 and lo < 2^32: cannot overflow
        carry = self.lo >> 32             # floor division, also for negative sums
        self.hi += carry
        self.lo -= carry << 32

    def merge(self, other: "ExactSum") -> None:
        """Add another exact sum (a chunk of the same run computed elsewhere): still exact."""
        self.hi += other.hi
        self.add(other.lo)                # lo < 2^33 after adding: the carry moves into hi

    def __getstate__(self):
        # compact for transfers and checkpoints: lo fits 32 bits; hi is all zero (sent as its
        # length) or fits 32 bits unless a run is huge
        hi = self.hi
        if not hi.any():
            hi = hi.size
        elif np.abs(hi).max() < 2**31:
            hi = hi.astype(np.int32)
        return {"lo": self.lo.astype(np.uint32), "hi": hi}

    def __setstate__(self, state):
        self.lo = state["lo"].astype(np.int64)
        hi = state["hi"]
        self.hi = np.zeros(hi, dtype=np.int64) if isinstance(hi, int) else hi.astype(np.int64)

    def as_float(self) -> np.ndarray:
        return self.hi.astype(np.float64) * 2.0**32 + self.lo.astype(np.float64)

    def value(self, index: int) -> int:
        """One entry as an exact Python integer."""
        return int(self.hi[index]) * 2**32 + int(self.lo[index])


@dataclass
class Result:
    """Tallies of one simulation, per launched photon.

    absorbed:            absorbed weight per voxel (nx, ny, nz), fraction of launched photons.
    fluence:             fluence per voxel (nx, ny, nz) in 1/mm² per launched photon (track length
                         / voxel volume); with Simulation.fluence_bands, one volume per band
                         (n_bands, nx, ny, nz); None if not tallied.
    escaped:             escaped weight per box face, dict keyed by medium.FACES.
    escaped_ambient:     weight that left into ambient (label 0) voxels inside the box.
    specular:            reflected at entry (source on or outside the surface).
    stopped:             weight of photons stopped by a guard (flight time ``max_flight_ns``,
                         ``max_steps`` or roulette gain): 0 in a well-posed problem.
    missed:              never entered tissue (extended source partly outside the grid).
    alive:               still propagating when the time gate closed.
    roulette:            net weight added by Russian roulette (expectation 0).
    exit_map:            escaped weight through z = 0 per pixel (mx, my), times the map's
                         per-bin efficiency, or None.
    fluorophore_absorbed: weight absorbed by each fluorophore species per voxel
                         (n_species, nx, ny, nz), or None without fluorophores.
    detected:            record of photons scored into the exit map, structured array with
                         x, y [mm], ux, uy, uz (in the ambient medium), bin, weight (before the
                         efficiency) and time_ns (time of flight), or None.
    detected_overflow:   photons that did not fit into the record (counted, not dropped silently).
    interactions:        mean number of scattering events per launched photon.
    steps:               mean number of transport loop iterations per launched photon.
    batch_scalars:       per-batch normalised scalar tallies (n_batches, N_SCALARS), for
                         batch-means standard errors.
    """

    photons: int
    backend: str
    device: str
    absorbed: np.ndarray
    fluence: np.ndarray | None
    escaped: dict
    escaped_ambient: float
    specular: float
    missed: float
    alive: float
    roulette: float
    stopped: float
    exit_map: np.ndarray | None
    interactions: float
    steps: float
    batch_photons: np.ndarray
    batch_scalars: np.ndarray
    batch_tallies: list | None = None
    fluorophore_absorbed: np.ndarray | None = None
    detected: np.ndarray | None = None
    detected_overflow: int = 0
    trace: np.ndarray | None = None
    seconds: float = 0.0          # wall time: kernel preparation + transport
    extra: dict = field(default_factory=dict)

    @property
    def diffuse_reflectance(self) -> float:
        """Weight escaping through the z = 0 face (excludes specular)."""
        return self.escaped["z-"]

    @property
    def transmittance(self) -> float:
        """Weight escaping through the z = max face (includes unscattered light)."""
        return self.escaped["z+"]

    @property
    def absorbed_fraction(self) -> float:
        return float(self.absorbed.sum())

    def energy_balance(self) -> float:
        """specular + missed + absorbed + escaped + alive + stopped - roulette; equals 1 to rounding."""
        return (self.specular + self.missed + self.absorbed_fraction + sum(self.escaped.values())
                + self.escaped_ambient + self.alive + self.stopped - self.roulette)

    def batch_values(self, name: str) -> np.ndarray:
        """Per-batch values of a scalar quantity (see ``SCALAR_COLUMNS``)."""
        return self.batch_scalars[:, scalar_column(name)]

    def mean_and_error(self, name: str) -> tuple[float, float]:
        """Photon-weighted batch mean and its standard error (batch means) for a scalar quantity."""
        return batch_mean_error(self.batch_values(name), self.batch_photons)


#: Columns of Result.batch_scalars: the kernel's scalar slots, then the absorbed total, the exit
#: map total and the absorbed total of each fluorophore species ("fluorophore 0", ...).
SCALAR_COLUMNS = {
    **{name.lower(): i for name, i in SCALAR_SLOTS.items() if name != "ESCAPE"},
    **{f"escaped {face}": SCALAR_SLOTS["ESCAPE"] + i for i, face in enumerate(FACES)},
    "absorbed": N_SCALARS, "exit_map": N_SCALARS + 1,
}


def scalar_column(name: str) -> int:
    if name.startswith("fluorophore "):
        return len(SCALAR_COLUMNS) + int(name.split()[1])
    if name not in SCALAR_COLUMNS:
        raise KeyError(f"{name!r}: batch quantities are {list(SCALAR_COLUMNS)} and 'fluorophore <i>'")
    return SCALAR_COLUMNS[name]


def batch_mean_error(values: np.ndarray, photons: np.ndarray) -> tuple[float, float]:
    """Weighted mean of per-batch estimates and its standard error from the batch scatter."""
    values = np.asarray(values, dtype=np.float64)
    w = np.asarray(photons, dtype=np.float64)
    mean = float(np.sum(w * values) / w.sum())
    if len(values) < 2:
        return mean, float("nan")
    var = np.sum(w * (values - mean) ** 2) / w.sum() * len(values) / (len(values) - 1)
    return mean, float(np.sqrt(var / len(values)))


def normalise(raw: np.ndarray, layout: TallyLayout, photons: int) -> dict:
    """Convert a raw tally buffer (int64, or the float value of an ExactSum) into per-photon
    floating-point quantities."""
    raw = np.asarray(raw, dtype=np.float64)
    s = raw[layout.off_scalar:layout.off_map]
    scalars = s / FIX_WEIGHT / photons
    for count in COUNT_SLOTS:  # counts, not fixed-point weights
        scalars[SCALAR_SLOTS[count]] = s[SCALAR_SLOTS[count]] / photons
    return {
        "absorbed": raw[:layout.n_voxels] / FIX_WEIGHT / photons,
        "track": (raw[layout.off_fluence:layout.off_species] / FIX_TRACK / photons)
        if layout.fluence else None,
        "species": raw[layout.off_species:layout.off_scalar] / FIX_WEIGHT / photons,
        "scalars": scalars,
        "map": raw[layout.off_map:layout.size] / FIX_WEIGHT / photons,
    }
