"""Small phantoms and statistics shared by the tests."""

import numpy as np

import photonqd as pq


def slab(mua, mus, g, n, thickness, n_ambient=1.0, side="mirror", width=100.0):
    """A laterally infinite slab: one voxel with mirror (or cyclic) side faces."""
    optics = [[0, 0, 0, n_ambient], [mua, mus, g, n]]
    return pq.Medium(np.ones((1, 1, 1), np.uint8), (width, width, thickness), optics,
                     n_ambient=n_ambient, boundary={f: side for f in ("x-", "x+", "y-", "y+")})


def heterogeneous():
    """Three tissues with internal index mismatches and unequal voxel sizes."""
    labels = np.ones((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 2:6] = 2
    labels[:, :, 7:] = 3
    optics = [[0, 0, 0, 1], [0.02, 2.0, 0.8, 1.37], [0.1, 5.0, 0.9, 1.5], [0.01, 1.0, 0.0, 1.33]]
    return pq.Medium(labels, (1.0, 1.0, 0.8), optics)


def zscore(a, sa, b, sb=0.0):
    return (a - b) / np.sqrt(sa**2 + sb**2)
