"""Linear unmixing of quantum-dot species from multi-channel detection (NumPy only).

Model, at one target depth: channel c (filter band + sensor) measures over the target region

    y_c = sum_s A[c, s] x_s + b_c + noise_c,      noise ~ Normal(0, S)

* ``A[c, s]``  detected signal of species s at unit abundance in channel c
               (electrons per pixel over the channel's exposure),
* ``b_c``      background in channel c: autofluorescence, excitation leakage (electrons per pixel),
* ``x_s``      abundance of species s (dimensionless; 1 = present at its nominal concentration),
* ``S``        noise covariance (electrons^2 per pixel): normally diagonal, ``var_c`` = shot noise of
               signal + background, read and dark noise, clutter, given by the caller, because the
               channels have their own filters and exposures; a full matrix is accepted too.

The estimate is generalised (weighted) least squares. It is computed by whitening with the
Cholesky factor of S (L L^T = S; A_w = L^-1 A, y_w = L^-1 (y - b)), scaling each whitened column
to unit length, and taking an SVD. That route does not form A^T S^-1 A or invert it. The column
scaling makes the rank decision and the condition number depend on spectral overlap only, not on
how bright one species is compared with another. The covariance of the estimate is
(A^T S^-1 A)^-1, computed from the same SVD.

Identifiability. A species is *not separable* when no channel sees it (zero column of A), or when
its whitened spectrum lies, within ``rtol``, in the span of the others. In that case its direction
has a share in the numerical null space of the whitened, column-normalised A. A duplicated
spectrum (equal or proportional columns) makes *both* species of the pair not separable: only
their sum is measured, so neither abundance is. A spectrum that is a combination of others flags
every species in that combination. Such species get NaN abundance, error and CNR, and a reason.
The others are still unmixed in the full model, where their value is the same for every
least-squares solution (an estimable function). They are not unmixed by deleting the
confounded columns, which would bias them by the confounded species' signal.

Non-negative unmixing (``nonnegative=True``) solves the whitened problem with our own
Lawson-Hanson active-set NNLS. A species driven to the bound (estimate exactly 0) is flagged
``at_bound``. The Gaussian covariance is not valid there, so it is reported as NaN. Free species
report the unconstrained WLS covariance. That is conservative: it is at least the covariance of
the free-set refit with the bound species fixed at 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Relative tolerance on the singular values of the whitened, column-normalised mixing matrix:
#: below rtol * largest the matrix counts as rank-deficient. At 1e-10 the variance of an abundance
#: would be inflated ~1e20 times over an orthogonal design, which is useless anyway; below that,
#: rounding (not the optics) decides.
RTOL = 1e-10

#: A species whose unit direction has a component larger than this in the numerical null space
#: is not separable. Rounding gives unrelated species components of ~eps * condition number,
#: far below this unless the kept part is itself as ill-conditioned as RTOL.
NULL_SHARE = 1e-6


@dataclass(frozen=True)
class UnmixResult:
    """Unmixed abundances of N species, with their errors. Index s follows the columns of A.

    abundance       (N,) estimated abundance x_hat (dimensionless, 1 = nominal concentration);
                    NaN for a species that is not separable.
    covariance      (N, N) covariance of x_hat, (A^T S^-1 A)^-1 for the separable species.
                    NaN in the rows/columns of species that are not separable, or at the bound
                    (NNLS).
    standard_error  (N,) sqrt of the diagonal of ``covariance``.
    cnr             (N,) unmixed contrast-to-noise ratio x_hat_s / standard_error_s (signed:
                    noise can make x_hat negative in plain WLS).
    separable       (N,) False where no channel sees the species or its spectrum is in the span
                    of the others (see ``reason``).
    at_bound        (N,) True where NNLS put the estimate on the bound x_hat = 0 (always False
                    for plain WLS). There the abundance 0 is the estimate, but the covariance,
                    error and CNR are NaN because the Gaussian error propagation does not hold.
    reason          (N,) why a species is not separable or is at the bound; "" when neither.
    rank            numerical rank of the whitened, column-normalised mixing matrix.
    chi2            whitened residual sum of squares (y - b - A x_hat)^T S^-1 (y - b - A x_hat).
                    With a correct model and covariance it follows chi-square with ``dof``
                    degrees of freedom (WLS; NNLS only approximately).
    dof             channels - rank.
    nonnegative     whether the non-negativity constraint was applied.
    """

    abundance: np.ndarray
    covariance: np.ndarray
    standard_error: np.ndarray
    cnr: np.ndarray
    separable: np.ndarray
    at_bound: np.ndarray
    reason: tuple
    rank: int
    chi2: float
    dof: int
    nonnegative: bool

    @property
    def covariance_valid(self) -> np.ndarray:
        """(N,) True where the reported covariance, error and CNR hold: separable species that
        are not on the non-negativity bound."""
        return self.separable & ~self.at_bound


# ------------------------------------------------------------------------------------------------
# input checks: every ValueError names the argument at fault


def _array(value, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not a real numeric array ({exc})") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite values (NaN or inf)")
    return arr


def _mixing(A) -> np.ndarray:
    a = _array(A, "A")
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"A: must be a 2-D array of shape (channels, species), got shape {a.shape}")
    return a


def _vector(value, n: int, name: str, what: str) -> np.ndarray:
    v = _array(value, name)
    if v.shape != (n,):
        raise ValueError(f"{name}: must have shape ({n},) (one value per {what}), got shape {v.shape}")
    return v


def _cholesky(covariance, n_channels: int) -> np.ndarray:
    """Whitening factor of the noise covariance: (C,) standard deviations when it is given as
    variances, else the lower Cholesky factor L (C, C) with L L^T = S."""
    s = _array(covariance, "covariance")
    if s.ndim == 1:
        if s.shape != (n_channels,):
            raise ValueError(f"covariance: as variances it must have shape ({n_channels},), got {s.shape}")
        if np.any(s <= 0):
            raise ValueError("covariance: variances must be > 0 (the noise covariance must be "
                             "positive definite)")
        return np.sqrt(s)
    if s.shape != (n_channels, n_channels):
        raise ValueError(f"covariance: must have shape ({n_channels},) (variances) or "
                         f"({n_channels}, {n_channels}) (full matrix), got {s.shape}")
    scale = np.max(np.abs(s))
    if np.max(np.abs(s - s.T)) > 1e-10 * scale:
        raise ValueError("covariance: matrix is not symmetric")
    try:
        return np.linalg.cholesky(0.5 * (s + s.T))
    except np.linalg.LinAlgError:
        raise ValueError("covariance: matrix is not positive definite (Cholesky failed)") from None


def _whiten(factor: np.ndarray, m: np.ndarray) -> np.ndarray:
    """L^-1 m (m: a vector or a matrix with one row per channel)."""
    if factor.ndim == 1:
        return m / (factor if m.ndim == 1 else factor[:, None])
    return np.linalg.solve(factor, m)


def _rtol(rtol) -> float:
    r = float(rtol)
    if not (np.isfinite(r) and 0 < r < 1):
        raise ValueError(f"rtol: must be in (0, 1), got {rtol!r}")
    return r


# ------------------------------------------------------------------------------------------------
# identifiability


@dataclass(frozen=True)
class _Decomposition:
    norms: np.ndarray      # (N,) whitened column norms; 0: no channel sees the species
    seen: np.ndarray       # (K,) indices of the species with a non-zero column
    an: np.ndarray         # (C, K) whitened, unit-norm columns of the seen species
    u: np.ndarray          # SVD of an: an = u[:, :k] diag(sv) vt[:k]
    sv: np.ndarray
    vt: np.ndarray         # (K, K): full, so its last K - rank rows span the null space
    rank: int
    separable: np.ndarray  # (N,) bool
    reason: list


def _decompose(aw: np.ndarray, rtol: float) -> _Decomposition:
    c, n = aw.shape
    norms = np.sqrt(np.sum(aw * aw, axis=0))
    seen = np.flatnonzero(norms > 0)
    an = aw[:, seen] / norms[seen]
    separable = norms > 0
    reason = ["" if ok else "no channel detects it (its column of A is zero)" for ok in separable]
    if seen.size == 0:
        return _Decomposition(norms, seen, an, np.zeros((c, 0)), np.zeros(0), np.zeros((0, 0)), 0,
                              separable, reason)
    u, sv, vt = np.linalg.svd(an, full_matrices=True)
    rank = int(np.sum(sv > rtol * sv[0]))
    null = vt[rank:].T                           # (K, K - rank) orthonormal basis of the null space
    projector = null @ null.T                    # basis-independent: P[s, s] = share of e_s in it
    share = np.sqrt(np.clip(np.diag(projector), 0.0, None))
    for k, s in enumerate(seen):
        if share[k] <= NULL_SHARE:
            continue
        separable[s] = False
        # A (P e_s) = 0 with (P e_s)_s > 0: a_s is a combination of the a_t with P[s, t] != 0.
        # By Cauchy-Schwarz every such t also has share > NULL_SHARE, so it is flagged as well.
        partners = [int(seen[t]) for t in range(seen.size)
                    if t != k and abs(projector[k, t]) > NULL_SHARE * share[k]]
        if partners:
            names = ", ".join(str(t) for t in partners)
            reason[s] = (f"its spectrum is (within rtol={rtol:g}) a linear combination of those of "
                         f"species {names}: only that combination is measured")
        else:
            reason[s] = f"it lies in the numerical null space of the mixing matrix (rtol={rtol:g})"
    return _Decomposition(norms, seen, an, u, sv, vt, rank, separable, reason)


# ------------------------------------------------------------------------------------------------
# non-negative least squares (Lawson & Hanson 1974, ch. 23), written for this module


def _nnls(m: np.ndarray, d: np.ndarray) -> np.ndarray:
    """argmin ||m z - d||_2 subject to z >= 0, by the Lawson-Hanson active-set method.

    The free (passive) set grows one variable at a time: the bound variable with the largest
    gradient w = m^T (d - m z). After each addition the least-squares solution on the free set
    is taken. If that solution is infeasible, z moves towards it only until the first free
    variable reaches 0, and that variable is released, until the free-set solution is positive.
    On return z_j = 0 exactly for bound variables and w_j <= tol for them (KKT).
    """
    rows, n = m.shape
    z = np.zeros(n)
    if n == 0:
        return z
    free = np.zeros(n, dtype=bool)
    # a gradient below this is rounding: |w| <= ||m|| ||d|| for any feasible step of the method
    tol = 10.0 * max(rows, n) * np.finfo(float).eps * np.linalg.norm(m, 2) * np.linalg.norm(d)
    blocked = np.zeros(n, dtype=bool)  # added but numerically non-positive: skip until z changes
    max_steps = 30 * n + 50            # LH terminates in finitely many steps; this is a guard only
    steps = 0
    w = m.T @ (d - m @ z)
    while True:
        candidates = ~free & ~blocked
        if not candidates.any() or np.max(w[candidates]) <= tol:
            return z
        j = int(np.flatnonzero(candidates)[np.argmax(w[candidates])])
        free[j] = True
        first = True
        while True:
            steps += 1
            if steps > max_steps:
                raise RuntimeError("Lawson-Hanson NNLS did not converge (numerically degenerate "
                                   "problem)")
            trial = np.zeros(n)
            trial[free] = np.linalg.lstsq(m[:, free], d, rcond=None)[0]
            if np.all(trial[free] > 0):
                z = trial
                blocked[:] = False
                break
            if first and trial[j] <= 0:
                # w_j > 0 promises trial_j > 0 in exact arithmetic; rounding broke it: undo
                free[j] = False
                blocked[j] = True
                break
            first = False
            # step from z towards trial until the first free variable hits 0, and release it
            hit = np.flatnonzero(free & (trial <= 0))
            ratio = z[hit] / (z[hit] - trial[hit])
            k = hit[np.argmin(ratio)]
            z = z + np.min(ratio) * (trial - z)
            z[k] = 0.0
            free &= z > 0
            z[~free] = 0.0
        w = m.T @ (d - m @ z)


# ------------------------------------------------------------------------------------------------
# public API


def unmix(A, y, covariance, background=None, nonnegative: bool = False,
          rtol: float = RTOL) -> UnmixResult:
    """Weighted least-squares unmixing of N species from C channels.

    A           (C, N) detected signal of species s at unit abundance in channel c
                (electrons per pixel over the exposure).
    y           (C,) measured mean signal per channel over the target region (electrons per pixel).
    covariance  noise covariance of y (electrons^2): (C,) variances (independent channels) or a
                (C, C) symmetric positive definite matrix.
    background  (C,) background per channel (electrons per pixel), subtracted from y; None = 0.
    nonnegative constrain x >= 0 (Lawson-Hanson NNLS on the whitened problem).
    rtol        relative singular-value tolerance for rank deficiency (see ``RTOL``).

    Returns an ``UnmixResult``. Species that are not separable (zero column, or spectrum in the
    span of the others) are reported with NaN and a reason, not dropped or set to zero. The
    others are unmixed. Fewer channels than species is not an error: the species it leaves
    unidentifiable are reported as not separable.

    Raises ValueError, naming the argument, for shapes that disagree, non-finite values, or a
    covariance that is not symmetric positive definite.
    """
    a = _mixing(A)
    c, n = a.shape
    yy = _vector(y, c, "y", "channel")
    b = np.zeros(c) if background is None else _vector(background, c, "background", "channel")
    factor = _cholesky(covariance, c)
    if not isinstance(nonnegative, (bool, np.bool_)):
        raise ValueError(f"nonnegative: must be a bool, got {nonnegative!r}")
    dec = _decompose(_whiten(factor, a), _rtol(rtol))
    yw = _whiten(factor, yy - b)

    # unconstrained WLS in the normalised coordinates xt = norms * x, by the truncated SVD:
    # for separable species the value does not depend on the truncated (null) directions
    r = dec.rank
    v_r = dec.vt[:r].T
    xt = v_r @ ((dec.u[:, :r].T @ yw) / dec.sv[:r])
    cov_t = (v_r / dec.sv[:r] ** 2) @ v_r.T

    at_bound = np.zeros(n, dtype=bool)
    reason = list(dec.reason)
    if nonnegative:
        # all seen species take part, the confounded ones too: the fitted value A x is unique at
        # the optimum, and a separable x_s is a linear function of it, hence unique as well
        xt = _nnls(dec.an, yw)
        for k, s in enumerate(dec.seen):
            if dec.separable[s] and xt[k] == 0.0:
                at_bound[s] = True
                reason[s] = ("at the non-negativity bound: estimate 0, the Gaussian covariance "
                             "does not hold there (reported as NaN)")
    chi2 = float(np.sum((yw - dec.an @ xt) ** 2))

    abundance = np.full(n, np.nan)
    cov = np.full((n, n), np.nan)
    seen = dec.seen
    scale = dec.norms[seen]
    abundance[seen] = xt / scale
    cov[np.ix_(seen, seen)] = cov_t / np.outer(scale, scale)
    abundance[~dec.separable] = np.nan
    invalid = ~dec.separable | at_bound
    cov[invalid, :] = np.nan
    cov[:, invalid] = np.nan
    se = np.sqrt(np.diag(cov))
    with np.errstate(divide="ignore", invalid="ignore"):
        cnr = abundance / se
    return UnmixResult(abundance=abundance, covariance=cov, standard_error=se, cnr=cnr,
                       separable=dec.separable.copy(), at_bound=at_bound, reason=tuple(reason),
                       rank=r, chi2=chi2, dof=c - r, nonnegative=bool(nonnegative))


def crosstalk(A) -> np.ndarray:
    """(C, N) share of each species' detected signal that lands in each channel:
    A[c, s] / sum_c A[c, s]. Columns sum to 1; the diagonal-like entries are each channel's
    intended species, the rest is crosstalk. A column is NaN for a species no channel sees.

    A  (C, N) detected signal at unit abundance (electrons per pixel), must be >= 0 (a fraction
       of detected signal has no meaning otherwise).
    """
    a = _mixing(A)
    if np.any(a < 0):
        raise ValueError("A: must be non-negative (detected signal) for crosstalk fractions")
    total = a.sum(axis=0)
    out = np.full(a.shape, np.nan)
    seen = total > 0
    out[:, seen] = a[:, seen] / total[seen]
    return out


def condition_number(A, covariance=None, rtol: float = RTOL) -> float:
    """2-norm condition number of the whitened (L^-1 A, L L^T = covariance; no whitening when
    covariance is None), column-normalised mixing matrix: largest / smallest singular value.

    It is 1 for channels that each see only one species, and it grows as the whitened spectra
    overlap. It depends neither on species brightness (the columns are normalised) nor on the
    units. It is inf when the matrix is rank-deficient within ``rtol``: a zero column, fewer
    channels than species, or a spectrum in the span of others. This is the same test that
    ``unmix`` uses to declare species not separable.
    """
    a = _mixing(A)
    c, n = a.shape
    aw = a if covariance is None else _whiten(_cholesky(covariance, c), a)
    tol = _rtol(rtol)
    norms = np.sqrt(np.sum(aw * aw, axis=0))
    if c < n or np.any(norms == 0):
        return float("inf")
    sv = np.linalg.svd(aw / norms, compute_uv=False)
    if sv[-1] <= tol * sv[0]:
        return float("inf")
    return float(sv[0] / sv[-1])


def simulate(A, x, background, covariance, rng=None, size=None) -> np.ndarray:
    """Noisy channel means y = A x + background + noise, noise ~ Normal(0, covariance).

    A           (C, N) signal per unit abundance (electrons per pixel).
    x           (N,) true abundances (1 = nominal concentration).
    background  (C,) background per channel (electrons per pixel), or None for 0.
    covariance  (C,) variances or (C, C) covariance of the noise (electrons^2).
    rng         numpy Generator, or a seed for ``numpy.random.default_rng``.
    size        None: one realisation, shape (C,); an int K: K independent ones, shape (K, C).

    The noise is Gaussian with the given covariance: the model ``unmix`` assumes. Shot noise is
    Poisson, so this helper stands in for it only at the counts where the Gaussian limit holds.
    """
    a = _mixing(A)
    c, n = a.shape
    xx = _vector(x, n, "x", "species")
    b = np.zeros(c) if background is None else _vector(background, c, "background", "channel")
    factor = _cholesky(covariance, c)
    if size is not None and (not isinstance(size, (int, np.integer)) or size < 0):
        raise ValueError(f"size: must be None or a non-negative int, got {size!r}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    z = gen.standard_normal((c,) if size is None else (int(size), c))
    noise = z * factor if factor.ndim == 1 else z @ factor.T
    return a @ xx + b + noise
