"""Validation cases on every backend present, the pass rule's power, and the runner's command line.

Fast suite: the fast subset of cases on every backend, at the full photon count on kernel backends
and an eighth of it on NumPy (~6 s). ``-m slow`` (CI's second step): every other case at its full
count on kernel backends, the fast subset at full count on NumPy, and the proof that at full count
the rule catches a 2 % error in every case.
"""

import argparse
import dataclasses
import functools

import pytest

from photonqd.backends import available
from photonqd.validation import cases, runner
from photonqd.validation.cases import ADDING_DOUBLING, CASES, Check, by_name
from photonqd.validation.comparison import Z_MAX

KERNEL_BACKENDS = [b for b in available() if b != "numpy"]


@functools.lru_cache(maxsize=None)
def outcomes(backend, name, photons):
    """Outcomes of one case on one backend, run once and shared by the tests below."""
    result_outcomes, _ = runner.run_case(by_name([name])[0], backend, photons=photons)
    return result_outcomes


def failures(backend, name, photons):
    return [f"{o.check.quantity} = {o.value:.6f} ± {o.error:.1e}, reference {o.check.reference:.6f}"
            f" ± {o.check.tolerance:.1e} ({o.deviation:+.1f} σ)" for o in outcomes(backend, name, photons)
            if not o.passed]


FAST = [pytest.param(b, c.name, id=f"{b}-{c.name}") for b in available() for c in CASES if c.fast]
# at full count: what the fast suite does not already run at full count
FULL = [pytest.param(b, c.name, id=f"{b}-{c.name}") for b in available() for c in CASES
        if (c.fast if b == "numpy" else not c.fast)]


@pytest.mark.parametrize("backend,name", FAST)
def test_case_matches_reference(backend, name, budget):
    photons = by_name([name])[0].photons
    n = budget(kernel=photons, numpy=photons // 8)
    failed = failures(backend, name, n)
    assert not failed, f"{name} on {backend} ({n} photons): " + "; ".join(failed)


@pytest.mark.slow
@pytest.mark.parametrize("backend,name", FULL)
def test_case_matches_reference_at_full_count(backend, name):
    n = by_name([name])[0].photons
    failed = failures(backend, name, n)
    assert not failed, f"{name} on {backend} ({n} photons): " + "; ".join(failed)


@pytest.mark.slow
@pytest.mark.skipif(not KERNEL_BACKENDS, reason="no OpenCL/CUDA: full photon counts too slow on NumPy")
@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_full_count_catches_a_two_percent_error(name):
    """At the full photon count, the same run biased by ±2 % must fail its check."""
    for o in outcomes(KERNEL_BACKENDS[0], name, by_name([name])[0].photons):
        for bias in (0.98, 1.02):
            biased = dataclasses.replace(o, value=o.value * bias)
            assert not biased.passed, (f"{name} {o.check.quantity}: a {bias - 1:+.0%} error passes "
                                       f"(σ = {o.sigma:.1e}, {Z_MAX:g} σ = {Z_MAX * o.sigma:.1e})")


@pytest.mark.parametrize("row", ADDING_DOUBLING, ids=[row[0] for row in ADDING_DOUBLING])
def test_stored_adding_doubling_values(row):
    """The stored references are what iadpython computes for the case's slab."""
    pytest.importorskip("iadpython")
    from photonqd.validation.adding_doubling import total_rt

    name, albedo, b, g, n, r_stored, t_stored, _ = row
    case = by_name([name])[0]
    mua, mus, g_case, n_case = case.scene.tissues[1].row
    assert mus / (mua + mus) == pytest.approx(albedo)
    assert (mua + mus) * case.scene.voxel_size[2] == pytest.approx(b)
    assert (g_case, n_case) == (g, n)
    for stored, computed in zip((r_stored, t_stored), total_rt(albedo, b, g, n)):
        assert stored == pytest.approx(computed, abs=1e-6)


@pytest.mark.parametrize("name,quantity,albedo,b,g,n", [
    ("vdhulst_slab", "Rd", 0.9, 2.0, 0.75, 1.0),
    ("vdhulst_slab", "T", 0.9, 2.0, 0.75, 1.0),
    ("giovanelli_semi_infinite", "R", 0.9, 1000.0, 0.0, 1.5),
])
def test_adding_doubling_reproduces_published_values(name, quantity, albedo, b, g, n):
    """Like with like: iadpython's UR1/UT1 equal the published totals (n = 1: R = Rd)."""
    pytest.importorskip("iadpython")
    from photonqd.validation.adding_doubling import total_rt

    (r, r_tol), (t, t_tol) = total_rt(albedo, b, g, n)
    check = next(c for c in by_name([name])[0].checks if c.quantity == quantity)
    value, tol = (t, t_tol) if quantity == "T" else (r, r_tol)
    assert abs(value - check.reference) <= Z_MAX * (tol**2 + check.tolerance**2) ** 0.5


def _args(**kw):
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args([])
    for key, value in kw.items():
        setattr(args, key, value)
    return args


def test_cli_passes_and_prints_the_table(capsys):
    code = runner.run_cli(_args(backend="numpy", cases=["beer_lambert_normal"], photons=100))
    out = capsys.readouterr().out
    assert code == 0
    assert "beer_lambert_normal" in out and "pass" in out and "2/2 checks passed" in out


def test_cli_exits_nonzero_on_a_failed_check(monkeypatch, capsys):
    wrong = dataclasses.replace(by_name(["beer_lambert_normal"])[0], checks=(Check("T", 0.5, 1e-6),))
    monkeypatch.setattr(cases, "CASES", (wrong,))
    assert runner.run_cli(_args(backend="numpy", photons=100)) == 1
    assert "FAIL" in capsys.readouterr().out


def test_cli_arguments():
    parser = argparse.ArgumentParser()
    runner.add_arguments(parser)
    args = parser.parse_args(["--case", "a", "b", "--case", "c", "--backend", "numpy", "--fast"])
    assert args.cases == ["a", "b", "c"] and args.backend == "numpy" and args.fast
    with pytest.raises(SystemExit):
        parser.parse_args(["--photons", "10", "--scale", "0.1"])


def test_list_and_unknown_case(capsys):
    assert runner.run_cli(_args(list=True)) == 0
    out = capsys.readouterr().out
    assert all(c.name in out for c in CASES) and "Table 6.1" in out
    with pytest.raises(ValueError, match="unknown validation case"):
        runner.run_cli(_args(cases=["no_such_case"]))
