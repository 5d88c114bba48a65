"""How the study's answer moves across its uncertain terms (photonqd.sensitivity, study --sensitivity)."""

import math

import pytest

from photonqd import sensitivity
from photonqd.cli import main
from photonqd.decision import DepthLimit
from photonqd.io import load_sensitivity
from photonqd.sensitivity import FACTORS, Factor, format_sensitivity, limit_ratio, run_sensitivity, vary
from photonqd.study import run_study

from test_adjoint_study import SMALL, small

BORN = ("seed = 4", 'seed = 4\ncorrection = "none"')


def test_vary_sets_one_factor_absolutely_or_relative_to_the_study():
    cfg = small()
    by_key = {f.key: f for f in FACTORS}
    assert vary(cfg, by_key["background.clutter"], 0.03).background.clutter == 0.03
    na = vary(cfg, by_key["camera.numerical_aperture"], 2.0)
    assert na.camera.numerical_aperture == 2 * cfg.camera.numerical_aperture
    dose = vary(cfg, by_key["probe.concentration_uM"], 3.0)
    assert [p.concentration_uM for p in dose.probes] == pytest.approx([0.3, 0.3])
    tbr = vary(cfg, by_key["probe.target_to_background"], 10.0)
    assert [p.target_to_background for p in tbr.probes] == [10.0, 10.0]
    assert cfg.background.clutter == 0.01 and cfg.probes[0].concentration_uM == 0.1     # the study is not changed


def test_limit_ratio_reads_bounds_and_undecided_limits():
    crossing, beyond = DepthLimit(8.0, 7.5, 8.5, "crossing"), DepthLimit(12.0, 12.0, math.inf, "beyond")
    assert limit_ratio(DepthLimit(12.0, 11.0, 13.0, "crossing"), crossing) == (1.5, "=")
    assert limit_ratio(beyond, crossing) == (1.5, ">=")
    assert limit_ratio(crossing, beyond)[1] == "<="
    assert limit_ratio(DepthLimit(math.nan, math.nan, math.nan, "unresolved"), crossing)[1] == "?"


def test_clutter_and_uptake_move_the_limits_the_way_physics_says(fast_backend):
    """More clutter or more uptake outside the target: no probe reaches deeper. Clutter variants reuse
    the study's field runs (no transport); uptake variants run their own."""
    cfg = small(replace=[BORN, ("depths_mm = {from = 1.0, to = 2.0, step = 0.5}",
                                "depths_mm = {from = 1.0, to = 6.0, step = 1.0}")])
    base = run_study(cfg, fast_backend)
    seconds = dict(base.fields.seconds)
    factors = [f for f in FACTORS if f.key in ("background.clutter", "probe.target_to_background")]
    variants = run_sensitivity(base, fast_backend, factors=factors)
    assert base.fields.seconds == seconds            # clutter: the study's own fields, not extended
    assert [(v.factor, v.value) for v in variants] == [("clutter", 0.003), ("clutter", 0.03),
                                                       ("tumour-to-background", 2.0), ("tumour-to-background", 10.0)]
    for probe in ("NIR-I", "NIR-II"):
        def depth(v):
            return v.limits[probe].estimate
        assert depth(variants[1]) <= depth(variants[0])        # clutter 3 % vs 0.3 %
        assert depth(variants[2]) <= depth(variants[3])        # TBR 2 vs 10
    table = format_sensitivity(base, variants)
    assert "tumour-to-background" in table and "NIR-II/NIR-I" in table


def test_cli_sensitivity_prints_saves_and_plots(fast_backend, tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(sensitivity, "FACTORS", (Factor("clutter", "background.clutter", 0.003, 0.03, False, "test"),))
    config = tmp_path / "small.toml"
    config.write_text(SMALL.replace(*BORN))
    out = tmp_path / "r.h5"
    assert main(["study", str(config), "-o", str(out), "--backend", fast_backend, "--sensitivity",
                 "--plots", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "sensitivity: depth limits" in printed and (tmp_path / "plots" / "sensitivity.png").is_file()
    records = load_sensitivity(out)
    assert [r["value"] for r in records] == [0.003, 0.03]
    assert main(["show", str(out)]) == 0
    assert "sensitivity: depth limits" in capsys.readouterr().out
