"""The medium: a voxel label volume, its optical-property table and the box's boundary conditions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .checks import FLOAT32_TINY, float_array
from .kernel_abi import BOUNDARY_CONDITIONS, FACES, MAX_INDEX, MAX_SPECIES

#: Largest grid the 32-bit voxel indexing of the kernels supports (the tally buffer, which holds
#: more than one value per voxel, is checked against the same limit when a simulation is planned).
MAX_VOXELS = MAX_INDEX
#: Largest box edge (mm): 1000 km (1e9 mm), far beyond any tissue, keeps float32 arithmetic finite.
MAX_EXTENT_MM = 1e9


def _as_boundary(boundary) -> dict[str, str]:
    if isinstance(boundary, str):
        boundary = {face: boundary for face in FACES}
    if not isinstance(boundary, dict):
        raise TypeError(f"boundary: expected one of {BOUNDARY_CONDITIONS} or a dict face -> condition, "
                        f"got {boundary!r}")
    boundary = dict(boundary)
    unknown = set(boundary) - set(FACES)
    if unknown:
        raise ValueError(f"boundary: unknown face(s) {sorted(unknown, key=repr)}; faces are {FACES}")
    out = {face: boundary.get(face, "escape") for face in FACES}
    for face, bc in out.items():
        if not isinstance(bc, str) or bc not in BOUNDARY_CONDITIONS:
            raise ValueError(f"boundary[{face!r}] = {bc!r}; allowed: {BOUNDARY_CONDITIONS}")
    for lo, hi in (("x-", "x+"), ("y-", "y+"), ("z-", "z+")):
        if (out[lo] == "cyclic") != (out[hi] == "cyclic"):
            raise ValueError(f"boundary: cyclic must be set on both {lo} and {hi}")
    return out


@dataclass
class Medium:
    """A voxelised medium.

    labels:     integer array (nx, ny, nz), uint8 or uint16; label 0 is the ambient medium.
    voxel_size: (dx, dy, dz) in mm (a single number for cubic voxels).
    optics:     float array (n_bins, n_labels, 4) of (mu_a [1/mm], mu_s [1/mm], g, n) per wavelength
                bin and label; a (n_labels, 4) array is one bin. Row 0 (ambient) is not used.
    n_ambient:  refractive index of the ambient medium (label 0 and outside the box).
    boundary:   per face of the box ('x-', 'x+', 'y-', 'y+', 'z-', 'z+'): 'escape' (Fresnel against
                n_ambient, then the photon leaves), 'mirror' or 'cyclic'; a string sets all six.
    fluorophore_concentration: optional (n_species, nx, ny, nz) concentration of each fluorophore
                species per voxel, in µM (float32).
    fluorophore_absorption:    (n_species, n_bins) absorption coefficient per unit concentration,
                mm⁻¹ per µM, in each wavelength bin. It adds to the tissue's mu_a at every wavelength
                a photon carries (so emission is re-absorbed too).
    """

    labels: np.ndarray
    voxel_size: tuple[float, float, float] | float
    optics: np.ndarray
    n_ambient: float = 1.0
    boundary: dict | str = field(default="escape")
    fluorophore_concentration: np.ndarray | None = None
    fluorophore_absorption: np.ndarray | None = None

    def __post_init__(self):
        try:
            labels = np.asarray(self.labels)
        except (TypeError, ValueError):
            raise ValueError("labels: expected a 3-D uint8 or uint16 array") from None
        if labels.ndim != 3:
            raise ValueError(f"labels: expected a 3-D array (nx, ny, nz), got shape {labels.shape}")
        if labels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"labels: dtype must be uint8 or uint16, got {labels.dtype}")
        if labels.size == 0:
            raise ValueError("labels: the volume is empty")
        if labels.size > MAX_VOXELS:
            raise ValueError(f"labels: {labels.size} voxels exceed the limit of {MAX_VOXELS}")
        self.labels = np.ascontiguousarray(labels)

        size = float_array("voxel_size", self.voxel_size, (3,))
        if not np.all(np.isfinite(size)) or np.any(size <= 0):
            raise ValueError(f"voxel_size: each of dx, dy, dz must be a finite number > 0 mm, got {size}")
        # the kernels hold positions in float32: a voxel must be a normal float32 and the box small
        # enough that squared lengths and times of flight stay far from float32 overflow
        extent = size * labels.shape
        if np.any(size < FLOAT32_TINY) or np.any(extent > MAX_EXTENT_MM):
            raise ValueError(f"voxel_size: {size.tolist()} mm over {labels.shape} voxels is outside what "
                             f"the float32 kernels hold: each voxel >= {FLOAT32_TINY:.3g} mm and the box "
                             f"<= {MAX_EXTENT_MM:g} mm along each axis")
        self.voxel_size = tuple(float(s) for s in size)

        optics = float_array("optics", self.optics)
        if optics.ndim == 2:
            optics = optics[None]
        if optics.ndim != 3 or optics.shape[2] != 4:
            raise ValueError("optics: expected shape (n_bins, n_labels, 4) or (n_labels, 4) with "
                             f"columns (mu_a, mu_s, g, n), got {np.shape(self.optics)}")
        max_label = int(labels.max())
        if optics.shape[1] <= max_label:
            raise ValueError(f"optics: label {max_label} occurs in the volume but the table has only "
                             f"{optics.shape[1]} labels (rows 0..{optics.shape[1] - 1})")
        tissue = optics[:, 1:, :]
        for col, name, ok, allowed in (
            (0, "mu_a", lambda x: x >= 0, ">= 0 1/mm"),
            (1, "mu_s", lambda x: x >= 0, ">= 0 1/mm"),
            (2, "g", lambda x: (x > -1) & (x < 1), "in (-1, 1)"),
            (3, "n", lambda x: x >= 1, ">= 1"),
        ):
            values = tissue[:, :, col]
            bad = ~(np.isfinite(values) & ok(values))
            if bad.any():
                b, lab = np.argwhere(bad)[0]
                raise ValueError(f"optics: {name} of label {lab + 1} in bin {b} is {values[b, lab]}; "
                                 f"allowed {allowed}")
        self.optics = optics

        if isinstance(self.n_ambient, (bool, str)) or not isinstance(self.n_ambient, (int, float, np.number)):
            raise TypeError(f"n_ambient: expected a refractive index >= 1, got {self.n_ambient!r}")
        if not (np.isfinite(self.n_ambient) and self.n_ambient >= 1.0):
            raise ValueError(f"n_ambient: must be a finite refractive index >= 1, got {self.n_ambient}")
        self.n_ambient = float(self.n_ambient)
        self.boundary = _as_boundary(self.boundary)
        self._check_fluorophores()

    def _check_fluorophores(self):
        conc, absorption = self.fluorophore_concentration, self.fluorophore_absorption
        if conc is None and absorption is None:
            return
        if conc is None or absorption is None:
            raise ValueError("fluorophore_concentration and fluorophore_absorption go together")
        conc = float_array("fluorophore_concentration", conc).astype(np.float32)
        if conc.ndim == 3:
            conc = conc[None]
        if conc.ndim != 4 or conc.shape[1:] != self.labels.shape:
            raise ValueError(f"fluorophore_concentration: expected shape (n_species, {self.shape}), "
                             f"got {np.shape(self.fluorophore_concentration)}")
        if not 1 <= conc.shape[0] <= MAX_SPECIES:
            raise ValueError(f"fluorophore_concentration: 1 to {MAX_SPECIES} species, got {conc.shape[0]}")
        if not np.all(np.isfinite(conc)) or np.any(conc < 0):
            raise ValueError("fluorophore_concentration: values must be finite and >= 0 µM")
        if np.any(conc[:, self.labels == 0] > 0):
            raise ValueError("fluorophore_concentration: ambient (label 0) voxels cannot hold fluorophores")
        absorption = float_array("fluorophore_absorption", absorption)
        if absorption.ndim == 1:
            absorption = absorption[None]
        if absorption.shape != (conc.shape[0], self.n_bins):
            raise ValueError(f"fluorophore_absorption: expected shape (n_species, n_bins) = "
                             f"({conc.shape[0]}, {self.n_bins}), got {np.shape(self.fluorophore_absorption)}")
        if not np.all(np.isfinite(absorption)) or np.any(absorption < 0):
            raise ValueError("fluorophore_absorption: values must be finite and >= 0 mm⁻¹/µM")
        self.fluorophore_concentration = np.ascontiguousarray(conc)
        self.fluorophore_absorption = absorption

    @property
    def n_species(self) -> int:
        """Number of fluorophore species (0 without fluorophores)."""
        c = self.fluorophore_concentration
        return 0 if c is None else c.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.labels.shape)

    @property
    def extent(self) -> np.ndarray:
        """Size of the box in mm along x, y, z."""
        return np.array(self.shape) * np.array(self.voxel_size)

    @property
    def n_bins(self) -> int:
        return self.optics.shape[0]

    @property
    def n_labels(self) -> int:
        return self.optics.shape[1]

    def label_at(self, position) -> int:
        """Label of the voxel containing ``position`` (mm), or 0 outside the box."""
        idx = np.floor(np.asarray(position, dtype=np.float64) / self.voxel_size).astype(int)
        if np.any(idx < 0) or np.any(idx >= self.shape):
            return 0
        return int(self.labels[tuple(idx)])

    @classmethod
    def uniform(cls, shape, voxel_size, mua, mus, g, n, **kwargs) -> "Medium":
        """A box filled with one tissue (label 1)."""
        optics = np.array([[0.0, 0.0, 0.0, kwargs.get("n_ambient", 1.0)], [mua, mus, g, n]])
        return cls(np.ones(shape, dtype=np.uint8), voxel_size, optics, **kwargs)
