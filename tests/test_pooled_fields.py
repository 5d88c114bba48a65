"""Ring pooling and the disk average of a point-beam field (photonqd.pooled_fields)."""

import math

import numpy as np

from photonqd.medium import Medium
from photonqd.pooled_fields import PooledField, RingGeometry, disk_average_matrix, interpolate
from photonqd.simulation import Simulation
from photonqd.sources import DiskSource, PencilBeam
from photonqd.tallies import batch_mean_error


def test_rings_pool_constant_and_radial_fields():
    rings = RingGeometry((40, 40, 3), (0.25, 0.25, 0.1), (5.0, 5.0))
    assert rings.count.sum() == 40 * 40
    pooled = rings.pool(np.full((40, 40, 3), 2.5))
    assert np.allclose(pooled[:, rings.count > 0], 2.5)
    # a field linear in the radius pools to its value at each ring's mean radius, exactly
    r = np.hypot(rings.column_x, rings.column_y).reshape(40, 40)
    field = np.repeat((3.0 * r)[:, :, None], 3, axis=2)
    assert np.allclose(rings.pool(field)[0], 3.0 * rings.rho)
    j, f = rings.weights(rings.rho[3:6])
    assert np.allclose(interpolate(rings.pool(field), np.zeros(3, int), j, f), 3.0 * rings.rho[3:6])
    j, f = rings.weights(np.array([1e3]))
    assert interpolate(rings.pool(field), np.zeros(1, int), j, f)[0] == 0.0   # beyond the grid


def test_disk_average_keeps_the_voxel_integral():
    rings = RingGeometry((160, 160, 1), (0.25, 0.25, 1.0), (20.0, 20.0))
    m = disk_average_matrix(rings, 5.0)
    assert np.all(m >= -1e-15)
    # on the axis, rings wholly inside the disk count with their voxels' area
    inside = (np.arange(rings.n_rings) + 1) * rings.ring_mm + rings.rho[0] <= 5.0
    assert np.allclose(m[0, inside], rings.count[inside] * 0.0625 / (math.pi * 25.0))
    # a uniform field averages to itself (up to the voxel/annulus area mismatch of each ring)
    far = rings.rho + 5.0 <= 19.0
    assert np.allclose(m[far].sum(axis=1), 1.0, atol=0.02)


def test_pooled_field_batches_and_extension():
    a = PooledField(np.arange(6.0).reshape(3, 1, 2), np.array([1.0, 1.0, 2.0]))
    assert np.allclose(a.mean, (np.array([[0, 1]]) + np.array([[2, 3]]) + 2 * np.array([[4, 5]])) / 4)
    b = a.extended(PooledField(np.zeros((1, 1, 2)), np.array([4.0])))
    assert len(b.photons) == 4 and b.photons.sum() == 8
    assert np.all(a.error() > 0)


def test_disk_beam_equals_the_disk_average_of_a_pencil(fast_backend, budget):
    """Lateral invariance: the pooled fluence of a uniform disk beam is the disk average of the
    pooled pencil-beam fluence, within the two runs' batch-means errors (a dermis-like slab)."""
    shape, voxel = (64, 64, 20), (0.25, 0.25, 0.2)
    medium = Medium(np.ones(shape, np.uint8), voxel, [[0, 0, 0, 1], [0.02, 10.0, 0.9, 1.4]])
    axis = (8.0, 8.0)
    rings = RingGeometry(shape, voxel, axis)

    def pooled(source, photons, stream):
        sim = Simulation(medium, source, photons=photons, seed=3, rng_stream=stream,
                         batch_photons=photons // 10, keep_batches=("fluence",),
                         reduce_batch=lambda b: rings.pool(b["fluence"]))
        r = sim.run(fast_backend)
        return np.stack(r.batch_tallies), r.batch_photons

    n = budget(kernel=60_000)
    pencil, wp = pooled(PencilBeam((axis[0], axis[1], 0.0)), n, 0)
    disk, wd = pooled(DiskSource((axis[0], axis[1], 0.0), radius=2.0), n, 1)
    m = disk_average_matrix(rings, 2.0)
    from_pencil = pencil @ m.T
    # region near the axis, a few depths: sums over rings 0-3 (rho < 1 mm) per layer
    z = []
    for layer in (1, 5, 10, 15):
        a = from_pencil[:, layer, :4].mean(axis=1)
        b = disk[:, layer, :4].mean(axis=1)
        ma, sa = batch_mean_error(a, wp)
        mb, sb = batch_mean_error(b, wd)
        z.append((ma - mb) / math.hypot(sa, sb))
    assert max(abs(v) for v in z) < 3.5, z
