"""Light sources. Positions in mm in the grid frame (origin at the volume's corner, +z into tissue).

A source that starts outside the box, on its surface or in an ambient (label 0) voxel enters the
tissue through the ambient medium: with ``specular=True`` (default) the Fresnel reflection at
entry is removed from the weight, reported as the specular reflectance, and the direction is
refracted. ``specular=False`` launches into the tissue unchanged (MCX's DoSpecular = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .checks import float_array, integer, real
from .medium import Medium
from .sampling import alias_table


def _vector(name: str, value) -> np.ndarray:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected three finite numbers (x, y, z), got {value!r}") from None
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: expected three finite numbers (x, y, z), got {value!r}")
    return v


def _unit(name: str, value) -> np.ndarray:
    v = _vector(name, value)
    norm = np.linalg.norm(v)
    if norm == 0:
        raise ValueError(f"{name}: the zero vector has no direction")
    return v / norm


def _bin_weights(value) -> np.ndarray:
    weights = float_array("bin_weights", value).ravel()
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
        raise ValueError("bin_weights: need finite, non-negative weights with a positive sum")
    return weights


def _perpendicular_basis(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(direction, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(direction, e1)


@dataclass
class Source:
    """Base class: a position, a direction and the parameters the kernel reads."""

    position: tuple = (0.0, 0.0, 0.0)
    direction: tuple = (0.0, 0.0, 1.0)
    specular: bool = True
    wavelength_bin: int = 0
    kind: str = field(init=False, default="pencil")

    def __post_init__(self):
        self.position = _vector("position", self.position)
        self.direction = _unit("direction", self.direction)
        self.wavelength_bin = integer("wavelength_bin", self.wavelength_bin, 0, 2**16)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The two vectors the kernel combines with its draws (see kernels/transport.cl)."""
        return _perpendicular_basis(self.direction)

    def size(self) -> float:
        return 0.0

    def centre(self) -> np.ndarray:
        """The point whose ray along ``direction`` must enter the grid."""
        return self.position

    def check(self, medium: Medium) -> None:
        """Raise ValueError if this source cannot launch into ``medium``."""
        if not 0 <= self.wavelength_bin < medium.n_bins:
            raise ValueError(f"wavelength_bin: {self.wavelength_bin} not in [0, {medium.n_bins - 1}]")
        extent = medium.extent
        p, u = self.centre(), self.direction
        strictly_inside = np.all(p > 0) and np.all(p < extent)
        if strictly_inside:
            if medium.label_at(p) == 0:
                raise ValueError(f"position: {p.tolist()} mm lies in an ambient (label 0) voxel")
            return
        # outside or on the surface: the central ray must enter the box
        with np.errstate(divide="ignore", invalid="ignore"):
            t0, t1 = (0.0 - p) / u, (extent - p) / u
        near = np.where(u != 0, np.minimum(t0, t1), np.where((p > 0) & (p < extent), -np.inf, np.inf))
        far = np.where(u != 0, np.maximum(t0, t1), np.where((p > 0) & (p < extent), np.inf, -np.inf))
        if not max(near.max(), 0.0) < far.min():
            raise ValueError(f"position/direction: the source at {p.tolist()} mm pointing "
                             f"{np.round(u, 6).tolist()} does not enter the grid "
                             f"(box from 0 to {extent.tolist()} mm)")


@dataclass
class PencilBeam(Source):
    """An infinitely thin collimated beam."""


@dataclass
class GaussianBeam(Source):
    """Collimated beam with a Gaussian profile; ``waist`` is the 1/e² intensity radius in mm."""

    waist: float = 1.0
    kind: str = field(init=False, default="gaussian")

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(real("waist", self.waist, "> 0 mm")) and self.waist > 0):
            raise ValueError(f"waist: must be > 0 mm, got {self.waist}")

    def size(self) -> float:
        return float(self.waist)


@dataclass
class DiskSource(Source):
    """Collimated beam with a uniform (top-hat) disk profile of ``radius`` mm."""

    radius: float = 1.0
    kind: str = field(init=False, default="disk")

    def __post_init__(self):
        super().__post_init__()
        if not (math.isfinite(real("radius", self.radius, "> 0 mm")) and self.radius > 0):
            raise ValueError(f"radius: must be > 0 mm, got {self.radius}")

    def size(self) -> float:
        return float(self.radius)


@dataclass
class RectangleSource(Source):
    """Uniform collimated planar source: ``position`` is a corner, ``edge1``/``edge2`` span it (mm)."""

    edge1: tuple = (1.0, 0.0, 0.0)
    edge2: tuple = (0.0, 1.0, 0.0)
    kind: str = field(init=False, default="rectangle")

    def __post_init__(self):
        super().__post_init__()
        self.edge1 = _vector("edge1", self.edge1)
        self.edge2 = _vector("edge2", self.edge2)
        if np.linalg.norm(np.cross(self.edge1, self.edge2)) == 0:
            raise ValueError("edge1, edge2: must be non-zero and not parallel")

    def edges(self):
        return self.edge1, self.edge2

    def centre(self) -> np.ndarray:
        return self.position + 0.5 * (self.edge1 + self.edge2)


@dataclass
class IsotropicPoint(Source):
    """A point emitting uniformly in all directions; must lie inside tissue."""

    kind: str = field(init=False, default="isotropic")

    def check(self, medium: Medium) -> None:
        super().check(medium)
        p = self.position
        if not (np.all(p > 0) and np.all(p < medium.extent)):
            raise ValueError(f"position: an isotropic point source must lie inside the grid, got {p.tolist()}")


@dataclass
class VoxelEmission(Source):
    """Isotropic emission from voxels (fluorescence): a voxel is chosen with probability proportional
    to ``density`` (nx, ny, nz, any non-negative unit), the start point is uniform within it, and the
    wavelength bin is drawn with probability proportional to ``bin_weights`` (one per optics bin).
    Results are per launched emission photon; the caller scales them by the total emission."""

    density: np.ndarray = None
    bin_weights: tuple = (1.0,)
    kind: str = field(init=False, default="emission")

    def __post_init__(self):
        super().__post_init__()
        density = float_array("density", self.density)
        if density.ndim != 3 or not np.all(np.isfinite(density)) or np.any(density < 0) \
                or not density.sum() > 0:
            raise ValueError("density: need a 3-D array of finite, non-negative values with a positive sum")
        self.density = density
        self.bin_weights = _bin_weights(self.bin_weights)

    def check(self, medium: Medium) -> None:
        if self.density.shape != medium.shape:
            raise ValueError(f"density: shape {self.density.shape} differs from the medium's {medium.shape}")
        if np.any(self.density[medium.labels == 0] > 0):
            raise ValueError("density: ambient (label 0) voxels cannot emit")
        if self.bin_weights.size != medium.n_bins:
            raise ValueError(f"bin_weights: one weight per wavelength bin ({medium.n_bins}), "
                             f"got {self.bin_weights.size}")

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(voxel flat indices, alias accept, alias index, bin CDF) as the kernel reads them."""
        flat = self.density.ravel()
        voxels = np.flatnonzero(flat > 0).astype(np.uint32)
        accept, alias = alias_table(flat[voxels])
        cdf = np.cumsum(self.bin_weights) / self.bin_weights.sum()
        cdf[-1] = 1.0
        return voxels, accept, alias, cdf.astype(np.float32)


@dataclass
class CameraLaunch(Source):
    """The adjoint launch from the camera side (docs/adjoint.md). Photons start in the ambient
    medium on the z = 0 face, uniformly over the detector footprint ``position`` (its corner,
    z = 0) + [0, footprint[0]] x [0, footprint[1]] mm -- a pixel or a region; ``footprint`` (0, 0) is a point, for
    laterally invariant media -- and travel into the tissue (+z) with directions uniform in
    projected solid angle (cos theta dOmega) inside the camera's acceptance cone, numerical
    aperture ``na`` = n_ambient sin(theta_max). They enter with Fresnel reflection and refraction;
    the reflected share is removed from the weight (``specular=True``, required by
    photonqd.adjoint.detection_probability). Each photon carries a wavelength bin drawn with
    probability proportional to ``bin_weights`` (per bin: the detection weight, emission spectrum
    x filter x QE), or stays in ``wavelength_bin`` when bin_weights is None."""

    footprint: tuple = (0.0, 0.0)
    na: float = 0.3
    bin_weights: tuple | None = None
    kind: str = field(init=False, default="camera")

    def __post_init__(self):
        super().__post_init__()
        if self.position[2] != 0:
            raise ValueError(f"position: the footprint lies on the z = 0 face (z = 0), got z = {self.position[2]}")
        if not np.array_equal(self.direction, [0.0, 0.0, 1.0]):
            raise ValueError(f"direction: a camera launch goes into the tissue along +z, got {self.direction.tolist()}")
        size = float_array("footprint", self.footprint, (2,))
        if not np.all(np.isfinite(size)) or np.any(size < 0):
            raise ValueError(f"footprint: two finite numbers >= 0 mm (0, 0 for a point), got {self.footprint!r}")
        self.footprint = tuple(size.tolist())
        na = real("na", self.na, "> 0, at most the ambient index")
        if not (math.isfinite(na) and na > 0):
            raise ValueError(f"na: must be > 0 (and at most the ambient index), got {self.na!r}")
        self.na = na
        if self.bin_weights is not None:
            self.bin_weights = _bin_weights(self.bin_weights)

    def edges(self):
        return np.array([self.footprint[0], 0.0, 0.0]), np.array([0.0, self.footprint[1], 0.0])

    def centre(self) -> np.ndarray:
        return self.position + 0.5 * np.array([self.footprint[0], self.footprint[1], 0.0])

    @property
    def area(self) -> float:
        """Footprint area in mm² (0 for a point)."""
        return self.footprint[0] * self.footprint[1]

    def sin2_max(self, n_ambient: float) -> float:
        """sin² of the cone half-angle in the ambient medium, (NA / n_ambient)²."""
        return (self.na / n_ambient) ** 2

    def bin_probabilities(self, n_bins: int) -> np.ndarray:
        """Probability of each wavelength bin among the launched photons."""
        if self.bin_weights is None:
            p = np.zeros(n_bins)
            p[self.wavelength_bin] = 1.0
            return p
        return self.bin_weights / self.bin_weights.sum()

    def bin_cdf(self, n_bins: int) -> np.ndarray:
        """The wavelength-bin CDF as the kernel reads it (em_f32)."""
        cdf = np.cumsum(self.bin_probabilities(n_bins))
        cdf[-1] = 1.0
        return cdf.astype(np.float32)

    def check(self, medium: Medium) -> None:
        if self.bin_weights is None:
            if not 0 <= self.wavelength_bin < medium.n_bins:
                raise ValueError(f"wavelength_bin: {self.wavelength_bin} not in [0, {medium.n_bins - 1}]")
        elif self.bin_weights.size != medium.n_bins:
            raise ValueError(f"bin_weights: one weight per wavelength bin ({medium.n_bins}), "
                             f"got {self.bin_weights.size}")
        if self.na > medium.n_ambient:
            raise ValueError(f"na: must be at most the ambient index {medium.n_ambient:g}, got {self.na:g}")
        lo, hi = self.position[:2], self.position[:2] + np.array(self.footprint)
        if np.any(lo < 0) or np.any(hi > medium.extent[:2]):
            raise ValueError(f"position/footprint: the footprint [{lo[0]:g}, {hi[0]:g}] x [{lo[1]:g}, {hi[1]:g}] mm "
                             f"must lie on the top face [0, {medium.extent[0]:g}] x [0, {medium.extent[1]:g}] mm")
        if medium.boundary["z-"] != "escape":
            raise ValueError(f"medium: a camera launch needs an escaping z- face (the camera looks at it), "
                             f"got {medium.boundary['z-']!r}")
