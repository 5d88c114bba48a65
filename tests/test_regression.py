"""Regression against stored truth: a small depth study (tests/regression/small_study/config.toml)
run now must match the per-pixel mean images and metrics stored in its truth.npz.

The truth holds, over TRUTH_RUNS independent runs (seeds TRUTH_SEED0, TRUTH_SEED0 + 1, ...), the mean
and the run-to-run variance of every pixel of every image (QD signal and background, per probe and
depth) and of every scalar (image totals and target metrics), and the covariance of the image totals.
The test makes FRESH_RUNS runs with other seeds and compares their means with the truth's:

* per pixel (Mitsuba-style z-test): z = (fresh - truth) / sqrt(var (1/K + 1/R)); at least 99 % of
  the resolved pixels within |z| < 4 and none beyond 6 (resolved: a K-run mean good to 50 %, where a
  pixel's sum of detections is near-Gaussian);
* per scalar: |z| below the Sidak-corrected bound for a family false-alarm rate of 1e-3;
* the image totals together: Hotelling's T^2 with the truth's covariance, at 1e-3. Signals of one
  depth share its excitation run, so their noise is correlated; T^2 uses that and sees changes that
  move probes or depths differently, which a 5 % change of one tissue's scattering does.

Sensitivity, measured on PoCL by scaling the dermis' reduced scattering coefficient (all else equal):
with FRESH_RUNS = 4 (fast suite) x 1.15 fails 3 of 3 seed sets (total signal at 2 mm: z = -4.4 to
-7.8, Hotelling F = 6.6 to 12 against 3.55), x 1.05 passes (z ~ -2); with POWER_RUNS = 32
(``-m slow``) x 1.05 fails 2 of 2 (z = -4.3 to -5.4, F = 5.4 and 6.7). Unchanged code passed every
set tried (worst pixel |z| 4.0, worst scalar |z| 2.2). The per-pixel test is for local errors (a
shifted or flipped image, a wrong pixel mapping), which move some pixels by many standard errors.

The stored truth is regenerated only on purpose: ``pytest tests/test_regression.py --update`` (on the
first kernel backend present; the file records backend, device and commit). NumPy is not compared:
one run of this study takes it minutes.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from photonqd.backends import available, discover
from photonqd.study import parse_config, run_study

HERE = Path(__file__).parent / "regression" / "small_study"
TRUTH_RUNS, TRUTH_SEED0 = 128, 1001
FRESH_RUNS, FRESH_SEED0 = 4, 1          # the fast suite: ~10 s on PoCL
POWER_RUNS, POWER_SEED0 = 32, 101       # -m slow: ~1.5 min on PoCL
FAMILY_ALPHA = 1e-3
METRICS = ("sbr", "contrast", "cnr", "snr", "signal_target_e", "background_target_e")
SCALARS = ("signal_total_e", "background_total_e") + METRICS


def config():
    cfg = parse_config((HERE / "config.toml").read_text())
    cfg.method = "forward"     # the truth is the forward path's (the adjoint study is checked against it)
    return cfg


def runs(backend, seeds):
    """Images (runs, images, 2 [signal, background], nx, ny), scalars (runs, images, SCALARS) and the
    (probe, depth) of each image, one study per seed."""
    cfg = config()
    images, scalars, labels = [], [], None
    for seed in seeds:
        cfg.seed = int(seed)
        result = run_study(cfg, backend)
        order = sorted(result.images, key=lambda i: (i.depth_mm, i.probe))
        labels = [(i.probe, i.depth_mm) for i in order]
        images.append([np.stack([i.signal_e, i.background_e]) for i in order])
        scalars.append([[i.signal_e.sum(), i.background_e.sum()] + [getattr(i.metrics, m) for m in METRICS]
                        for i in order])
    return np.array(images, dtype=np.float64), np.array(scalars, dtype=np.float64), labels


def totals(scalars):
    """The image totals (signal and background of every image) as one vector per run."""
    return scalars[..., :2].reshape(scalars.shape[0], -1)


def pixel_z(fresh, mean, var, k, r):
    """z of each pixel's K-run mean against the R-run truth; NaN where the pixel is not resolved."""
    se_fresh = np.sqrt(var / k)
    resolved = (mean > 0) & (var > 0) & (se_fresh < 0.5 * mean)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (fresh - mean) / np.sqrt(var * (1 / k + 1 / r))
    return np.where(resolved, z, np.nan)


def hotelling_f(fresh_vector, mean, cov, k, r):
    """Hotelling's T^2 of a K-run mean vector against the R-run truth, as its F statistic
    (p, R - p degrees of freedom)."""
    p = mean.size
    d = fresh_vector - mean
    t2 = float(d @ np.linalg.solve(cov, d)) / (1 / k + 1 / r)
    return t2 * (r - p) / (p * (r - 1)), (p, r - p)


def sidak_z(m, alpha=FAMILY_ALPHA):
    """Two-sided |z| bound such that m independent tests together false-alarm at ``alpha``."""
    from scipy.stats import norm

    return float(norm.isf((1 - (1 - alpha) ** (1 / m)) / 2))


def compare(truth, images, scalars):
    """Everything that differs from the truth beyond chance, as messages (empty: it matches)."""
    from scipy.stats import f as f_dist

    k, r = images.shape[0], int(truth["runs"])
    failures = []
    z = pixel_z(images.mean(axis=0), truth["image_mean"], truth["image_var"], k, r)
    tested = z[~np.isnan(z)]
    outside, worst = np.mean(np.abs(tested) >= 4), np.max(np.abs(tested))
    if outside > 0.01 or worst > 6:
        failures.append(f"pixels: {outside:.1%} of {tested.size} beyond |z| = 4 (allowed 1 %), worst |z| = {worst:.1f}")
    labels = [tuple(x) for x in truth["labels"]]
    mean, var = truth["scalar_mean"], truth["scalar_var"]
    finite = np.isfinite(mean) & (var > 0)
    bound = sidak_z(int(finite.sum()))
    with np.errstate(invalid="ignore", divide="ignore"):
        zs = (scalars.mean(axis=0) - mean) / np.sqrt(var * (1 / k + 1 / r))
    for i, j in zip(*np.nonzero(finite & ~(np.abs(zs) < bound))):
        failures.append(f"{SCALARS[j]} of {labels[i][0]} at {float(labels[i][1])} mm: "
                        f"{scalars[:, i, j].mean():.6g}, truth {mean[i, j]:.6g} (z = {zs[i, j]:+.1f}, bound {bound:.1f})")
    f_value, dof = hotelling_f(totals(scalars).mean(axis=0), truth["totals_mean"], truth["totals_cov"], k, r)
    f_crit = float(f_dist.isf(FAMILY_ALPHA, *dof))
    if not f_value < f_crit:
        failures.append(f"image totals together: Hotelling F = {f_value:.1f} > {f_crit:.1f} (F{dof}, p = {FAMILY_ALPHA})")
    return failures


def device_of(backend):
    return next((i.device for i in discover() if i.backend == backend and i.device), "unknown")


def write_truth(backend, path=HERE / "truth.npz"):
    seeds = np.arange(TRUTH_SEED0, TRUTH_SEED0 + TRUTH_RUNS)
    images, scalars, labels = runs(backend, seeds)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    t = totals(scalars)
    np.savez_compressed(
        path, backend=backend, device=device_of(backend), commit=commit,
        config=(HERE / "config.toml").read_text(), runs=TRUTH_RUNS, seeds=seeds,
        labels=np.array([(p, str(d)) for p, d in labels]), scalar_names=np.array(SCALARS),
        image_mean=images.mean(axis=0), image_var=images.var(axis=0, ddof=1),
        scalar_mean=scalars.mean(axis=0), scalar_var=scalars.var(axis=0, ddof=1),
        totals_mean=t.mean(axis=0), totals_cov=np.cov(t, rowvar=False))
    return images, scalars


def load_truth(path=HERE / "truth.npz"):
    truth = dict(np.load(path, allow_pickle=False))
    assert str(truth["config"]) == (HERE / "config.toml").read_text(), \
        "config.toml changed since truth.npz was written: regenerate it with --update"
    return truth


def check_against_truth(backend, seeds):
    truth = load_truth()
    images, scalars, labels = runs(backend, seeds)
    assert [(p, str(d)) for p, d in labels] == [tuple(x) for x in truth["labels"]]
    failures = compare(truth, images, scalars)
    assert not failures, (f"{backend} vs truth from {truth['backend']} ({truth['device']}, "
                          f"commit {str(truth['commit'])[:10]}):\n" + "\n".join(failures))



def test_small_study_matches_stored_truth(fast_backend, update_truth):
    if update_truth:
        first = [b for b in available() if b != "numpy"][0]
        if fast_backend != first:
            pytest.skip(f"truth is written once, on {first}")
        write_truth(fast_backend)
        pytest.skip(f"truth regenerated on {fast_backend}: review and commit {HERE / 'truth.npz'}")
    check_against_truth(fast_backend, range(FRESH_SEED0, FRESH_SEED0 + FRESH_RUNS))


@pytest.mark.slow
def test_small_study_matches_stored_truth_at_power(fast_backend, update_truth):
    """Eight times the fresh runs: here a 5 % change of the dermis' scattering fails (module docstring)."""
    if update_truth:
        pytest.skip("--update writes the truth in test_small_study_matches_stored_truth")
    check_against_truth(fast_backend, range(POWER_SEED0, POWER_SEED0 + POWER_RUNS))


def test_the_comparison_rejects_a_shifted_study():
    """The rule itself: the stored truth's own mean passes; every image scaled by 1.1, or one
    pixel raised by 8 standard errors, fails."""
    truth = load_truth()
    k, r = FRESH_RUNS, int(truth["runs"])
    images = np.repeat(truth["image_mean"][None], k, axis=0)
    scalars = np.repeat(truth["scalar_mean"][None], k, axis=0)
    assert compare(truth, images, scalars) == []
    assert any("pixels" in f or "total" in f for f in compare(truth, 1.1 * images, 1.1 * scalars))
    z = pixel_z(truth["image_mean"], truth["image_mean"], truth["image_var"], k, r)
    idx = np.unravel_index(np.nanargmax(np.where(np.isnan(z), -1, truth["image_mean"])), z.shape)
    bumped = images.copy()
    bumped[(slice(None),) + idx] += 8 * math.sqrt(truth["image_var"][idx] * (1 / k + 1 / r))
    assert any(f.startswith("pixels") for f in compare(truth, bumped, scalars))
