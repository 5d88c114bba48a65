"""Tally layout (shared with kernels/transport.cl) and the normalised result of a simulation.

Tallies accumulate as 64-bit integers in fixed point, so sums are exact, independent of the order
in which threads add them, and identical run to run:
  photon weight:            2**32 per unit weight (absorbed, escaped, specular, exit map, ...)
  track length (fluence):   2**24 per unit weight x mm
Integer sums are converted and divided by the number of launched photons on the host.

Energy balance: every launched unit of weight ends in exactly one of specular, missed, absorbed,
escaped (six faces and ambient voxels) or alive-at-gate; Russian roulette adds (survivors) or removes
(losers) weight, tallied as ``roulette`` (expectation 0). In fixed point the identity
specular + missed + absorbed + escaped + alive - roulette = 1 holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .medium import FACES

FIX_WEIGHT = 2.0**32
FIX_TRACK = 2.0**24

#: Scalar tally slots, in kernel order (TALLY_<NAME> in kernels/transport.cl).
SCALAR_SLOTS = {
    "SPECULAR": 0,
    "MISSED": 1,
    "ESCAPE": 2,           # six slots, one per face in medium.FACES order
    "ESCAPE_AMBIENT": 8,   # into ambient (label 0) voxels inside the box
    "ALIVE": 9,            # still propagating when the time gate closed
    "ROULETTE": 10,        # net weight added by Russian roulette
    "INTERACTIONS": 11,    # number of scattering events (a count, not fixed point)
    "DETECTED": 12,        # photons offered to the detected-photon record (a count)
}
N_SCALARS = 13

#: Trace event codes (EV_<NAME> in kernels/transport.cl).
EVENTS = {"LAUNCH": 0, "SCATTER": 1, "CROSS": 2, "REFLECT": 3, "ESCAPE": 4, "GATE": 5,
          "ROULETTE": 6, "MISSED": 7}

#: The largest number of photons one run may launch: weight sums stay below 2**63.
MAX_PHOTONS = 2**31 - 1


@dataclass(frozen=True)
class TallyLayout:
    """Offsets of each tally in the flat int64 buffer."""

    n_voxels: int
    fluence: bool
    n_species: int
    map_pixels: int

    @property
    def off_fluence(self) -> int:
        return self.n_voxels

    @property
    def off_species(self) -> int:
        """Start of the per-species absorbed weight, (n_species, n_voxels)."""
        return self.n_voxels * (2 if self.fluence else 1)

    @property
    def off_scalar(self) -> int:
        return self.off_species + self.n_species * self.n_voxels

    @property
    def off_map(self) -> int:
        return self.off_scalar + N_SCALARS

    @property
    def size(self) -> int:
        return self.off_map + self.map_pixels


@dataclass
class Result:
    """Tallies of one simulation, per launched photon.

    absorbed:            absorbed weight per voxel (nx, ny, nz), fraction of launched photons.
    fluence:             fluence per voxel (nx, ny, nz) in 1/mm² per launched photon (track length
                         / voxel volume); None if not tallied.
    escaped:             escaped weight per box face, dict keyed by medium.FACES.
    escaped_ambient:     weight that left into ambient (label 0) voxels inside the box.
    specular:            reflected at entry (source on or outside the surface).
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
    exit_map: np.ndarray | None
    interactions: float
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
        """specular + missed + absorbed + escaped + alive - roulette; equals 1 to rounding."""
        return (self.specular + self.missed + self.absorbed_fraction + sum(self.escaped.values())
                + self.escaped_ambient + self.alive - self.roulette)

    def batch_values(self, name: str) -> np.ndarray:
        """Per-batch values of a scalar quantity (see ``SCALAR_COLUMNS``)."""
        return self.batch_scalars[:, scalar_column(name)]

    def mean_and_error(self, name: str) -> tuple[float, float]:
        """Photon-weighted batch mean and its standard error (batch means) for a scalar quantity."""
        return batch_mean_error(self.batch_values(name), self.batch_photons)


#: Columns of Result.batch_scalars: the kernel's scalar slots, then the absorbed total, the exit
#: map total and the absorbed total of each fluorophore species ("fluorophore 0", ...).
SCALAR_COLUMNS = {
    "specular": 0, "missed": 1,
    **{f"escaped {face}": 2 + i for i, face in enumerate(FACES)},
    "escaped_ambient": 8, "alive": 9, "roulette": 10, "interactions": 11, "detected": 12,
    "absorbed": 13, "exit_map": 14,
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
    """Convert a raw int64 tally buffer into per-photon floating-point quantities."""
    s = raw[layout.off_scalar:layout.off_map].astype(np.float64)
    scalars = s / FIX_WEIGHT / photons
    for count in ("INTERACTIONS", "DETECTED"):  # counts, not fixed-point weights
        scalars[SCALAR_SLOTS[count]] = s[SCALAR_SLOTS[count]] / photons
    out = {
        "absorbed": raw[:layout.n_voxels].astype(np.float64) / FIX_WEIGHT / photons,
        "track": (raw[layout.off_fluence:layout.off_fluence + layout.n_voxels].astype(np.float64)
                  / FIX_TRACK / photons) if layout.fluence else None,
        "species": raw[layout.off_species:layout.off_scalar].astype(np.float64) / FIX_WEIGHT / photons,
        "scalars": scalars,
        "map": raw[layout.off_map:layout.size].astype(np.float64) / FIX_WEIGHT / photons,
    }
    return out
