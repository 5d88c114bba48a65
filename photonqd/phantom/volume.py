"""Label volumes from files: a user's own anatomy (segmented CT or MRI, an atlas, a volume made
elsewhere) as a photonqd Scene, with its target moved through depth.

A label volume is an integer array (nx, ny, nz), x and y across the imaged face, z into the tissue
from the surface at z = 0; label 0 is the ambient medium outside the body, every other label is a
tissue. Files: NumPy ``.npy``, ``.npz`` (one array, or the one named ``dataset``) and HDF5
(``.h5``/``.hdf5``: the dataset named ``dataset``, default "labels"). Shapes and types are read
from the file's header first, so a volume too large for this machine is refused before it is read.

The target (a label, or a mask of the same shape) is moved along z by whole voxels to each depth a
study asks for; "depth" is the depth of its voxels' centroid, as for the built-in phantoms
(photonqd.phantom.target_centre_mm). The voxels it leaves take the tissue that surrounds it: the
layer at that depth where the volume outside the target is a stack of layers, else the label most
common on the target's surface (``vacated_label`` sets it).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scene import Scene

#: File suffixes read, and their format.
FORMATS = {".npy": "npy", ".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5"}
#: The HDF5 dataset read when none is named.
DEFAULT_DATASET = "labels"
#: Labels the engine's label volume holds (uint16).
MAX_LABEL = 65535
#: Depths closer than this (mm) to a reachable depth count as that depth.
DEPTH_TOLERANCE_MM = 1e-6


class VolumeError(ValueError):
    """A label volume file or its description is wrong; the message names the file and field."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def array_header(path, dataset: str | None = None) -> tuple[tuple, np.dtype]:
    """The shape and dtype of the array a file holds, read without reading its data."""
    path, kind = _format(path)
    try:
        if kind == "npy":
            with open(path, "rb") as fh:
                return _npy_header(fh)
        if kind == "npz":
            with zipfile.ZipFile(path) as archive, archive.open(_npz_member(path, archive, dataset)) as fh:
                return _npy_header(fh)
        import h5py
        with h5py.File(path, "r") as f:
            data = _hdf5_dataset(path, f, dataset)
            return data.shape, data.dtype
    except VolumeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise VolumeError(f"{path}: cannot read it as {kind} ({err})") from None


def read_array(path, dataset: str | None = None) -> np.ndarray:
    """The array a file holds (see array_header)."""
    path, kind = _format(path)
    try:
        if kind == "npy":
            return np.load(path, allow_pickle=False)
        if kind == "npz":
            with np.load(path, allow_pickle=False) as archive:
                name = _npz_member(path, zipfile.ZipFile(path), dataset)
                return archive[name.removesuffix(".npy")]
        import h5py
        with h5py.File(path, "r") as f:
            return _hdf5_dataset(path, f, dataset)[()]
    except VolumeError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise VolumeError(f"{path}: cannot read it as {kind} ({err})") from None


def _npy_header(fh) -> tuple[tuple, np.dtype]:
    major, _ = np.lib.format.read_magic(fh)
    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
    shape, _, dtype = read(fh)
    return shape, dtype


def _format(path) -> tuple[Path, str]:
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise VolumeError(f"{path}: unknown file type {path.suffix!r}; read: {', '.join(FORMATS)}")
    if not path.is_file():
        raise VolumeError(f"{path}: no such file")
    return path, kind


def _npz_member(path: Path, archive: zipfile.ZipFile, dataset: str | None) -> str:
    members = [n for n in archive.namelist() if n.endswith(".npy")]
    if dataset is None:
        if len(members) != 1:
            raise VolumeError(f"{path}: holds {len(members)} arrays {[m[:-4] for m in members]}; name one "
                              "with dataset")
        return members[0]
    if f"{dataset}.npy" not in members:
        raise VolumeError(f"{path}: dataset: no array {dataset!r}; it holds {[m[:-4] for m in members]}")
    return f"{dataset}.npy"


def _hdf5_dataset(path: Path, f, dataset: str | None):
    import h5py
    name = dataset or DEFAULT_DATASET
    data = f.get(name)
    if not isinstance(data, h5py.Dataset):
        found = []
        f.visititems(lambda key, item: found.append(key) if isinstance(item, h5py.Dataset) else None)
        raise VolumeError(f"{path}: dataset: no dataset {name!r}; it holds {found}")
    return data


def check_labels(where: str, labels: np.ndarray) -> np.ndarray:
    """A label volume as uint8 (labels up to 255) or uint16: 3-D, integer, labels in [0, MAX_LABEL]."""
    labels = np.asarray(labels)
    if labels.ndim != 3 or 0 in labels.shape:
        raise VolumeError(f"{where}: a label volume must be a 3-D array (nx, ny, nz), got shape {labels.shape}")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise VolumeError(f"{where}: labels must be integers, got {labels.dtype}")
    lo, hi = int(labels.min()), int(labels.max())
    if lo < 0 or hi > MAX_LABEL:
        raise VolumeError(f"{where}: labels must lie in [0, {MAX_LABEL}], got [{lo}, {hi}]")
    return labels.astype(np.uint8 if hi <= 255 else np.uint16)


@dataclass(frozen=True, eq=False)
class LabelVolume:
    """A label volume with a tissue per label and a target to move through depth.

    labels:           (nx, ny, nz) integer labels, 0 = ambient.
    voxel_size:       (dx, dy, dz) mm.
    tissues:          {label: tissue} for every label > 0 in the volume (anything Scene takes).
    target:           boolean mask of the target, same shape.
    vacated_label:    the label the target's old voxels take when it moves; None: "auto" (the
                      layer at that depth where the rest is layered, else the commonest label on
                      the target's surface).
    autofluorescence: {label: Autofluorescence or None}, as Scene.
    n_ambient:        refractive index outside the volume.
    """

    labels: np.ndarray
    voxel_size: tuple
    tissues: dict
    target: np.ndarray
    vacated_label: int | None = None
    autofluorescence: dict = field(default_factory=dict)
    n_ambient: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "labels", check_labels("labels", self.labels))
        target = np.asarray(self.target, dtype=bool)
        if target.shape != self.labels.shape:
            raise VolumeError(f"target: shape {target.shape} differs from the labels' {self.labels.shape}")
        if not target.any():
            raise VolumeError("target: holds no voxel")
        if (self.labels[target] == 0).any():
            raise VolumeError("target: reaches outside the body (label 0)")
        object.__setattr__(self, "target", target)
        voxel = np.broadcast_to(np.asarray(self.voxel_size, dtype=np.float64), (3,))
        if not np.all(np.isfinite(voxel) & (voxel > 0)):
            raise VolumeError(f"voxel_size: must be > 0 mm, got {self.voxel_size!r}")
        object.__setattr__(self, "voxel_size", tuple(float(v) for v in voxel))
        missing = sorted(set(np.unique(self.labels).tolist()) - {0} - set(self.tissues))
        if missing:
            raise VolumeError(f"tissues: labels {missing} occur in the volume without a tissue")
        if self.vacated_label is not None and self.vacated_label not in self.tissues:
            raise VolumeError(f"vacated_label: {self.vacated_label} has no tissue; give one of {sorted(self.tissues)}")
        object.__setattr__(self, "_host", self._vacated())

    @property
    def size_mm(self) -> tuple:
        return tuple(n * d for n, d in zip(self.labels.shape, self.voxel_size))

    @property
    def depth_mm(self) -> float:
        """The depth of the target's centroid in the file, mm."""
        return float((np.argwhere(self.target)[:, 2].mean() + 0.5) * self.voxel_size[2])

    def shift(self, depth_mm: float) -> int:
        """Voxels along z that bring the target to ``depth_mm``, or a VolumeError naming the
        depths it can reach: the file's depth plus whole voxels, the target inside the volume."""
        dz = self.voxel_size[2]
        steps = round((depth_mm - self.depth_mm) / dz)
        z = np.flatnonzero(self.target.any(axis=(0, 1)))
        if abs(self.depth_mm + steps * dz - depth_mm) > DEPTH_TOLERANCE_MM \
                or not 0 <= z[0] + steps <= z[-1] + steps < self.labels.shape[2] or not self._inside(steps):
            allowed = self._steps()
            reach = f"{self.depth_mm + allowed[0] * dz:.6g} to {self.depth_mm + allowed[-1] * dz:.6g} mm"
            raise VolumeError(f"depth_mm: {depth_mm:g} mm is not reachable by moving the target by whole voxels "
                              f"inside the body (its depth in the file is {self.depth_mm:.6g} mm; reachable: "
                              f"{reach} in steps of {dz:g} mm)")
        return steps

    def _steps(self) -> list[int]:
        """The shifts along z (voxels) that keep the whole target inside the body (host label > 0),
        from the file's position up and down as far as that holds."""
        z = np.flatnonzero(self.target.any(axis=(0, 1)))
        up = 0
        while z[0] + up - 1 >= 0 and self._inside(up - 1):
            up -= 1
        down = 0
        while z[-1] + down + 1 < self.labels.shape[2] and self._inside(down + 1):
            down += 1
        return list(range(up, down + 1))

    def _inside(self, steps: int) -> bool:
        """Whether the target moved by ``steps`` voxels along z covers no ambient voxel (label 0)."""
        return not (self._host[np.roll(self.target, steps, axis=2)] == 0).any()

    def scene(self, depth_mm: float) -> Scene:
        """The scene with the target moved to ``depth_mm`` (its own labels with it)."""
        steps = self.shift(depth_mm)
        target = np.roll(self.target, steps, axis=2)
        labels = self._host.copy() if steps else self.labels.copy()
        if steps:
            labels[target] = np.roll(self.labels, steps, axis=2)[target]
        return Scene(labels, self.voxel_size, self.tissues, autofluorescence=self.autofluorescence,
                     n_ambient=self.n_ambient, target=target)

    def _vacated(self) -> np.ndarray:
        """The labels with the target's voxels given the tissue that surrounds it."""
        host = self.labels.copy()
        outside = ~self.target
        if self.vacated_label is not None:
            host[self.target] = self.vacated_label
            return host
        columns = self.target.any(axis=2)
        if not columns.all():
            i, j = np.argwhere(~columns)[0]
            layers = self.labels[i, j, :]
            if ((self.labels == layers[None, None, :]) | self.target).all():
                return np.broadcast_to(layers, self.labels.shape).copy()
        surface = np.zeros_like(self.target)
        for axis in range(3):
            for step in (1, -1):
                moved = np.roll(self.target, step, axis=axis)
                edge = [slice(None)] * 3
                edge[axis] = 0 if step == 1 else -1                  # np.roll wraps: not a neighbour
                moved[tuple(edge)] = False
                surface |= moved & outside
        around = self.labels[surface]
        around = around[around > 0]
        if around.size == 0:
            raise VolumeError("vacated_label: the target touches no tissue; set the label its voxels take")
        host[self.target] = np.bincount(around).argmax()
        return host
