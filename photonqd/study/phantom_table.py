"""The [phantom] table of a study configuration: a built-in generator's keyword arguments, or a
label volume read from a file (study.phantom = "volume", photonqd.phantom.volume).

Checks raise a ValueError whose message starts with the key path ("phantom.voxel_size: ..."); the
configuration reader (photonqd.study.config) reports it as a ConfigError. A grid is checked against
this machine's memory before anything allocates it.

A label volume's table::

    [phantom]
    file = "head.npz"              # .npy, .npz or HDF5 (.h5, .hdf5); relative to the configuration
    dataset = "labels"             # the array in an .npz or HDF5 file (optional where there is one)
    voxel_size = [0.1, 0.1, 0.05]  # mm (one number: cubic voxels)
    tissues = {1 = "dermis", 2 = "skull", 3 = "brain_grey_matter", 4 = "tumour_generic"}
    target_label = 4               # or target_mask = "mask.npy" (non-zero: target), target_dataset
    vacated_label = "auto"         # what the target's old voxels become when it moves (or a label)
    n_ambient = 1.0
    sha256 = "..."                 # optional: the file's checksum, checked (the effective TOML has it)
"""

from __future__ import annotations

import inspect
import math
import os
from pathlib import Path

import numpy as np

from ..medium import MAX_VOXELS
from ..phantom import SCENES
from ..phantom.volume import LabelVolume, array_header, check_labels, file_sha256, read_array
from .materials import unknown_keys

#: The study.phantom name of a label volume read from a file.
VOLUME = "volume"
#: Rough peak memory of one depth per voxel (bytes): the generator's float64 temporaries, labels,
#: optics, concentration, int64 tallies (absorbed, fluence, species) and their float64 copies.
BYTES_PER_VOXEL = 64
#: Options of a phantom generator the study sets itself.
STUDY_SET = {"depth_mm": "set by study.depths_mm", "quantum_dot": "set by each [[probe]]",
             "concentration_uM": "set by each [[probe]]"}
#: Options that may be one number for all three axes.
PER_AXIS = ("size_mm", "voxel_size")
VOLUME_KEYS = ("file", "dataset", "voxel_size", "tissues", "target_label", "target_mask", "target_dataset",
               "vacated_label", "n_ambient", "sha256")


def _check_memory(where: str, shape_text: str, voxels: float, hint: str) -> None:
    need, have = voxels * BYTES_PER_VOXEL, _physical_memory()
    if voxels > MAX_VOXELS or need > have / 2:
        raise ValueError(f"{where}: {shape_text} make {voxels:.3g} voxels, about {need / 2**30:.3g} GiB per depth; "
                         f"allowed: at most {MAX_VOXELS} voxels and half of this machine's {have / 2**30:.3g} GiB: "
                         f"{hint}")


def _physical_memory() -> float:
    """Bytes of RAM of this machine (16 GiB if the system does not say)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return 16.0 * 2**30


def _tissue_name(where: str, name, materials) -> None:
    if not isinstance(name, str) or name not in materials.tissue_names():
        raise ValueError(f"{where}: {name!r} is neither a tissue preset nor a [tissue.NAME] table; "
                         f"known: {materials.tissue_names()}")


# --- built-in generators ----------------------------------------------------------------------------
def _defaults(name: str) -> dict:
    return {k: p.default for k, p in inspect.signature(SCENES[name]).parameters.items()}


def _tissue_options(name: str) -> list[str]:
    """A generator's options that name a tissue: those whose default is a tissue preset's name."""
    from ..optics import preset_names
    return [k for k, v in _defaults(name).items() if isinstance(v, str) and v in preset_names()]


def generator_options(name: str, options: dict, materials) -> dict:
    """The [phantom] table checked against the generator's signature: every option has the type
    of its default, tissue names are presets or [tissue.NAME] tables, and the grid it makes fits
    in memory, before the generator allocates it."""
    defaults = _defaults(name)
    for key in options:
        if key in STUDY_SET:
            raise ValueError(f"phantom.{key}: {STUDY_SET[key]}")
    unknown_keys(options, [k for k in defaults if k not in STUDY_SET], "phantom")
    out = {key: _phantom_value(f"phantom.{key}", value, defaults[key], key in PER_AXIS)
           for key, value in options.items()}
    for key in _tissue_options(name):
        _tissue_name(f"phantom.{key}", out.get(key, defaults[key]), materials)
    for tissue, _ in out.get("layers", ()):
        _tissue_name("phantom.layers", tissue, materials)
    size = generator_size(name, out)
    voxel = np.broadcast_to(np.asarray(out.get("voxel_size", defaults["voxel_size"]), dtype=np.float64), (3,))
    if np.any(size <= 0) or np.any(voxel <= 0):
        raise ValueError(f"phantom.size_mm, phantom.voxel_size: must be > 0 mm, got {size.tolist()}, "
                         f"{voxel.tolist()}")
    _check_memory("phantom.voxel_size", f"{voxel.tolist()} mm voxels over a {size.tolist()} mm box",
                  float(np.prod(size / voxel)), "use a coarser voxel_size or a smaller size_mm")
    return out


def generator_size(name: str, options: dict) -> np.ndarray:
    """The generator's box (x, y, z) in mm."""
    size = options.get("size_mm", _defaults(name)["size_mm"])
    return np.broadcast_to(np.asarray(size, dtype=np.float64), (3,))


def generator_scene(name: str, options: dict, materials, depth_mm: float):
    """The generator's scene at ``depth_mm``, [tissue.NAME] tables in place of their names."""
    options = dict(options)
    for key in _tissue_options(name):
        if key in options:
            options[key] = materials.tissue(options[key])
    if "layers" in options:
        options["layers"] = tuple((materials.tissue(t), d) for t, d in options["layers"])
    return SCENES[name](depth_mm=depth_mm, **options)


def _phantom_value(where: str, value, default, per_axis: bool):
    """``value`` in the shape of ``default``: a number, a list of numbers, a name, or the layers
    list of [tissue name, thickness mm] pairs."""
    def number(v, at=where):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{at}: expected a finite number, got {v!r}")
        return float(v)

    if isinstance(default, bool) or default is None:
        raise ValueError(f"{where}: cannot be set from a configuration file")
    if isinstance(default, (int, float)):
        return number(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{where}: expected a name (string), got {value!r}")
        return value
    if default and all(isinstance(d, (tuple, list)) for d in default):  # layers
        if not isinstance(value, list) or not all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                                                  for v in value):
            raise ValueError(f"{where}: expected a list of [tissue name, thickness mm] pairs, got {value!r}")
        return tuple((t, number(d, f"{where} ({t!r} thickness)")) for t, d in value)
    if per_axis and not isinstance(value, list):
        return number(value)
    if not isinstance(value, list) or len(value) != len(default):
        raise ValueError(f"{where}: expected {len(default)} numbers"
                         f"{' (or one for all axes)' if per_axis else ''}, got {value!r}")
    return tuple(number(v) for v in value)


# --- label volumes ----------------------------------------------------------------------------------
def read_volume(table: dict, materials, base_dir: Path | None, read_files: bool = True):
    """The [phantom] table of a label volume: (the table as the effective configuration writes
    it: the file's absolute path and checksum, and the LabelVolume, or None when not
    ``read_files``)."""
    unknown_keys(table, VOLUME_KEYS, "phantom")
    out = dict(table)
    for key in ("file", "voxel_size", "tissues"):
        if key not in table:
            raise ValueError(f"phantom.{key}: missing (a label volume needs file, voxel_size, tissues and "
                             "target_label or target_mask)")
    if ("target_label" in table) == ("target_mask" in table):
        raise ValueError("phantom.target_label: give the target as target_label (a label) or target_mask "
                         "(a file), one of them")
    path = _path("phantom.file", table["file"], base_dir)
    out["file"] = str(path)
    voxel = _phantom_value("phantom.voxel_size", table["voxel_size"], (0.0, 0.0, 0.0), True)
    voxel = np.broadcast_to(np.asarray(voxel, dtype=np.float64), (3,))
    if np.any(voxel <= 0):
        raise ValueError(f"phantom.voxel_size: must be > 0 mm, got {voxel.tolist()}")
    tissues = _volume_tissues(table["tissues"], materials)
    vacated = table.get("vacated_label", "auto")
    if vacated != "auto" and not (isinstance(vacated, int) and not isinstance(vacated, bool) and vacated in tissues):
        raise ValueError(f"phantom.vacated_label: \"auto\" or a label of phantom.tissues {sorted(tissues)}, "
                         f"got {vacated!r}")
    n_ambient = _phantom_value("phantom.n_ambient", table.get("n_ambient", 1.0), 1.0, False)
    if not 1.0 <= n_ambient <= 3.0:
        raise ValueError(f"phantom.n_ambient: must be in [1, 3], got {n_ambient!r}")
    if "target_mask" in table:
        out["target_mask"] = str(_path("phantom.target_mask", table["target_mask"], base_dir))
    if not read_files:
        return out, None
    labels = _read_volume_array("phantom.file", path, table.get("dataset"), voxel)
    digest = file_sha256(path)
    if "sha256" in table and table["sha256"] != digest:
        raise ValueError(f"phantom.sha256: {path} has changed since this configuration was written (its "
                         f"checksum is {digest}); remove sha256 to use the file as it is now")
    out["sha256"] = digest
    target = _target(table, out, labels)
    from ..optics import tissue_preset
    objects = {label: materials.tissues.get(name) or tissue_preset(name) for label, name in tissues.items()}
    af = {label: materials.autofluorescence_of(name) for label, name in tissues.items() if name in materials.tissues}
    try:
        volume = LabelVolume(labels, tuple(voxel), objects, target, None if vacated == "auto" else vacated,
                             autofluorescence=af, n_ambient=n_ambient)
    except ValueError as err:
        raise ValueError(f"phantom.{err}") from None
    return out, volume


def _path(where: str, value, base_dir: Path | None) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: expected a file name, got {value!r}")
    path = Path(value).expanduser()
    return (path if path.is_absolute() or base_dir is None else base_dir / path).resolve()


def _volume_tissues(value, materials) -> dict[int, str]:
    """phantom.tissues: {label: tissue name} for labels 1..65535."""
    if not isinstance(value, dict) or not value:
        raise ValueError(f"phantom.tissues: expected a table {{label = \"tissue\", ...}}, got {value!r}")
    out = {}
    for key, name in value.items():
        try:
            label = int(key)
        except ValueError:
            label = -1
        if not 1 <= label <= 65535 or str(label) != str(key).strip():
            raise ValueError(f"phantom.tissues: key {key!r} is not a label in [1, 65535] (label 0 is the ambient)")
        _tissue_name(f"phantom.tissues.{label}", name, materials)
        out[label] = name
    return out


def _read_volume_array(where: str, path: Path, dataset, voxel) -> np.ndarray:
    """A label volume, its size checked from the file's header before its data are read."""
    try:
        shape, _ = array_header(path, dataset)
        if len(shape) != 3:
            raise ValueError(f"{path} holds an array of shape {shape}; a label volume is 3-D (nx, ny, nz)")
        _check_memory(where, f"{path}'s {shape[0]} x {shape[1]} x {shape[2]} voxels", float(np.prod(shape)),
                      "crop or downsample the volume")
        return check_labels(str(path), read_array(path, dataset))
    except ValueError as err:
        raise ValueError(f"{where}: {err}" if not str(err).startswith(where) else str(err)) from None


def _target(table: dict, out: dict, labels: np.ndarray) -> np.ndarray:
    if "target_label" in table:
        label = table["target_label"]
        if isinstance(label, bool) or not isinstance(label, int) or not (labels == label).any():
            present = sorted(set(np.unique(labels).tolist()) - {0})
            raise ValueError(f"phantom.target_label: {label!r} is not a label of the volume; it holds {present}")
        return labels == label
    path = Path(out["target_mask"])
    try:
        mask = read_array(path, table.get("target_dataset"))
    except ValueError as err:
        raise ValueError(f"phantom.target_mask: {err}") from None
    if mask.shape != labels.shape:
        raise ValueError(f"phantom.target_mask: {path} has shape {mask.shape}, the labels {labels.shape}")
    return np.asarray(mask) != 0
