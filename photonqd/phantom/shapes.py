"""Voxel volumes from shapes: grids, voxel centres, sphere/cylinder/ellipsoid masks and layers.

All lengths are in mm in the grid frame (origin at the volume's corner, +z into the tissue).
Voxelisation follows MCX's rule (fangq/mcx src/mcx_shapes.c, ``mcx_raster_sphere``,
``mcx_raster_cylinder``): a voxel belongs to a shape when its centre lies inside, boundary included
(|centre - O| <= R for a sphere, distance to the axis <= R for a cylinder); ellipsoids follow the
same rule. Layers: a voxel belongs to the layer that holds its centre (MCX ``ZLayers`` on whole
voxels).
"""

from __future__ import annotations

import numpy as np

from ..checks import float_array
from ..medium import MAX_VOXELS


def grid_shape(size, voxel_size) -> tuple[int, int, int]:
    """Voxels along x, y, z for a box of ``size`` mm (one number: a cube) cut into ``voxel_size``.
    Refuses a grid the kernels cannot hold before anything of that size is allocated."""
    size, voxel = float_array("size_mm", size, (3,)), float_array("voxel_size", voxel_size, (3,))
    if not (np.all(np.isfinite(voxel)) and np.all(np.isfinite(size))) or np.any(voxel <= 0) or np.any(size <= 0):
        raise ValueError(f"size_mm {size.tolist()} and voxel_size {voxel.tolist()} mm must be > 0 and finite")
    counts = size / voxel
    if np.prod(counts) > MAX_VOXELS:
        raise ValueError(f"voxel_size: {voxel.tolist()} mm cuts the {size.tolist()} mm box into "
                         f"{np.prod(counts):.3g} voxels, more than the limit of {MAX_VOXELS}")
    if not np.allclose(counts, np.round(counts), rtol=0, atol=1e-9):
        raise ValueError(f"size_mm {size.tolist()} mm is not a whole number of voxels of {voxel.tolist()} mm")
    return tuple(int(c) for c in np.round(counts))


def voxel_centres(shape, voxel_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable x, y, z coordinates (mm) of the voxel centres."""
    voxel = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    return tuple((np.arange(n) + 0.5) * d for n, d in zip(shape, voxel))


#: Relative slack on "boundary included": voxel centres in mm carry rounding (0.005 mm voxels are
#: not exact in binary), and a centre exactly on the surface in voxel units must stay inside.
BOUNDARY_RTOL = 1e-9


def ellipsoid_mask(shape, voxel_size, centre, semi_axes) -> np.ndarray:
    """Boolean (nx, ny, nz) mask of the voxels whose centre lies in the axis-aligned ellipsoid with
    ``semi_axes`` (a, b, c) mm about ``centre`` (mm): sum(((x - c) / a)^2) <= 1."""
    x, y, z = voxel_centres(shape, voxel_size)
    (cx, cy, cz), (a, b, c) = np.asarray(centre, dtype=np.float64), np.asarray(semi_axes, dtype=np.float64)
    q = (((x - cx) / a) ** 2)[:, None, None] + (((y - cy) / b) ** 2)[None, :, None] \
        + (((z - cz) / c) ** 2)[None, None, :]
    return q <= 1.0 + BOUNDARY_RTOL


def sphere_mask(shape, voxel_size, centre, radius: float) -> np.ndarray:
    """Boolean (nx, ny, nz) mask of the voxels whose centre lies within ``radius`` mm of ``centre``."""
    x, y, z = voxel_centres(shape, voxel_size)
    cx, cy, cz = np.asarray(centre, dtype=np.float64)
    r2 = ((x - cx) ** 2)[:, None, None] + ((y - cy) ** 2)[None, :, None] + ((z - cz) ** 2)[None, None, :]
    return r2 <= radius * radius * (1.0 + BOUNDARY_RTOL)


def cylinder_mask(shape, voxel_size, axis: int, centre, radius: float) -> np.ndarray:
    """Boolean mask of the voxels whose centre lies within ``radius`` mm of the line parallel to
    ``axis`` (0 = x, 1 = y, 2 = z) through ``centre``: the two other coordinates in mm, in order."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis: must be 0 (x), 1 (y) or 2 (z), got {axis!r}")
    coords = voxel_centres(shape, voxel_size)
    across = [i for i in range(3) if i != axis]
    u, v = (coords[i] - c for i, c in zip(across, np.asarray(centre, dtype=np.float64)))
    section = (u**2)[:, None] + (v**2)[None, :] <= radius * radius * (1.0 + BOUNDARY_RTOL)
    return np.broadcast_to(np.expand_dims(section, axis), shape)


def layer_labels(shape, voxel_size, thicknesses, below: int) -> np.ndarray:
    """uint8 labels of layers stacked from the surface (z = 0) down: layer i (``thicknesses[i]`` mm)
    gets label i + 1, voxels whose centre lies below the last layer get ``below``."""
    _, _, z = voxel_centres(shape, voxel_size)
    labels = np.full(shape, below, dtype=np.uint8)
    top = 0.0
    for i, thickness in enumerate(thicknesses):
        labels[:, :, (z >= top) & (z < top + thickness)] = i + 1
        top += thickness
    return labels
