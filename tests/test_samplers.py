"""Pearson chi-square goodness-of-fit of every sampler in the kernel, on every backend present
(Mitsuba's sampler tests): Henyey-Greenstein scattering, the beam profiles and the rectangle
source, isotropic directions, the emission alias table and the wavelength-bin CDF, and the camera
(adjoint) launch: footprint, cone uniform in projected solid angle and its bin CDF.

The kernel backends run the device functions through kernels/test_functions.cl; NumPy runs the
reference functions on the same random streams (photonqd.device_functions). Seeds are fixed, so a
test's outcome never changes without a change to the code; a distribution is rejected at
p < 1e-3. A continuous variable is mapped through its analytic CDF (probability integral
transform), so equal-width bins of the result have equal expected counts; discrete ones are
binned as they are, merging cells with fewer than 5 expected. test_checks_reject_a_slightly_wrong_sampler
shows that the sample size and binning reject small errors.
"""

import functools
from unittest import mock

import numpy as np
import pytest
from scipy.stats import chi2

import photonqd as pq
from photonqd import device_functions as df
from photonqd.sampling import alias_table
from photonqd.backends import reference
from photonqd.sources import CameraLaunch, VoxelEmission

N = 200_000            # samples per check (every backend: the NumPy reference is cheap enough)
N_EMISSION = 1_000_000 # the emission launch is cheap, and the alias table's errors are spread thin
P_REJECT = 1e-3
SEED = 0x5EED_2024
BINS = 40              # per marginal; a joint histogram of d variables has JOINT_BINS[d] per axis
JOINT_BINS = {2: 12, 3: 6}
MIN_EXPECTED = 5.0


# --- the statistic -----------------------------------------------------------------------------
def pearson(observed, expected) -> tuple[float, float, int]:
    """Pearson chi-square of counts against expected counts of the same total: (statistic,
    p-value, degrees of freedom). Cells expected below MIN_EXPECTED are pooled, smallest first,
    into one cell (itself brought up to MIN_EXPECTED by the next cells); a count in a cell expected
    to be empty makes p = 0."""
    observed = np.asarray(observed, dtype=np.float64).ravel()
    expected = np.asarray(expected, dtype=np.float64).ravel()
    assert abs(observed.sum() - expected.sum()) < 1e-6 * expected.sum()
    if np.any(observed[expected == 0] > 0):
        return np.inf, 0.0, 0
    stat, cells, pool_o, pool_e = 0.0, 0, 0.0, 0.0
    for i in np.argsort(expected, kind="stable"):
        o, e = observed[i], expected[i]
        if e == 0:
            continue
        if e < MIN_EXPECTED or 0 < pool_e < MIN_EXPECTED:
            pool_o, pool_e = pool_o + o, pool_e + e
        else:
            stat, cells = stat + (o - e) ** 2 / e, cells + 1
    if pool_e > 0:
        stat, cells = stat + (pool_o - pool_e) ** 2 / pool_e, cells + 1
    dof = cells - 1
    return stat, float(chi2.sf(stat, dof)), dof


def uniform_p(columns: dict) -> dict:
    """p-values of the hypothesis that the columns (each a probability-integral transform, so
    uniform on [0, 1]) are independent uniforms: each marginal, and their joint histogram."""
    values = np.column_stack([np.clip(c, 0.0, 1.0) for c in columns.values()])
    out = {}
    for name, col in zip(columns, values.T):
        counts, _ = np.histogram(col, bins=BINS, range=(0.0, 1.0))
        out[name] = pearson(counts, np.full(BINS, len(col) / BINS))[1]
    if values.shape[1] > 1:
        k = JOINT_BINS[values.shape[1]]
        counts, _ = np.histogramdd(values, bins=k, range=[(0.0, 1.0)] * values.shape[1])
        out["joint"] = pearson(counts, np.full(counts.shape, len(values) / counts.size))[1]
    return out


def assert_fits(p_values: dict):
    assert min(p_values.values()) >= P_REJECT, f"chi-square rejects at p < {P_REJECT}: {p_values}"


# --- analytic distributions --------------------------------------------------------------------
def hg_cdf(mu, g):
    """P(cos theta <= mu) for the Henyey-Greenstein phase function."""
    if g == 0:
        return 0.5 * (mu + 1.0)
    return (1 - g * g) / (2 * g) * (1 / np.sqrt(1 + g * g - 2 * g * mu) - 1 / (1 + g))


def azimuth_cdf(phi):
    return (phi + np.pi) / (2 * np.pi)


def frame(u):
    """Two unit vectors that complete u to a right-handed orthonormal frame."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(u[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    a = np.cross(u, helper)
    a /= np.linalg.norm(a)
    return a, np.cross(u, a)


def polar_angles(v, u):
    """cos theta and phi of directions v about axis u."""
    a, b = frame(u)
    return v @ u, np.arctan2(v @ b, v @ a)


# --- Henyey-Greenstein ---------------------------------------------------------------------------
DIRECTIONS = {"tilted": (0.48, -0.6, 0.64),   # the general rotation
              "+z": (0.0, 0.0, 1.0), "-z": (0.0, 0.0, -1.0)}   # the polar branch


@pytest.mark.parametrize("incoming", DIRECTIONS)
@pytest.mark.parametrize("g", [-0.6, 0.0, 0.6, 0.9])
def test_henyey_greenstein(backend, g, incoming):
    u = np.array(DIRECTIONS[incoming])
    v = df.scatter(backend, u, g, N, SEED)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    mu, phi = polar_angles(v, u)
    assert_fits(uniform_p({"cos_theta": hg_cdf(mu, g), "phi": azimuth_cdf(phi)}))


# --- sources -------------------------------------------------------------------------------------
def _launch(backend, source):
    sim = pq.Simulation(pq.Medium.uniform((6, 6, 6), 1.0, 0.1, 1.0, 0.9, 1.4), source, photons=N, seed=SEED)
    return df.launch(backend, sim, N)


def _positions(d):
    return np.column_stack([d["x"], d["y"], d["z"]])


def _directions(d):
    return np.column_stack([d["ux"], d["uy"], d["uz"]])


BEAMS = {
    # 1/e^2 intensity radius w: r^2 is exponential with mean w^2 / 2
    "gaussian": (lambda: pq.GaussianBeam((3, 3, 0), (0.2, -0.1, 1.0), waist=1.2),
                 lambda r2: 1.0 - np.exp(-2.0 * r2 / 1.2**2)),
    # top hat of radius R: r^2 uniform on [0, R^2]
    "disk": (lambda: pq.DiskSource((3, 3, 0), (0.2, -0.1, 1.0), radius=1.5),
             lambda r2: r2 / 1.5**2),
}


@pytest.mark.parametrize("kind", BEAMS)
def test_beam_radius_and_azimuth(backend, kind):
    make, r2_cdf = BEAMS[kind]
    source = make()
    d = _launch(backend, source)
    offset = _positions(d) - source.position
    e1, e2 = source.edges()
    assert np.allclose(offset @ source.direction, 0.0, atol=1e-5), "launched off the beam's plane"
    assert np.allclose(_directions(d), source.direction, atol=1e-6), "a collimated beam changed direction"
    c, s = offset @ e1, offset @ e2
    assert_fits(uniform_p({"r^2": r2_cdf(c * c + s * s), "phi": azimuth_cdf(np.arctan2(s, c))}))


def test_rectangle_is_uniform(backend):
    # a parallelogram, so that the two edge coordinates are recovered independently
    source = pq.RectangleSource((0.5, 0.5, 0.0), edge1=(3.0, 0.5, 0.0), edge2=(1.0, 2.0, 0.0))
    d = _launch(backend, source)
    edges = np.column_stack(source.edges())
    coef, *_ = np.linalg.lstsq(edges, (_positions(d) - source.position).T, rcond=None)
    assert np.allclose(edges @ coef, (_positions(d) - source.position).T, atol=1e-5)
    assert_fits(uniform_p({"edge1": coef[0], "edge2": coef[1]}))


# --- emission: alias table over voxels, wavelength-bin CDF ---------------------------------------
SHAPE = (4, 5, 3)
BIN_WEIGHTS = (0.1, 0.0, 2.0, 0.5, 1.2, 0.002)   # an empty bin, and a small last one


def emission_density():
    """Emitting voxels with weights over five decades, some empty, two expected to receive fewer
    than 5 photons (pooled by the chi-square)."""
    rng = np.random.default_rng(11)
    density = rng.gamma(0.7, size=SHAPE)
    density[rng.random(SHAPE) < 0.15] = 0.0
    density.flat[[3, 17, 40]] = [1e-5, 3e-5, 2e-4]
    return density


def emission_sim(density=None, bin_weights=BIN_WEIGHTS):
    n_bins = len(bin_weights)
    optics = np.tile([[0.0, 0.0, 0.0, 1.0], [0.1, 1.0, 0.9, 1.4]], (n_bins, 1, 1))
    medium = pq.Medium(np.ones(SHAPE, np.uint8), (0.5, 0.7, 0.4), optics)
    source = VoxelEmission(density=emission_density() if density is None else density,
                           bin_weights=bin_weights)
    return pq.Simulation(medium, source, photons=N_EMISSION, seed=SEED, rng_stream=3)


@functools.lru_cache(maxsize=None)
def emission_draws(backend):
    return df.launch(backend, emission_sim(), N_EMISSION)


def voxel_p(d, density) -> tuple[float, float, int]:
    """chi-square of the emission voxels drawn in ``d`` against ``density``."""
    flat = (d["ix"].astype(np.int64) * SHAPE[1] + d["iy"].astype(np.int64)) * SHAPE[2] + d["iz"].astype(np.int64)
    density = density.ravel()
    return pearson(np.bincount(flat, minlength=density.size), len(flat) * density / density.sum())


def test_emission_voxels_follow_the_density(backend):
    d = emission_draws(backend)
    stat, p, dof = voxel_p(d, emission_density())
    assert p >= P_REJECT, f"voxel counts: chi2 = {stat:.1f} on {dof} dof, p = {p:.2e}"
    # the start point is uniform inside its voxel
    frac = _positions(d) / np.array([0.5, 0.7, 0.4]) - np.column_stack([d["ix"], d["iy"], d["iz"]])
    assert np.all((frac > -1e-5) & (frac < 1 + 1e-5)), "a start point outside its voxel"
    assert_fits(uniform_p({"x": frac[:, 0], "y": frac[:, 1], "z": frac[:, 2]}))


def test_emission_bins_follow_the_weights(backend):
    d = emission_draws(backend)
    w = np.asarray(BIN_WEIGHTS)
    counts = np.bincount(d["bin"].astype(np.int64), minlength=len(w))
    assert len(counts) == len(w) and counts[1] == 0
    stat, p, dof = pearson(counts, N_EMISSION * w / w.sum())
    assert p >= P_REJECT, f"bin counts {counts.tolist()}: chi2 = {stat:.1f} on {dof} dof, p = {p:.2e}"


# --- camera (adjoint) launch: footprint, cone in projected solid angle, wavelength bins -----------
CAMERA_N_AMBIENT = 1.33                      # water immersion: sin(theta_max) = NA / 1.33
CAMERA_CORNER, CAMERA_FOOTPRINT = (0.7, 1.1, 0.0), (2.5, 1.5)


def camera_sim(na=0.9, footprint=CAMERA_FOOTPRINT, bin_weights=BIN_WEIGHTS):
    n_bins = len(bin_weights)
    optics = np.tile([[0.0, 0.0, 0.0, CAMERA_N_AMBIENT], [0.1, 1.0, 0.9, 1.4]], (n_bins, 1, 1))
    medium = pq.Medium(np.ones((6, 6, 6), np.uint8), 0.8, optics, n_ambient=CAMERA_N_AMBIENT)
    source = CameraLaunch(CAMERA_CORNER, footprint=footprint, na=na, bin_weights=bin_weights)
    return pq.Simulation(medium, source, photons=N, seed=SEED, rng_stream=5)


def cone_p(d, na) -> dict:
    """Directions about +z uniform in projected solid angle inside the cone: sin^2 theta uniform
    in [0, sin^2 theta_max], azimuth uniform, independent."""
    v = _directions(d)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5) and np.all(v[:, 2] > 0)
    sin2 = v[:, 0] ** 2 + v[:, 1] ** 2
    return uniform_p({"sin^2 theta": sin2 / (na / CAMERA_N_AMBIENT) ** 2,
                      "phi": azimuth_cdf(np.arctan2(v[:, 1], v[:, 0]))})


@pytest.mark.parametrize("na", [0.3, 0.9, 1.33])
def test_camera_cone_is_uniform_in_projected_solid_angle(backend, na):
    assert_fits(cone_p(df.launch(backend, camera_sim(na), N), na))


def test_camera_footprint_and_bins(backend):
    d = df.launch(backend, camera_sim(), N)
    assert np.all(d["z"] == 0.0), "a camera photon starts on the z = 0 face"
    u = (d["x"] - CAMERA_CORNER[0]) / CAMERA_FOOTPRINT[0]
    v = (d["y"] - CAMERA_CORNER[1]) / CAMERA_FOOTPRINT[1]
    assert_fits(uniform_p({"x": u, "y": v}))
    w = np.asarray(BIN_WEIGHTS)
    counts = np.bincount(d["bin"].astype(np.int64), minlength=len(w))
    assert len(counts) == len(w) and counts[1] == 0
    stat, p, dof = pearson(counts, N * w / w.sum())
    assert p >= P_REJECT, f"bin counts {counts.tolist()}: chi2 = {stat:.1f} on {dof} dof, p = {p:.2e}"
    # a point footprint: every photon at the corner, the same cone
    point = df.launch(backend, camera_sim(footprint=(0.0, 0.0)), 1000)
    assert np.all(point["x"] == np.float32(CAMERA_CORNER[0])) and np.all(point["y"] == np.float32(CAMERA_CORNER[1]))


# --- isotropic directions ------------------------------------------------------------------------
ISOTROPIC = {
    "pq_isotropic": lambda backend: df.isotropic(backend, N, SEED),
    "point source": lambda backend: _directions(_launch(backend, pq.IsotropicPoint((2.0, 3.0, 2.5)))),
    "emission": lambda backend: _directions(emission_draws(backend)),
}


@pytest.mark.parametrize("route", ISOTROPIC)
def test_isotropic_directions(backend, route):
    v = ISOTROPIC[route](backend)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert_fits(uniform_p({"cos_theta": 0.5 * (v[:, 2] + 1.0),
                           "phi": azimuth_cdf(np.arctan2(v[:, 1], v[:, 0]))}))


# --- the checks have power -----------------------------------------------------------------------
def _wrong_hg():
    v = df.scatter("numpy", DIRECTIONS["tilted"], 0.59, N, SEED)   # g = 0.6 expected
    mu, phi = polar_angles(v, np.array(DIRECTIONS["tilted"]))
    return uniform_p({"cos_theta": hg_cdf(mu, 0.6), "phi": azimuth_cdf(phi)})


def _wrong_waist():
    source = pq.GaussianBeam((3, 3, 0), waist=1.2 * 1.02)          # waist 1.2 expected
    offset = _positions(_launch("numpy", source)) - source.position
    e1, e2 = source.edges()
    c, s = offset @ e1, offset @ e2
    return uniform_p({"r^2": BEAMS["gaussian"][1](c * c + s * s), "phi": azimuth_cdf(np.arctan2(s, c))})


def _wrong_acceptance():
    def low(weights):   # every alias acceptance 2 % low
        accept, alias = alias_table(weights)
        return accept * np.float32(0.98), alias

    with mock.patch("photonqd.sources.alias_table", low):
        d = df.launch("numpy", emission_sim(), N_EMISSION)
    return {"voxels": voxel_p(d, emission_density())[1]}


def _wrong_bin_weight():
    w = np.asarray(BIN_WEIGHTS)
    d = df.launch("numpy", emission_sim(bin_weights=tuple(w * [1, 1, 1, 1.03, 1, 1])), N_EMISSION)
    return {"bins": pearson(np.bincount(d["bin"].astype(np.int64), minlength=len(w)), N_EMISSION * w / w.sum())[1]}


def _wrong_cone():
    def solid_angle(sin2_max, xi_s2, xi_phi):   # uniform in solid angle, not projected solid angle
        cos_max = np.sqrt(1.0 - sin2_max)
        ct = 1.0 - xi_s2 * (1.0 - cos_max)
        st, phi = np.sqrt(1.0 - ct * ct), np.pi * (2.0 * xi_phi - 1.0)
        return np.stack([st * np.cos(phi), st * np.sin(phi), ct], axis=1)

    with mock.patch.object(reference, "cone", solid_angle):
        return cone_p(df.launch("numpy", camera_sim(0.6), N), 0.6)


@pytest.mark.parametrize("wrong", [_wrong_hg, _wrong_waist, _wrong_acceptance, _wrong_bin_weight, _wrong_cone],
                         ids=["hg g 0.59 for 0.6", "waist +2%", "alias acceptance -2%", "one bin +3%",
                              "cone uniform in solid angle at NA 0.6"])
def test_checks_reject_a_slightly_wrong_sampler(wrong):
    """Samples of a slightly different distribution fail the check at this sample size."""
    assert min(wrong().values()) < P_REJECT
