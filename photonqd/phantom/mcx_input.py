"""Read an MCX or pmcx input into a photonqd Benchmark: ``from_mcx(source)``.

The inverse of benchmarks/bench_mcxcl.py, which writes a photonqd benchmark as a pmcxcl input. A
source is an MCX JSON input file, its parsed dict, or a pmcx-style dict (``vol``, ``prop``,
``srcpos``, ...). The semantics are MCX's own (fangq/mcx: src/mcx_utils.c ``mcx_loadjson``,
``mcx_validatecfg``, ``mcx_loadvolume``; src/mcx_shapes.c; src/mcx_core.cu):

- lengths are in voxels of ``LengthUnit`` (``unitinmm``) mm; photonqd's grid frame is mm from the
  volume's corner. ``OriginType`` (``issrcfrom0``) 1 measures positions from the corner; 0, MCX's
  default, numbers the first voxel 1, so a position moves down one voxel.
- Shapes are painted in order onto a zero volume of ``Dim`` (pmcx: onto ``vol``). A voxel joins a
  Sphere, Cylinder, Box or UpperSpace when its centre lies inside, boundary included; ``Origin``
  (default 1 1 1, or 0 0 0 with OriginType 1) shifts Box, Subgrid and Cylinder but not Sphere or
  UpperSpace; Layers take whole voxels numbered from 1, both ends included; Slabs take the voxels
  from ``int(max(a - 0.5, 0))`` below ``int(min(b, Dim))``; a Subgrid from 1-based ``O`` spans
  ``Size + 1`` voxels. Those quirks are MCX's and are kept, so the volume is MCX's volume.
- Media row 0 is the ambient medium: only its index is used. ``DoMismatch`` 0 (``isreflect``)
  reflects nowhere, which photonqd writes as an ambient index equal to the tissues' (so their
  indices must agree); 1, MCX's default, refracts against row 0's index. A row with g = 1 never
  turns a photon, so it becomes mus = 0 (photonqd's media take g in (-1, 1)).
- ``DoSpecular`` (``isspecular``, default 0) removes the entry reflection only where MCX does: for
  photons that start outside the volume or in a label-0 voxel (a source on the top face starts
  in the surface voxel and loses nothing).
- ``T1`` (``tend``, s) becomes the time gate; T0 and Dt only bin MCX's output.

Photon counts, seeds, detectors and output settings do not define the problem and are not read.
Anything photonqd cannot reproduce (other source types, a focused beam, boundary flags, non-label
media) is a ValueError naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

import numpy as np

from ..medium import MAX_VOXELS
from ..optics import FixedOptics
from ..scene import Scene
from ..sources import DiskSource, PencilBeam, RectangleSource
from .mcx import Benchmark
from .shapes import BOUNDARY_RTOL, cylinder_mask, sphere_mask, voxel_centres

SOURCE_TYPES = ("pencil", "disk", "planar")
#: The MCX JSON input's sections; a dict with none of them is read as a pmcx dict.
SECTIONS = ("Session", "Forward", "Domain", "Optode", "Shapes")
#: Label formats of a raw volume file (Domain.MediaFormat); MCX stores voxels x fastest.
MEDIA_FORMATS = {"byte": "<u1", "short": "<u2", "integer": "<u4"}
NS_PER_S = 1e9
MAX_LABEL = np.iinfo(np.uint16).max

#: pmcx keys -> where the MCX JSON input holds the same setting (messages name the user's field).
JSON_FIELDS = {"session": "Session.ID", "isreflect": "Session.DoMismatch", "isspecular": "Session.DoSpecular",
               "bc": "Session.BCFlags", "tstart": "Forward.T0", "tend": "Forward.T1", "prop": "Domain.Media",
               "unitinmm": "Domain.LengthUnit", "issrcfrom0": "Domain.OriginType",
               "srctype": "Optode.Source.Type", "srcpos": "Optode.Source.Pos", "srcdir": "Optode.Source.Dir",
               "srcparam1": "Optode.Source.Param1", "srcparam2": "Optode.Source.Param2"}
#: MCX's defaults where a setting is absent (src/mcx_utils.c, mcx_initcfg).
DEFAULTS = {"isreflect": 1, "isspecular": 0, "issrcfrom0": 0, "unitinmm": 1.0, "srctype": "pencil",
            "tstart": 0.0, "srcparam1": (0, 0, 0, 0), "srcparam2": (0, 0, 0, 0)}


class _Input:
    """Where values come from, for messages: the file (if any) and each setting's field name."""

    def __init__(self, where: str | None, fields: Mapping[str, str]):
        self.where, self.fields = where, fields

    def name(self, key: str) -> str:
        return self.fields.get(key, key)

    def fail(self, field: str, message: str) -> NoReturn:
        raise ValueError(f"{self.where}: {field}: {message}" if self.where else f"{field}: {message}")


def from_mcx(source, base_dir=None) -> Benchmark:
    """The Benchmark an MCX input describes: ``source`` is a path to an MCX JSON input (.json),
    its parsed dict, or a pmcx dict. ``base_dir``: where Domain.VolumeFile is looked for (default:
    the input file's folder, else the working directory). ``reference_absorbed`` is None."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        where = _Input(path.name, JSON_FIELDS)
        return _benchmark(*_from_json(_read_json(path, where), where, Path(base_dir or path.parent)), where)
    if not isinstance(source, Mapping):
        raise ValueError(f"source: expected an MCX JSON file, its dict or a pmcx dict, got {type(source).__name__}")
    if any(section in source for section in SECTIONS):
        where = _Input(None, JSON_FIELDS)
        return _benchmark(*_from_json(source, where, Path(base_dir or ".")), where)
    where = _Input(None, {})
    return _benchmark(*_from_pmcx(source, where), where)


# --- the two input forms, read into pmcx's keys ------------------------------------------------
def _read_json(path: Path, where: _Input) -> dict:
    try:
        text = path.read_text()
    except OSError as e:
        where.fail("file", f"cannot read {str(path)!r}: {e.strerror or e}")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        where.fail("file", f"not valid JSON: {e.msg} at line {e.lineno}")
    if not isinstance(doc, dict):
        where.fail("file", "an MCX input is a JSON object with Session, Forward, Domain, Optode and Shapes")
    return doc


def _section(parent: Mapping, key: str, field: str, where: _Input, required=True) -> dict:
    value = parent.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, Mapping):
        where.fail(field, "missing" if value is None else f"expected an object, got {value!r}")
    return value


def _from_json(doc: Mapping, where: _Input, base_dir: Path) -> tuple[dict, np.ndarray, str]:
    """pmcx's settings, the label volume of an MCX JSON input and the field that defined it."""
    session = _section(doc, "Session", "Session", where, required=False)
    forward = _section(doc, "Forward", "Forward", where)
    domain = _section(doc, "Domain", "Domain", where)
    optode = _section(_section(doc, "Optode", "Optode", where), "Source", "Optode.Source", where)
    if "Media" not in domain:
        where.fail("Domain.Media", "missing: MCX needs the media table (row 0 = ambient)")
    settings = {"session": session.get("ID"), "isreflect": session.get("DoMismatch"),
                "isspecular": session.get("DoSpecular"), "bc": session.get("BCFlags"),
                "tstart": forward.get("T0"), "tend": forward.get("T1"),
                "prop": _json_media(domain["Media"], where), "unitinmm": domain.get("LengthUnit"),
                "issrcfrom0": domain.get("OriginType"), "srctype": optode.get("Type"),
                "srcpos": optode.get("Pos"), "srcdir": optode.get("Dir"),
                "srcparam1": optode.get("Param1"), "srcparam2": optode.get("Param2")}
    settings = {k: v for k, v in settings.items() if v is not None}
    origin = 0.0 if _flag(settings, "issrcfrom0", where) else 1.0
    volume_field = "Domain.VolumeFile" if "VolumeFile" in domain else "Shapes"
    return settings, _json_volume(doc, domain, origin, where, base_dir), volume_field


def _json_media(media, where: _Input) -> list:
    """Media rows [mua, mus, g, n]: MCX takes objects with those keys or 4-number arrays."""
    if not isinstance(media, list):
        where.fail("Domain.Media", f"expected a list of media, got {media!r}")
    rows = []
    for i, medium in enumerate(media):
        if isinstance(medium, Mapping):
            missing = [k for k in ("mua", "mus", "g", "n") if k not in medium]
            if missing:
                where.fail(f"Domain.Media[{i}].{missing[0]}", "missing")
            medium = [medium[k] for k in ("mua", "mus", "g", "n")]
        rows.append(medium)
    return rows


def _json_volume(doc, domain, origin: float, where: _Input, base_dir: Path) -> np.ndarray:
    volume_file, shapes = domain.get("VolumeFile"), doc.get("Shapes")
    if volume_file is not None and shapes is not None:
        where.fail("Domain.VolumeFile", "MCX takes a VolumeFile or Shapes, not both")
    if volume_file is not None:
        return _load_volume(volume_file, domain, where, base_dir)
    if shapes is None:
        where.fail("Shapes", "missing: define the volume by Shapes or Domain.VolumeFile")
    if isinstance(shapes, Mapping):
        where.fail("Shapes", "a JData-encoded volume is not supported; give it as Domain.VolumeFile (.bin or .npy)")
    # MCX paints onto a zero volume of Dim (a Grid may replace it)
    labels = np.zeros(_dim(domain["Dim"], where), np.int32) if "Dim" in domain else None
    return _paint(labels, shapes, origin, "Shapes", where)


def _dim(value, where: _Input, field="Domain.Dim") -> tuple[int, int, int]:
    dim = _numbers(value, field, where, (3,))
    if not np.all((dim >= 1) & (dim == np.round(dim))):
        where.fail(field, f"expected three whole numbers of voxels >= 1, got {value!r}")
    if np.prod(dim) > MAX_VOXELS:   # refused before a volume that size is allocated
        where.fail(field, f"{dim.astype(int).tolist()} is more than the limit of {MAX_VOXELS} voxels")
    return tuple(int(d) for d in dim)


def _load_volume(name, domain, where: _Input, base_dir: Path) -> np.ndarray:
    """Labels from Domain.VolumeFile: MCX's raw binary (.bin, x fastest, MediaFormat's integers,
    shaped by Dim) or a NumPy .npy of labels indexed [x, y, z] (checked against Dim if given)."""
    path, field = base_dir / str(name), "Domain.VolumeFile"
    fmt = domain.get("MediaFormat", "byte")
    if fmt not in MEDIA_FORMATS:
        where.fail("Domain.MediaFormat", f"{fmt!r} is not a label format; photonqd reads {list(MEDIA_FORMATS)}")
    if path.suffix not in (".bin", ".npy"):
        where.fail(field, f"{name!r}: unsupported format; photonqd reads .bin (MCX raw labels) and .npy")
    try:
        data = np.load(path, allow_pickle=False) if path.suffix == ".npy" else np.fromfile(path, MEDIA_FORMATS[fmt])
    except (OSError, ValueError) as e:
        where.fail(field, f"cannot read {str(path)!r}: {getattr(e, 'strerror', None) or e}")
    if path.suffix == ".bin":
        if "Dim" not in domain:
            where.fail("Domain.Dim", f"missing: needed to shape the raw volume {name!r}")
        dim = _dim(domain["Dim"], where)
        if data.size != math.prod(dim):
            where.fail(field, f"{name!r} holds {data.size} voxels of {fmt}, Domain.Dim {list(dim)} needs "
                              f"{math.prod(dim)}")
        return data.reshape(dim, order="F")
    if "Dim" in domain and data.shape != _dim(domain["Dim"], where):
        where.fail(field, f"{name!r} has shape {list(data.shape)}, Domain.Dim is {domain['Dim']}")
    return _label_array(data, field, where)


def _from_pmcx(cfg: Mapping, where: _Input) -> tuple[dict, np.ndarray, str]:
    """pmcx's settings and its volume: ``shapes`` (a JSON string) painted over ``vol``, or alone
    when they start with a Grid (as pmcx's json2mcx leaves an input defined by Shapes)."""
    if "vol" not in cfg and "shapes" not in cfg:
        where.fail("vol", "missing: pmcx needs the label volume (or shapes)")
    labels = _label_array(cfg["vol"], "vol", where) if "vol" in cfg else None
    if "shapes" in cfg:
        try:
            shapes = json.loads(cfg["shapes"])
        except (TypeError, json.JSONDecodeError) as e:
            where.fail("shapes", f"not a JSON string: {e}")
        shapes = shapes.get("Shapes") if isinstance(shapes, Mapping) else shapes
        origin = 0.0 if _flag(cfg, "issrcfrom0", where) else 1.0
        labels = _paint(None if labels is None else labels.astype(np.int32), shapes, origin, "shapes", where)
    return {k: cfg[k] for k in JSON_FIELDS if k in cfg}, labels, "vol"


def _label_array(value, field: str, where: _Input) -> np.ndarray:
    labels = np.asarray(value)
    if labels.ndim != 3 or not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        where.fail(field, f"expected a 3-D array of integer labels, got {labels.ndim}-D {labels.dtype} "
                          "(MCX's continuous-media formats are not supported)")
    return labels


# --- Shapes (src/mcx_shapes.c) -----------------------------------------------------------------
def _paint(labels, shapes, origin: float, field: str, where: _Input) -> np.ndarray:
    """Paint MCX's shapes in order; ``labels`` is None until a Grid (or Domain.Dim) makes one."""
    if not isinstance(shapes, list):
        where.fail(field, f"expected a list of shapes, got {shapes!r}")
    origin = np.full(3, origin)
    for i, entry in enumerate(shapes):
        at = f"{field}[{i}]"
        if not (isinstance(entry, Mapping) and len(entry) == 1):
            where.fail(at, f"expected one {{shape: parameters}} object, got {entry!r}")
        (kind, spec), = entry.items()
        if kind not in RASTERS and kind not in ("Name", "Origin", "Grid"):
            where.fail(at, f"unknown shape {kind!r}; MCX's shapes: Name, Origin, Grid, {', '.join(RASTERS)}")
        at = f"{at}.{kind}"
        if kind == "Origin":
            origin = _numbers(spec, at, where, (3,))
        elif kind == "Grid":
            labels = np.full(_dim(_get(spec, "Size", at, where), where, f"{at}.Size"), _tag(spec, at, where), np.int32)
        elif kind != "Name":
            if labels is None:
                where.fail(at, "painted before there is a volume: give Domain.Dim or start Shapes with a Grid")
            RASTERS[kind](labels, spec, origin, at, where)
    if labels is None:
        where.fail(field, "no volume: give Domain.Dim or a Grid")
    return labels


def _get(spec, key: str, at: str, where: _Input):
    if not isinstance(spec, Mapping) or key not in spec:
        where.fail(f"{at}.{key}", "missing")
    return spec[key]


def _tag(spec, at: str, where: _Input) -> int:
    return _label(spec.get("Tag", 0) if isinstance(spec, Mapping) else None, f"{at}.Tag", where)


def _label(value, field: str, where: _Input) -> int:
    """A label photonqd's volumes hold (uint16); whether the media table has its row is checked later."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_LABEL:
        where.fail(field, f"expected a label in [0, {MAX_LABEL}], got {value!r}")
    return int(value)


def _centres_inside(shape, lo, hi) -> tuple:
    """Index of the voxels whose centres (i + 0.5) lie in [lo, hi] on every axis."""
    return np.ix_(*((c >= a) & (c <= b) for c, a, b in zip(voxel_centres(shape, 1.0), lo, hi)))


def _sphere(labels, spec, origin, at, where):
    # MCX's sphere ignores Origin (mcx_raster_sphere reads O as is)
    centre = _numbers(_get(spec, "O", at, where), f"{at}.O", where, (3,))
    radius = _numbers(_get(spec, "R", at, where), f"{at}.R", where, ())
    labels[sphere_mask(labels.shape, 1.0, centre, float(radius))] = _tag(spec, at, where)


def _box(labels, spec, origin, at, where):
    corner = _numbers(_get(spec, "O", at, where), f"{at}.O", where, (3,)) - origin
    size = _numbers(_get(spec, "Size", at, where), f"{at}.Size", where, (3,))
    labels[_centres_inside(labels.shape, corner, corner + size)] = _tag(spec, at, where)


def _subgrid(labels, spec, origin, at, where):
    # 1-based whole voxels, and MCX also subtracts Origin; the range includes both O and O + Size
    first = np.trunc(np.trunc(_numbers(_get(spec, "O", at, where), f"{at}.O", where, (3,))) - 1 - origin)
    size = np.trunc(_numbers(_get(spec, "Size", at, where), f"{at}.Size", where, (3,)))
    index = [np.arange(n) for n in labels.shape]
    labels[np.ix_(*((i >= a) & (i <= a + s) for i, a, s in zip(index, first, size)))] = _tag(spec, at, where)


def _cylinder(labels, spec, origin, at, where):
    c0 = _numbers(_get(spec, "C0", at, where), f"{at}.C0", where, (3,)) - origin
    c1 = _numbers(_get(spec, "C1", at, where), f"{at}.C1", where, (3,)) - origin
    radius = float(_numbers(_get(spec, "R", at, where), f"{at}.R", where, ()))
    axis = c1 - c0
    length = float(np.linalg.norm(axis))
    if length == 0:
        where.fail(at, "C0 and C1 coincide")
    tag = _tag(spec, at, where)
    if np.count_nonzero(axis) == 1:   # along a grid axis: photonqd's mask, cut to the C0..C1 span
        a = int(np.flatnonzero(axis)[0])
        lo, hi = sorted((c0[a], c1[a]))
        centres = voxel_centres(labels.shape, 1.0)[a]
        span = ((centres >= lo) & (centres <= hi)).reshape([-1 if i == a else 1 for i in range(3)])
        labels[cylinder_mask(labels.shape, 1.0, a, np.delete(c0, a), radius) & span] = tag
        return
    d = [c - o for c, o in zip(voxel_centres(labels.shape, 1.0), c0)]
    d = (d[0][:, None, None], d[1][None, :, None], d[2][None, None, :])
    along = sum(u * x for u, x in zip(axis / length, d))
    off_axis = d[0] ** 2 + d[1] ** 2 + d[2] ** 2 - along ** 2
    labels[(along >= 0) & (along <= length) & (off_axis <= radius * radius * (1.0 + BOUNDARY_RTOL))] = tag


def _layers(labels, spec, origin, at, where):
    """[[first, last, tag], ...] in whole voxels numbered from 1, both ends included."""
    axis = "XYZ".index(at.rsplit(".", 1)[1][0])
    for j, triplet in enumerate(_one_or_many(spec, at, where)):
        first, last, tag = (int(v) for v in _numbers(triplet, f"{at}[{j}]", where, (3,)))
        lo, hi = sorted((max(first, 1) - 1, min(last, labels.shape[axis])))
        _slab(labels, axis, lo, hi, _label(tag, f"{at}[{j}]", where))


def _slabs(labels, spec, origin, at, where):
    """Bound [[a, b], ...] along one axis: voxels int(max(a - 0.5, 0)) to below int(min(b, n))."""
    axis = "XYZ".index(at.rsplit(".", 1)[1][0])
    tag = _tag(spec, at, where)
    for j, pair in enumerate(_one_or_many(_get(spec, "Bound", at, where), f"{at}.Bound", where)):
        a, b = _numbers(pair, f"{at}.Bound[{j}]", where, (2,))
        lo, hi = sorted((max(a - 0.5, 0.0), min(b, labels.shape[axis])))
        _slab(labels, axis, int(lo), int(hi), tag)


def _one_or_many(value, at: str, where: _Input) -> list:
    """MCX takes one tuple or a list of them."""
    if not isinstance(value, list):
        where.fail(at, f"expected a list, got {value!r}")
    return value if not value or isinstance(value[0], list) else [value]


def _slab(labels, axis: int, lo: int, hi: int, tag: int) -> None:
    index = [slice(None)] * 3
    index[axis] = slice(max(lo, 0), max(hi, 0))
    labels[tuple(index)] = tag


def _upper_space(labels, spec, origin, at, where):
    a, b, c, d = _numbers(_get(spec, "Coef", at, where), f"{at}.Coef", where, (4,))
    x, y, z = voxel_centres(labels.shape, 1.0)
    labels[a * x[:, None, None] + b * y[None, :, None] + c * z[None, None, :] > d] = _tag(spec, at, where)


RASTERS = {"Subgrid": _subgrid, "Sphere": _sphere, "Box": _box, "XSlabs": _slabs, "YSlabs": _slabs,
           "ZSlabs": _slabs, "XLayers": _layers, "YLayers": _layers, "ZLayers": _layers,
           "Cylinder": _cylinder, "UpperSpace": _upper_space}


# --- settings -> Benchmark -----------------------------------------------------------------------
def _numbers(value, field: str, where: _Input, shape=None) -> np.ndarray:
    """Finite numbers (JSON's true/false are not numbers), of ``shape`` if given."""
    try:
        out = np.asarray(value, dtype=np.float64)
        ok = np.asarray(value).dtype != bool and np.all(np.isfinite(out))
    except (TypeError, ValueError):
        ok = False
    if not ok or (shape is not None and out.shape != shape):
        count = "a number" if shape == () else f"{shape[0]} numbers" if shape else "numbers"
        where.fail(field, f"expected {count}, got {value!r}")
    return out


def _flag(settings: Mapping, key: str, where: _Input) -> bool:
    """An MCX switch: true/false or an integer 0/1."""
    value = settings.get(key, DEFAULTS[key])
    if value not in (0, 1):   # True == 1 and False == 0
        where.fail(where.name(key), f"expected 0 or 1 (or true/false), got {value!r}")
    return bool(value)


def _benchmark(settings: dict, labels: np.ndarray, volume_field: str, where: _Input) -> Benchmark:
    unit = float(_numbers(settings.get("unitinmm", DEFAULTS["unitinmm"]), where.name("unitinmm"), where, ()))
    if not unit > 0:
        where.fail(where.name("unitinmm"), f"must be > 0 mm per voxel, got {unit}")
    # bc: six face conditions ('_' = MCX's default), then optional detection flags that do not
    # change the transport
    if str(settings.get("bc", ""))[:6].strip("_"):
        where.fail(where.name("bc"), f"{settings['bc']!r}: per-face boundary conditions are not supported")
    rows = _media(settings.get("prop"), where)
    labels = _labels(labels, volume_field, len(rows), where)
    name = str(settings.get("session") or (Path(where.where).stem if where.where else "mcx"))
    tissues = {label: _tissue(rows[label], f"{name} label {label}")
               for label in range(1, int(labels.max()) + 1)}
    scene = Scene(labels, unit, tissues, n_ambient=_n_ambient(settings, rows, labels, where), boundary="escape")
    bm = Benchmark(name, scene, _source(settings, labels, unit, where), _gate_ns(settings, where))
    try:
        bm.source.check(bm.medium)
    except ValueError as e:
        where.fail(where.name("srcpos"), str(e))
    return bm


def _media(prop, where: _Input) -> list[tuple]:
    """Every row checked as MCX's [mua 1/mm, mus 1/mm, g, n]; row 0 is the ambient medium."""
    field = where.name("prop")
    if prop is None:
        where.fail(field, "missing: MCX needs the media table (row 0 = ambient)")
    if not isinstance(prop, (list, tuple, np.ndarray)) or len(prop) < 2:
        where.fail(field, "needs row 0 (ambient) and at least one tissue row")
    rows = []
    for i, row in enumerate(prop):
        mua, mus, g, n = _numbers(row, f"{field}[{i}]", where, (4,))
        for key, value, ok, allowed in (("mua", mua, mua >= 0, ">= 0"), ("mus", mus, mus >= 0, ">= 0"),
                                        ("g", g, -1 <= g <= 1, "in [-1, 1]"), ("n", n, n >= 1, ">= 1")):
            if not ok:
                where.fail(f"{field}[{i}].{key}", f"must be {allowed}, got {value:g}")
        if g == -1 and mus > 0:
            where.fail(f"{field}[{i}].g", "-1 (every scattering reverses the photon) has no photonqd equivalent; "
                                          "photonqd's media take g in (-1, 1)")
        rows.append((float(mua), float(mus), float(g), float(n)))
    return rows


def _tissue(row: tuple, name: str) -> FixedOptics:
    """photonqd's medium for an MCX row: g = 1 never turns a photon, so it scatters as mus = 0;
    without scattering g does not act and is written 0."""
    mua, mus, g, n = row
    if g == 1 or mus == 0:
        mus, g = 0.0, 0.0
    return FixedOptics(mua, mus, g, n, name=name)


def _labels(labels: np.ndarray, field: str, n_rows: int, where: _Input) -> np.ndarray:
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= n_rows:
        where.fail(field, f"label {low if low < 0 else high} has no row in {where.name('prop')} (rows 0..{n_rows - 1})")
    if high == 0:
        where.fail(field, "every voxel is label 0 (ambient): no tissue")
    return labels.astype(np.uint8 if high < 256 else np.uint16)


def _n_ambient(settings, rows, labels, where: _Input) -> float:
    """Row 0's index with reflection; without (DoMismatch 0), the tissues' one index, so that
    photonqd refracts nowhere either."""
    if _flag(settings, "isreflect", where):
        return rows[0][3]
    indices = sorted({rows[label][3] for label in np.unique(labels) if label > 0})
    if len(indices) > 1:
        where.fail(where.name("isreflect"), f"0 (no reflection) with tissues of different indices {indices}: "
                                            "photonqd refracts wherever n changes")
    return indices[0]


def _source(settings, labels: np.ndarray, unit: float, where: _Input):
    kind = settings.get("srctype", DEFAULTS["srctype"])
    if kind not in SOURCE_TYPES:
        where.fail(where.name("srctype"), f"{kind!r} is not supported; photonqd reads {', '.join(SOURCE_TYPES)}")
    # Pos may carry a 4th value, the launch weight, which does not change normalised results
    position = _vector(settings, "srcpos", where)[:3] - (0.0 if _flag(settings, "issrcfrom0", where) else 1.0)
    direction = _vector(settings, "srcdir", where)
    if direction[3] != 0:
        where.fail(where.name("srcdir"), f"a focal length (4th value {direction[3]:g}) is not supported")
    p1, p2 = _vector(settings, "srcparam1", where), _vector(settings, "srcparam2", where)
    extra, start = {}, position
    if kind == "disk":
        if p1[1] != 0:
            where.fail(where.name("srcparam1"), f"an inner radius ({p1[1]:g}) is not supported")
        extra = {"radius": p1[0] * unit}
    elif kind == "planar":
        extra, start = {"edge1": p1[:3] * unit, "edge2": p2[:3] * unit}, position + 0.5 * (p1[:3] + p2[:3])
    specular = _flag(settings, "isspecular", where) and _starts_in_void(start, labels)
    make = {"pencil": PencilBeam, "disk": DiskSource, "planar": RectangleSource}[kind]
    try:
        return make(position=position * unit, direction=direction[:3], specular=specular, **extra)
    except ValueError as e:   # photonqd's message starts with its own argument's name
        key = {"direction": "srcdir", "radius": "srcparam1", "edge1, edge2": "srcparam1"}.get(str(e).split(":")[0])
        where.fail(where.name(key or "srcpos"), str(e))


def _vector(settings, key: str, where: _Input) -> np.ndarray:
    """A source vector (MCX's float4: 3 or 4 values; Param1/Param2 padded with zeros)."""
    if key not in settings and key not in DEFAULTS:
        where.fail(where.name(key), "missing")
    value = settings.get(key, DEFAULTS.get(key))
    out = _numbers(value, where.name(key), where)
    if out.ndim != 1 or not (3 if key in ("srcpos", "srcdir") else 1) <= out.size <= 4:
        where.fail(where.name(key), f"expected (x, y, z) or up to 4 values in voxels, got {value!r}")
    return np.pad(out, (0, 4 - out.size))


def _starts_in_void(point, labels: np.ndarray) -> bool:
    """MCX's test for the entry reflection (src/mcx_core.cu, skipvoid): the launch voxel is
    outside the grid or label 0."""
    voxel = np.floor(point).astype(int)
    if np.any(voxel < 0) or np.any(voxel >= labels.shape):
        return True
    return labels[tuple(voxel)] == 0


def _gate_ns(settings, where: _Input) -> float:
    if "tend" not in settings:
        where.fail(where.name("tend"), "missing: the end of the time gate (s)")
    t0 = float(_numbers(settings.get("tstart", DEFAULTS["tstart"]), where.name("tstart"), where, ()))
    t1 = float(_numbers(settings["tend"], where.name("tend"), where, ()))
    if not 0 <= t0 < t1:
        where.fail(where.name("tend"), f"must be > {where.name('tstart')} >= 0 s, got {t1:g} (start {t0:g})")
    return t1 * NS_PER_S
