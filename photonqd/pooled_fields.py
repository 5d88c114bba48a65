"""Fields of a laterally invariant medium pooled in rings about a vertical axis.

In a medium whose optics depend on depth only (layers), the fluence of a beam that is symmetric
about a vertical axis (a disk beam, or a point launch) depends on (rho, z) alone. Averaging the
voxel tally over the voxels whose centres lie in one ring [i w, (i + 1) w) of each layer keeps
that information and pools the Monte Carlo samples of the whole ring: a point launch then gives
the response to every lateral offset at once (docs/adjoint.md, "The depth study").

A pooled field is kept per batch (independent sub-runs), so every quantity built from it carries
a batch-means error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np



class RingGeometry:
    """Rings of width ``ring_mm`` about the vertical axis through (cx, cy) on a voxel grid."""

    def __init__(self, shape, voxel_size, axis_mm, ring_mm: float | None = None):
        nx, ny, self.nz = (int(v) for v in shape)
        vx, vy, _ = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
        self.ring_mm = float(ring_mm if ring_mm is not None else min(vx, vy))
        if not self.ring_mm > 0:
            raise ValueError(f"ring_mm: must be > 0 mm, got {ring_mm!r}")
        self.axis_mm = (float(axis_mm[0]), float(axis_mm[1]))
        self.column_area = float(vx * vy)
        x = (np.arange(nx) + 0.5) * vx - self.axis_mm[0]
        y = (np.arange(ny) + 0.5) * vy - self.axis_mm[1]
        self.column_x = np.repeat(x, ny)                    # column (i, j) -> i * ny + j
        self.column_y = np.tile(y, nx)
        radius = np.hypot(self.column_x, self.column_y)
        self.ring = (radius // self.ring_mm).astype(np.int64)
        self.n_rings = int(self.ring.max()) + 1
        self.count = np.bincount(self.ring, minlength=self.n_rings).astype(np.float64)
        # each ring's value stands at the mean radius of its voxel centres (empty rings: the middle)
        sums = np.bincount(self.ring, weights=radius, minlength=self.n_rings)
        middle = (np.arange(self.n_rings) + 0.5) * self.ring_mm
        self.rho = np.where(self.count > 0, sums / np.maximum(self.count, 1), middle)
        self._order = np.argsort(self.ring, kind="stable")
        self._starts = np.searchsorted(self.ring[self._order], np.arange(self.n_rings))

    def pool(self, field: np.ndarray) -> np.ndarray:
        """(nz, n_rings): the mean of a (nx, ny, nz) voxel field over each ring of each layer."""
        f = np.asarray(field, dtype=np.float64).reshape(-1, self.nz)[self._order]
        sums = np.add.reduceat(f, self._starts, axis=0)
        out = np.zeros((self.n_rings, self.nz))
        filled = self.count > 0
        out[filled] = sums[filled] / self.count[filled, None]
        return out.T

    def pool_map(self, image: np.ndarray) -> np.ndarray:
        """(1, n_rings): the mean of an (nx, ny) surface map (on the voxel columns) over each ring."""
        f = np.asarray(image, dtype=np.float64).reshape(-1, 1)[self._order]
        sums = np.add.reduceat(f, self._starts, axis=0)[:, 0]
        return np.where(self.count > 0, sums / np.maximum(self.count, 1), 0.0)[None, :]

    def weights(self, distance_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Linear interpolation in rho: (index j, fraction f) so that a pooled profile F at
        ``distance_mm`` is (1 - f) F[j] + f F[j + 1] (held at the innermost ring's radius, and
        zero beyond the outermost ring)."""
        d = np.asarray(distance_mm, dtype=np.float64)
        j = np.clip(np.searchsorted(self.rho, d) - 1, 0, self.n_rings - 2)
        f = np.clip((d - self.rho[j]) / (self.rho[j + 1] - self.rho[j]), 0.0, 1.0)
        f = np.where(d < self.rho[0], 0.0, f)
        beyond = d > self.rho[-1]
        return np.where(beyond, self.n_rings - 2, j), np.where(beyond, np.nan, f)


@dataclass
class PooledField:
    """A field pooled by ``RingGeometry``: per batch (K, nz, n_rings), with photons per batch."""

    batches: np.ndarray
    photons: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        w = self.photons / self.photons.sum()
        return np.tensordot(w, self.batches, axes=1)

    def error(self) -> np.ndarray:
        """Batch-means standard error of the mean, element by element."""
        k = len(self.photons)
        w = (self.photons / self.photons.sum())[:, None, None]
        mean = self.mean
        var = (w * (self.batches - mean) ** 2).sum(axis=0) * k / (k - 1)
        return np.sqrt(var / k)

    def extended(self, other: "PooledField") -> "PooledField":
        """This field with ``other``'s batches appended (more photons of the same run)."""
        return PooledField(np.concatenate([self.batches, other.batches]),
                           np.concatenate([self.photons, other.photons]))


def interpolate(profile: np.ndarray, layer: np.ndarray, j: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Values of pooled profiles (..., nz, n_rings) at (layer, interpolation weights j, f);
    NaN fractions (beyond the outermost ring) give 0."""
    p = np.asarray(profile)
    lo = p[..., layer, j]
    hi = p[..., layer, j + 1]
    out = (1.0 - np.nan_to_num(f)) * lo + np.nan_to_num(f) * hi
    return np.where(np.isnan(f), 0.0, out)


def _lens_area(r: np.ndarray, radius: float, distance: np.ndarray) -> np.ndarray:
    """Area of the intersection of a disk of radius r centred ``distance`` away from a disk of
    ``radius`` (element by element)."""
    r, d = np.broadcast_arrays(np.asarray(r, dtype=np.float64), np.asarray(distance, dtype=np.float64))
    big = radius
    out = np.zeros(r.shape)
    inside = d <= np.abs(big - r)
    out[inside] = np.pi * np.minimum(r[inside], big) ** 2
    part = ~inside & (d < r + big) & (r > 0)
    rp, dp = r[part], d[part]
    a = np.clip((dp**2 + rp**2 - big**2) / (2 * dp * rp), -1, 1)
    b = np.clip((dp**2 + big**2 - rp**2) / (2 * dp * big), -1, 1)
    k = np.clip((-dp + rp + big) * (dp + rp - big) * (dp - rp + big) * (dp + rp + big), 0, None)
    out[part] = rp**2 * np.arccos(a) + big**2 * np.arccos(b) - 0.5 * np.sqrt(k)
    return out


def disk_average_matrix(rings: RingGeometry, radius_mm: float) -> np.ndarray:
    """M (rings, rings): a uniform disk beam of ``radius_mm`` centred on the axis gives the pooled
    field F_disk = F_point @ M.T from the pooled field of a point (pencil) beam on the axis, by
    lateral invariance: F_disk(x) = (1 / pi R^2) integral over the disk of F_point(|x - u|) du.
    Ring i of F_point stands for its voxels (its area: count x voxel area, so that the integral
    of the voxel tally is kept), spread over the annulus [i w, (i + 1) w) about x; the share of
    that annulus inside the disk is exact (circle-circle intersections)."""
    edges = np.arange(rings.n_rings + 1) * rings.ring_mm
    cover = _lens_area(edges[None, :], radius_mm, rings.rho[:, None])       # (out rings, edges)
    annulus = np.pi * np.diff(edges**2)
    area = rings.count * rings.column_area
    return np.diff(cover, axis=1) / annulus * area / (np.pi * radius_mm**2)
