"""Linear unmixing (photonqd.unmixing): exact recovery, unbiasedness and error propagation under
noise, identifiability, NNLS optimality, design figures, input checks.

Statistical tests use fixed seeds and 4-sigma bands. The designs are heteroscedastic (channels
with different exposures, read noise and clutter), so unweighted least squares or a covariance
without whitening is detectably wrong.
"""

import numpy as np
import pytest
from scipy import optimize

from photonqd.unmixing import condition_number, crosstalk, simulate, unmix

Z = 4.0  # standard errors allowed in every statistical check


def design(n_species=5, n_channels=7, seed=0, full=False):
    """A plausible multiplexed design: channel c is centred on species c (c < N), with crosstalk
    from the others; extra channels see a mixture. Electrons per pixel over the exposure.
    Returns A, x, background, covariance (variances, or a full matrix with correlated noise)."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.05, 0.45, (n_channels, n_species))
    a[np.arange(n_species), np.arange(n_species)] += 1.0
    exposure = rng.uniform(0.3, 3.0, n_channels)           # different filters/exposures per channel
    a *= 4000.0 * exposure[:, None]
    x = rng.uniform(0.4, 1.6, n_species)
    background = rng.uniform(200.0, 1500.0, n_channels) * exposure
    read = rng.uniform(5.0, 60.0, n_channels)
    clutter = rng.uniform(0.0, 0.15, n_channels) * background  # structured background, std
    var = a @ x + background + read**2 + clutter**2
    if not full:
        return a, x, background, var
    sd = np.sqrt(var)
    q = rng.normal(size=(n_channels, n_channels))
    m = q @ q.T + n_channels * np.eye(n_channels)
    corr = m / np.sqrt(np.outer(np.diag(m), np.diag(m)))      # random correlation matrix
    return a, x, background, corr * np.outer(sd, sd)


def gls_reference(a, y, cov, background):
    """Textbook GLS by normal equations (independent of the module's SVD route)."""
    si = np.linalg.inv(cov if np.ndim(cov) == 2 else np.diag(cov))
    fisher = a.T @ si @ a
    covx = np.linalg.inv(fisher)
    return covx @ a.T @ si @ (y - background), covx


def whitened(a, y, cov, background):
    l_ = np.linalg.cholesky(cov if np.ndim(cov) == 2 else np.diag(cov))
    return np.linalg.solve(l_, a), np.linalg.solve(l_, y - background)


# ------------------------------------------------------------------------------------------------
# exact recovery and agreement with the textbook formula


@pytest.mark.parametrize("n_species,n_channels,seed", [(4, 5, 1), (5, 7, 2), (6, 8, 3), (6, 6, 4)])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("nonnegative", [False, True])
def test_noise_free_recovery(n_species, n_channels, seed, full, nonnegative):
    a, x, b, cov = design(n_species, n_channels, seed, full)
    assert condition_number(a, cov) < 20  # well conditioned, so 1e-10 is a fair demand
    res = unmix(a, a @ x + b, cov, b, nonnegative=nonnegative)
    np.testing.assert_allclose(res.abundance, x, rtol=1e-10, atol=0)
    assert res.separable.all() and not res.at_bound.any()
    assert res.rank == n_species and res.dof == n_channels - n_species
    assert res.chi2 < 1e-12
    assert res.reason == ("",) * n_species


@pytest.mark.parametrize("full", [False, True])
def test_matches_normal_equations(full):
    a, x, b, cov = design(5, 8, seed=7, full=full)
    y = simulate(a, x, b, cov, rng=11)
    ref_x, ref_cov = gls_reference(a, y, cov, b)
    res = unmix(a, y, cov, b)
    np.testing.assert_allclose(res.abundance, ref_x, rtol=1e-9)
    np.testing.assert_allclose(res.covariance, ref_cov, rtol=1e-9)
    np.testing.assert_allclose(res.standard_error, np.sqrt(np.diag(ref_cov)), rtol=1e-9)
    np.testing.assert_allclose(res.cnr, ref_x / np.sqrt(np.diag(ref_cov)), rtol=1e-9)
    r = y - b - a @ ref_x
    chi2 = r @ np.linalg.solve(cov if full else np.diag(cov), r)
    assert res.chi2 == pytest.approx(chi2, rel=1e-8)


def test_variances_equal_diagonal_matrix_and_background_default():
    a, x, b, var = design(4, 6, seed=5)
    y = simulate(a, x, b, var, rng=3)
    r1, r2 = unmix(a, y, var, b), unmix(a, y, np.diag(var), b)
    np.testing.assert_allclose(r1.abundance, r2.abundance, rtol=1e-12)
    np.testing.assert_allclose(r1.covariance, r2.covariance, rtol=1e-12)
    np.testing.assert_allclose(unmix(a, y - b, var).abundance, r1.abundance, rtol=1e-12)


def test_invariant_to_channel_units():
    """Rescaling one channel's gain (y, A, b by k; variance by k^2) must not change anything."""
    a, x, b, var = design(5, 7, seed=6)
    y = simulate(a, x, b, var, rng=4)
    k = np.array([1.0, 10.0, 0.01, 1.0, 3.0, 1.0, 0.5])
    r1 = unmix(a, y, var, b)
    r2 = unmix(a * k[:, None], y * k, var * k**2, b * k)
    np.testing.assert_allclose(r2.abundance, r1.abundance, rtol=1e-10)
    np.testing.assert_allclose(r2.covariance, r1.covariance, rtol=1e-10)
    assert condition_number(a * k[:, None], var * k**2) == pytest.approx(condition_number(a, var), rel=1e-10)


# ------------------------------------------------------------------------------------------------
# statistics under noise


@pytest.mark.parametrize("full", [False, True])
def test_unbiased_and_covariance_matches_scatter(full):
    a, x, b, cov = design(5, 7, seed=8, full=full)
    k = 4000
    ys = simulate(a, x, b, cov, rng=np.random.default_rng(2024), size=k)
    results = [unmix(a, y, cov, b) for y in ys]
    est = np.array([r.abundance for r in results])
    reported = results[0].covariance
    for r in results[1:3]:  # the reported covariance depends on the design only
        np.testing.assert_allclose(r.covariance, reported, rtol=1e-12)

    # unbiased: mean within Z standard errors of the mean, per species
    sem = np.sqrt(np.diag(reported) / k)
    z = (est.mean(axis=0) - x) / sem
    assert np.all(np.abs(z) <= Z), z

    # variances: (k-1) s^2 / sigma^2 ~ chi2(k-1), ratio sd sqrt(2/(k-1))
    sample = np.cov(est, rowvar=False)
    ratio = np.diag(sample) / np.diag(reported)
    assert np.all(np.abs(ratio - 1) <= Z * np.sqrt(2.0 / (k - 1))), ratio

    # the most correlated pair: Fisher z of the sample correlation vs the reported one
    rho = reported / np.sqrt(np.outer(np.diag(reported), np.diag(reported)))
    off = np.abs(rho - np.eye(len(x)))
    i, j = np.unravel_index(np.argmax(off), off.shape)
    assert off[i, j] > 0.3, "design too orthogonal for the correlation check to have power"
    r_sample = sample[i, j] / np.sqrt(sample[i, i] * sample[j, j])
    assert abs(np.arctanh(r_sample) - np.arctanh(rho[i, j])) <= Z / np.sqrt(k - 3), (r_sample, rho[i, j])

    # residual chi-square has mean dof (variance 2 dof)
    chi2 = np.array([r.chi2 for r in results])
    dof = results[0].dof
    assert dof == 2
    assert abs(chi2.mean() - dof) <= Z * np.sqrt(2.0 * dof / k)


def test_weighting_matters_in_this_design():
    """Power check for the test above: ordinary least squares has a covariance that differs from
    the WLS one by much more than the 4-sigma band (~9 %), so a missing whitening would fail."""
    a, x, b, var = design(5, 7, seed=8)
    pinv = np.linalg.pinv(a)
    ols_var = np.diag(pinv @ np.diag(var) @ pinv.T)
    wls_var = np.diag(unmix(a, a @ x + b, var, b).covariance)
    assert np.max(np.abs(ols_var / wls_var - 1)) > 0.3


# ------------------------------------------------------------------------------------------------
# identifiability


def _noisy(a, x, b, var, seed):
    return simulate(a, x, b, var, rng=seed)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_species_outside_every_channel(nonnegative):
    a, x, b, var = design(5, 7, seed=9)
    a[:, 2] = 0.0
    res = unmix(a, a @ x + b, var, b, nonnegative=nonnegative)
    assert list(res.separable) == [True, True, False, True, True]
    assert np.isnan(res.abundance[2]) and np.isnan(res.standard_error[2]) and np.isnan(res.cnr[2])
    assert np.all(np.isnan(res.covariance[2])) and np.all(np.isnan(res.covariance[:, 2]))
    assert "no channel" in res.reason[2]
    keep = [0, 1, 3, 4]
    np.testing.assert_allclose(res.abundance[keep], x[keep], rtol=1e-10)
    assert res.rank == 4 and res.dof == 7 - 4
    # the others' errors are those of the model without that species
    _, ref_cov = gls_reference(a[:, keep], a @ x + b, var, b)
    np.testing.assert_allclose(res.covariance[np.ix_(keep, keep)], ref_cov, rtol=1e-9)


@pytest.mark.parametrize("nonnegative", [False, True])
def test_duplicate_spectrum_flags_both(nonnegative):
    """Species 3 has species 1's spectrum (at 1.7 x the brightness): only x1 + 1.7 x3 is
    measured, so BOTH are reported not separable, each naming the other. The rest is unmixed
    in the full model: exact without noise, although the pair's signal overlaps their channels
    (dropping the pair instead would bias them)."""
    a, x, b, var = design(5, 7, seed=10)
    a[:, 3] = 1.7 * a[:, 1]
    y = a @ x + b
    res = unmix(a, y, var, b, nonnegative=nonnegative)
    assert list(res.separable) == [True, False, True, False, True]
    assert "species 3" in res.reason[1] and "species 1" in res.reason[3]
    assert np.all(np.isnan(res.abundance[[1, 3]]))
    keep = [0, 2, 4]
    np.testing.assert_allclose(res.abundance[keep], x[keep], rtol=1e-10)
    assert condition_number(a, var) == np.inf
    assert res.rank == 4 and res.dof == 7 - 4
    # errors: those of the reparametrised model with one column for the pair
    merged = [0, 1, 2, 4]
    _, ref_cov = gls_reference(a[:, merged], y, var, b)
    np.testing.assert_allclose(res.covariance[np.ix_(keep, keep)], ref_cov[np.ix_([0, 2, 3], [0, 2, 3])],
                               rtol=1e-7)
    # with noise, the separable ones still agree with the merged model's estimate
    yn = _noisy(a, x, b, var, 5)
    ref_x, _ = gls_reference(a[:, merged], yn, var, b)
    if not nonnegative:
        np.testing.assert_allclose(unmix(a, yn, var, b).abundance[keep], ref_x[[0, 2, 3]], rtol=1e-7)


def test_spectrum_in_span_of_others():
    a, x, b, var = design(5, 7, seed=11)
    a[:, 4] = 0.6 * a[:, 0] + 0.4 * a[:, 2]
    res = unmix(a, a @ x + b, var, b)
    assert list(res.separable) == [False, True, False, True, False]
    assert "species 0, 2" in res.reason[4]
    np.testing.assert_allclose(res.abundance[[1, 3]], x[[1, 3]], rtol=1e-10)


def test_fewer_channels_than_species_does_not_raise():
    rng = np.random.default_rng(12)
    a = rng.uniform(100, 1000, (3, 4))           # generic: every species confounded
    res = unmix(a, a @ np.ones(4), np.full(3, 50.0))
    assert not res.separable.any() and np.all(np.isnan(res.abundance)) and res.rank == 3
    assert all(res.reason)
    # 3 channels, 4 species, but only species 1 and 2 share a spectrum: 0 and 3 are separable
    a = np.array([[900.0, 50, 25, 20], [40, 800, 400, 30], [10, 60, 30, 700]])
    x = np.array([1.0, 0.5, 0.8, 1.3])
    res = unmix(a, a @ x, np.full(3, 50.0))
    assert list(res.separable) == [True, False, False, True]
    np.testing.assert_allclose(res.abundance[[0, 3]], x[[0, 3]], rtol=1e-10)


def test_nearly_collinear_is_separable_with_honest_error():
    """Close to, but not at, rank deficiency: separable, with a correspondingly large error."""
    a, x, b, var = design(4, 6, seed=13)
    before = unmix(a, a @ x + b, var, b).standard_error
    a[:, 3] = a[:, 2] * (1 + 1e-4 * np.arange(6))
    res = unmix(a, a @ x + b, var, b)
    assert res.separable.all() and res.rank == 4
    assert condition_number(a, var) > 1e4
    assert np.all(res.standard_error[2:] > 1000 * before[2:])
    np.testing.assert_allclose(res.abundance, x, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# non-negative least squares


def _kkt(a, y, cov, b, xhat):
    """Gradient of -1/2 chi2 in the whitened problem, and a scale for its rounding."""
    aw, yw = whitened(a, y, cov, b)
    g = aw.T @ (yw - aw @ xhat)
    return g, 1e-9 * np.linalg.norm(aw, axis=0) * np.linalg.norm(yw)


def test_nnls_with_absent_species():
    a, x, b, var = design(5, 7, seed=14)
    x[2] = 0.0
    x[4] = 0.05                                    # close to the bound too
    ys = simulate(a, x, b, var, rng=np.random.default_rng(15), size=300)
    bound = np.zeros(5, int)
    wls = unmix(a, ys[0], var, b).covariance
    for y in ys:
        res = unmix(a, y, var, b, nonnegative=True)
        assert np.all(res.abundance >= 0)
        g, tol = _kkt(a, y, var, b, res.abundance)
        assert np.all(g <= tol)                                       # dual feasibility
        free = res.abundance > 0
        assert np.all(np.abs(g[free]) <= tol[free])                   # stationarity on the free set
        np.testing.assert_array_equal(res.at_bound, ~free)
        bound += res.at_bound
        # covariance: NaN at the bound, the WLS one for the free species
        assert np.all(np.isnan(res.standard_error[res.at_bound])) and np.all(np.isnan(res.cnr[res.at_bound]))
        np.testing.assert_allclose(res.covariance[np.ix_(free, free)], wls[np.ix_(free, free)], rtol=1e-10)
        assert np.all(np.isnan(res.covariance[res.at_bound]))
        assert all("bound" in res.reason[s] for s in np.flatnonzero(res.at_bound))
        assert list(res.covariance_valid) == list(free)
        # same optimum as SciPy's NNLS on the whitened problem
        aw, yw = whitened(a, y, var, b)
        ref, _ = optimize.nnls(aw, yw)
        np.testing.assert_allclose(res.abundance, ref, rtol=1e-7, atol=1e-9 * np.abs(ref).max())
    # the test exercised the constraint: species 2 at the bound about half the time
    assert 60 < bound[2] < 240 and bound[[0, 1, 3]].sum() == 0


def test_nnls_equals_wls_when_interior():
    a, x, b, var = design(5, 7, seed=16)
    for seed in range(20):
        y = simulate(a, x, b, var, rng=seed)
        r0, r1 = unmix(a, y, var, b), unmix(a, y, var, b, nonnegative=True)
        assert np.all(r0.abundance > 0)
        np.testing.assert_allclose(r1.abundance, r0.abundance, rtol=1e-10)
        np.testing.assert_allclose(r1.covariance, r0.covariance, rtol=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_nnls_general_problems_match_scipy(seed):
    """Hard NNLS problems (signed random matrices, many constraints active) through the public
    API with unit variances: same optimum as scipy.optimize.nnls, KKT satisfied."""
    rng = np.random.default_rng(100 + seed)
    c, n = rng.integers(4, 12), rng.integers(2, 9)
    c = max(c, n)
    a = rng.normal(size=(c, n))
    y = rng.normal(size=c) * rng.uniform(0.1, 10)
    res = unmix(a, y, np.ones(c), nonnegative=True)
    ref, rnorm = optimize.nnls(a, y)
    assert res.chi2 == pytest.approx(rnorm**2, rel=1e-9, abs=1e-12)
    np.testing.assert_allclose(res.abundance, ref, rtol=1e-7, atol=1e-9)
    g, tol = _kkt(a, y, np.ones(c), np.zeros(c), res.abundance)
    assert np.all(res.abundance >= 0) and np.all(g <= tol)
    assert np.all(np.abs(g[res.abundance > 0]) <= tol[res.abundance > 0])


# ------------------------------------------------------------------------------------------------
# design figures


def test_condition_number():
    assert condition_number(np.eye(5)) == pytest.approx(1.0, abs=1e-12)
    one_hot = np.zeros((8, 4))
    one_hot[[0, 3, 5, 7], [0, 1, 2, 3]] = [5.0, 300.0, 1e4, 0.2]   # brightness must not matter
    assert condition_number(one_hot) == pytest.approx(1.0, abs=1e-12)
    assert condition_number(one_hot, np.arange(1.0, 9.0)) == pytest.approx(1.0, abs=1e-12)
    a, x, b, var = design(5, 7, seed=17)
    k = condition_number(a)
    assert 1 < k < 20
    assert condition_number(a * [1, 10, 100, 1e3, 1e4]) == pytest.approx(k, rel=1e-10)
    near = a.copy()
    near[:, 4] = near[:, 3] * (1 + 1e-6 * np.arange(7))
    assert 1e5 < condition_number(near) < np.inf
    dup = a.copy()
    dup[:, 4] = 2 * dup[:, 3]
    assert condition_number(dup) == np.inf
    zero = a.copy()
    zero[:, 0] = 0
    assert condition_number(zero) == np.inf
    assert condition_number(a[:4]) == np.inf                       # 4 channels, 5 species
    # whitening: same as dividing the rows by the noise standard deviations
    assert condition_number(a, var) == pytest.approx(condition_number(a / np.sqrt(var)[:, None]), rel=1e-10)
    assert condition_number(a, var) != pytest.approx(k, rel=1e-3)


def test_crosstalk():
    a, *_ = design(5, 7, seed=18)
    a[:, 1] = 0.0
    ct = crosstalk(a)
    assert ct.shape == (7, 5)
    assert np.all(np.isnan(ct[:, 1]))
    keep = [0, 2, 3, 4]
    np.testing.assert_allclose(ct[:, keep].sum(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ct[:, keep], a[:, keep] / a[:, keep].sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(crosstalk(np.eye(4)), np.eye(4))


def test_simulate():
    a, x, b, cov = design(4, 5, seed=19, full=True)
    ys = simulate(a, x, b, cov, rng=np.random.default_rng(1), size=20000)
    assert ys.shape == (20000, 5) and simulate(a, x, b, cov, rng=1).shape == (5,)
    np.testing.assert_array_equal(simulate(a, x, b, cov, rng=7), simulate(a, x, b, cov, rng=7))
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(ys.mean(axis=0) - (a @ x + b)) <= Z * sd / np.sqrt(len(ys)))
    np.testing.assert_allclose(np.cov(ys, rowvar=False) / np.outer(sd, sd), cov / np.outer(sd, sd), atol=0.04)


# ------------------------------------------------------------------------------------------------
# bad input


def _bad_cases():
    a, x, b, var = design(4, 6, seed=20)
    y = a @ x + b
    nan_a = a.copy()
    nan_a[1, 1] = np.nan
    asym = np.diag(var)
    asym[0, 1] = 0.5 * var[0]
    indefinite = np.diag(var)
    indefinite[0, 1] = indefinite[1, 0] = 2 * np.sqrt(var[0] * var[1])
    good = dict(A=a, y=y, covariance=var, background=b)
    cases = [
        (unmix, dict(good, A=a[:, 0]), "A"),
        (unmix, dict(good, A=nan_a), "A"),
        (unmix, dict(good, A=np.zeros((6, 0))), "A"),
        (unmix, dict(good, y=y[:5]), "y"),
        (unmix, dict(good, y=np.r_[y[:5], np.inf]), "y"),
        (unmix, dict(good, y=y[:, None]), "y"),
        (unmix, dict(good, background=b[:3]), "background"),
        (unmix, dict(good, background=np.r_[b[:5], np.nan]), "background"),
        (unmix, dict(good, covariance=var[:5]), "covariance"),
        (unmix, dict(good, covariance=np.r_[var[:5], 0.0]), "covariance"),
        (unmix, dict(good, covariance=np.r_[var[:5], -1.0]), "covariance"),
        (unmix, dict(good, covariance=np.diag(var)[:5]), "covariance"),
        (unmix, dict(good, covariance=asym), "covariance"),
        (unmix, dict(good, covariance=indefinite), "covariance"),
        (unmix, dict(good, covariance=np.full(6, np.nan)), "covariance"),
        (unmix, dict(good, covariance=np.ones((6, 6, 1))), "covariance"),
        (unmix, dict(good, nonnegative="yes"), "nonnegative"),
        (unmix, dict(good, rtol=0.0), "rtol"),
        (crosstalk, dict(A=-a), "A"),
        (crosstalk, dict(A=nan_a), "A"),
        (condition_number, dict(A=a, covariance=var[:3]), "covariance"),
        (condition_number, dict(A=[[1.0, "x"]]), "A"),
        (simulate, dict(A=a, x=x[:3], background=b, covariance=var), "x"),
        (simulate, dict(A=a, x=x, background=b[:2], covariance=var), "background"),
        (simulate, dict(A=a, x=x, background=b, covariance=asym), "covariance"),
        (simulate, dict(A=a, x=x, background=b, covariance=var, size=-1), "size"),
    ]
    return [pytest.param(f, kw, name, id=f"{f.__name__}-{name}-{i}") for i, (f, kw, name) in enumerate(cases)]


@pytest.mark.parametrize("func,kwargs,name", _bad_cases())
def test_bad_input_names_argument(func, kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        func(**kwargs)
