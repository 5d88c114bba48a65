"""`photonqd bench` end to end on tiny photon counts. Speed is never asserted here."""

import importlib.util
import json
import math
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from photonqd import bench
from photonqd.cli import main


def run_bench(capsys, *argv) -> tuple[int, dict]:
    status = main(["bench", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_numpy_run_produces_a_complete_json_report(capsys, tmp_path):
    status, report = run_bench(capsys, "cube60", "cubesph60b", "--backend", "numpy", "--repeat", "2",
                               "--numpy-photons", "60", "--no-pmcxcl", "--save", str(tmp_path))
    assert status == 0
    assert report["filetype"] == "photonqd bench"
    assert report["photons"] == {"numpy": 60} and report["repeat"] == 2
    for key in ("date", "git_commit", "git_dirty", "kernel_sha256", "host", "cpu", "devices", "seed"):
        assert key in report
    assert report["cpu"]["logical_cores"] >= 1
    assert (report["cpu"]["clock_mhz"] is None) == (report["cpu"]["clock_source"] is None)
    rows = report["results"]
    assert [(r["case"], r["engine"], r["backend"]) for r in rows] == [
        ("cube60", "photonqd", "numpy"), ("cubesph60b", "photonqd", "numpy")]
    for r in rows:
        assert r["photons"] == 60 and r["device"]
        for key in ("seconds", "photons_per_ms", "interactions_per_s", "absorbed_fraction", "absorbed_error",
                    "photons_per_ms_min", "photons_per_ms_median", "photons_per_ms_max", "spread",
                    "loop_iterations_per_photon"):
            assert math.isfinite(r[key]) and r[key] >= 0
        assert 0 < r["absorbed_fraction"] < 1
        # every round is kept; the best is the fastest of them
        assert len(r["rounds_seconds"]) == len(r["rounds_photons_per_ms"]) == 2
        assert r["seconds"] == min(r["rounds_seconds"]) and r["photons_per_ms"] == max(r["rounds_photons_per_ms"])
        assert r["interactions_per_s"] == pytest.approx(r["interactions_per_photon"] * 60 / r["seconds"])
        assert r["cores_used"] == 1
        if report["cpu"]["clock_mhz"]:
            assert r["cycles_per_iteration"] == pytest.approx(
                report["cpu"]["clock_mhz"] * 1e6 * r["seconds"] / (r["loop_iterations_per_photon"] * 60))
    # cube60 has a published absorbed fraction to check against
    (check,) = report["checks"]
    assert check["case"] == "cube60" and check["reference"] == 0.1769
    saved = list(tmp_path.glob("*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == report


def test_numpy_photons_never_exceed_the_requested_count(capsys):
    status, report = run_bench(capsys, "cube60b", "--backend", "numpy", "--photons", "20", "--no-pmcxcl")
    assert status == 0 and report["results"][0]["photons"] == 20


def test_text_report_names_every_case(capsys):
    assert main(["bench", "spherebox", "--backend", "numpy", "--numpy-photons", "20", "--no-pmcxcl"]) == 0
    out = capsys.readouterr().out
    for text in ("spherebox", "photons/ms", "spread", "interact/s", "cyc/iter", "CPU ", "loop iterations"):
        assert text in out


def test_tissue60_is_a_default_case():
    assert "tissue60" in bench.DEFAULT_CASES and "tissue60" in bench.BENCHMARKS


class FakeEngines:
    """Stand-ins for photonqd's backend and the pmcxcl process: fixed times per call, and a log
    of the calls in the order they were made."""

    def __init__(self, ours, theirs, steps):
        self.ours, self.theirs, self.steps, self.calls = list(ours), list(theirs), steps, []

    def photonqd(self, phantom, backend, photons, seed):
        if photons == bench._warmup(1000):
            return None   # the untimed warm-up
        self.calls.append((phantom.name, "photonqd"))
        result = SimpleNamespace(photons=photons, backend="opencl", device="PoCL / cpu", interactions=100.0,
                                 absorbed_fraction=0.2, extra={"transport_seconds": self.ours.pop(0)})
        if self.steps is not None:
            result.steps = self.steps
        return result

    def mcxcl(self, case, photons, seed):
        self.calls.append((case, "pmcxcl"))
        return {"case": case, "engine": "pmcxcl", "backend": "opencl", "device": "cpu", "photons": photons,
                "seconds": self.theirs.pop(0), "absorbed_fraction": 0.2, "interactions_per_s": None}


@pytest.mark.parametrize("steps", [120.0, None])
def test_rounds_interleave_the_engines_and_report_every_round(monkeypatch, steps):
    fake = FakeEngines(ours=[0.5, 0.4, 0.6], theirs=[1.0, 0.8, 1.25], steps=steps)
    monkeypatch.setattr(bench, "get_backend",
                        lambda name: SimpleNamespace(is_gpu=False, dev=SimpleNamespace(max_compute_units=4)))
    monkeypatch.setattr(bench, "_probe_mcxcl", lambda: {"engine": "pmcxcl", "version": "0", "device": "cpu"})
    monkeypatch.setattr(bench, "_photonqd_run", fake.photonqd)
    monkeypatch.setattr(bench, "_mcxcl_run", fake.mcxcl)
    monkeypatch.setattr(bench, "_cpu", lambda: {"model": "test", "logical_cores": 4, "cores_available": 4,
                                                "clock_mhz": 2000.0, "clock_source": "test"})
    report = bench.run_benchmark(["cube60"], ["opencl"], 1000, 1000, seed=1, repeat=3)
    # photonqd and pmcxcl take turns going first, round by round
    assert fake.calls == [("cube60", e) for e in ("photonqd", "pmcxcl", "pmcxcl", "photonqd", "photonqd", "pmcxcl")]
    assert [(s["round"], s["engine"]) for s in report["schedule"]] == [
        (0, "photonqd"), (0, "pmcxcl"), (1, "pmcxcl"), (1, "photonqd"), (2, "photonqd"), (2, "pmcxcl")]
    ours, theirs = report["results"]
    assert ours["rounds_photons_per_ms"] == pytest.approx([2.0, 2.5, 1000 / 600])
    assert (ours["photons_per_ms"], ours["photons_per_ms_median"], ours["seconds"]) == pytest.approx((2.5, 2.0, 0.4))
    assert ours["spread"] == pytest.approx((2.5 - 1000 / 600) / 2.0)
    assert theirs["rounds_photons_per_ms"] == pytest.approx([1.0, 1.25, 0.8])
    assert theirs["spread"] == pytest.approx((1.25 - 0.8) / 1.0)
    iterations = 100.0 if steps is None else steps
    assert ours["loop_iterations_per_photon"] == theirs["loop_iterations_per_photon"] == iterations
    assert ("steps absent" in ours["loop_iterations_source"]) == (steps is None)
    assert ours["cores_used"] == theirs["cores_used"] == 4
    assert ours["cycles_per_iteration"] == pytest.approx(2e9 * 4 * 0.4 / (iterations * 1000))
    assert theirs["cycles_per_iteration"] == pytest.approx(2e9 * 4 * 0.8 / (iterations * 1000))
    # MCX counts no scattering events: pmcxcl's interactions/s uses photonqd's count on the same problem
    assert theirs["interactions_per_s"] == pytest.approx(100.0 * 1000 / 0.8)
    assert "photonqd" in theirs["interactions_source"]
    check = report["checks"][-1]
    assert check["ratio"] == pytest.approx(2.0) and check["ratio_median"] == pytest.approx(2.0)
    assert "spread" in bench.format_report(report)


def test_cpu_clock_prefers_the_maximum(monkeypatch, tmp_path):
    max_freq = tmp_path / "cpuinfo_max_freq"
    max_freq.write_text("3500000\n")   # kHz
    monkeypatch.setattr(bench, "CPUFREQ_MAX", max_freq)
    cpu = bench._cpu()
    assert cpu["clock_mhz"] == 3500.0 and "max" in cpu["clock_source"]
    monkeypatch.setattr(bench, "CPUFREQ_MAX", tmp_path / "absent")
    assert str(tmp_path) not in (bench._cpu()["clock_source"] or "")   # falls back to another source


def load_mcxcl_script():
    spec = importlib.util.spec_from_file_location("bench_mcxcl", bench.MCXCL_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_pmcxcl_gets_the_same_tissue60_problem():
    """MCX input built from photonqd's phantom (pmcxcl itself is not needed to build it)."""
    cfg = load_mcxcl_script().mcx_input(bench.BENCHMARKS["tissue60"](), 1000, bench.MCX_SEED)
    assert cfg["vol"].shape == (60, 60, 60) and np.all(cfg["vol"] == 1) and cfg["unitinmm"] == 1.0
    np.testing.assert_allclose(cfg["prop"], [[0, 0, 1, 1.0], [0.01, 10.0, 0.9, 1.37]])
    assert cfg["isreflect"] == 1 and cfg["isspecular"] == 0
    # measured from the volume's corner in voxels, as photonqd's (29, 29, 0) mm
    assert cfg["issrcfrom0"] == 1 and cfg["srcpos"] == [29.0, 29.0, 0.0] and cfg["srcdir"] == [0.0, 0.0, 1.0]
    assert cfg["tstart"] == 0.0 and cfg["tend"] == cfg["tstep"] == pytest.approx(5e-9)
    assert (cfg["nphoton"], cfg["seed"]) == (1000, bench.MCX_SEED)
    # the same as cube60b but for the medium
    cube = load_mcxcl_script().mcx_input(bench.BENCHMARKS["cube60b"](), 1000, bench.MCX_SEED)
    assert {k: v for k, v in cfg.items() if k not in ("prop", "vol")} == \
        {k: v for k, v in cube.items() if k not in ("prop", "vol")}


def test_unknown_case_is_an_error(capsys):
    assert main(["bench", "cube61", "--backend", "numpy"]) == 2
    assert "unknown case" in capsys.readouterr().err


def test_disagreeing_absorption_withholds_the_speed_ratio():
    ours = {"case": "cube60", "device": "PoCL / cpu", "photons_per_ms": 200.0,
            "absorbed_fraction": 0.1769, "absorbed_error": 0.0004}
    theirs = {"device": "cpu", "photons_per_ms": 100.0, "absorbed_fraction": 0.1869, "absorbed_error": 0.0004}
    check = bench._compare(ours, theirs)
    assert not check["agree"] and check["ratio"] is None and "no speed ratio" in check["note"]
    theirs["absorbed_fraction"] = 0.1770
    check = bench._compare(ours, theirs)
    assert check["agree"] and check["ratio"] == 2.0
    theirs["device"] = "some GPU"
    assert bench._compare(ours, theirs)["ratio"] is None


def pmcxcl_runs() -> bool:
    return "reason" not in bench._probe_mcxcl()


@pytest.mark.skipif("opencl" not in bench.available() or not pmcxcl_runs(),
                    reason="needs the OpenCL backend and pmcxcl")
def test_pmcxcl_peer_runs_beside_opencl(capsys):
    status, report = run_bench(capsys, "cube60", "--backend", "opencl", "--photons", "2000")
    engines = [r["engine"] for r in report["results"]]
    assert engines == ["photonqd", "pmcxcl"]
    peer = report["results"][1]
    assert peer["photons"] == 2000 and 0 < peer["absorbed_fraction"] < 1
    # its absorption is integrated from the fluence volume; MCX's own figure should match it
    assert peer["absorbed_fraction"] == pytest.approx(peer["absorbed_fraction_mcx"], rel=1e-4)
    assert [c["check"] for c in report["checks"]] == [
        "photonqd opencl vs published absorbed fraction", "photonqd opencl vs pmcxcl absorbed fraction"]


@pytest.mark.skipif("opencl" not in bench.available() or not pmcxcl_runs(),
                    reason="needs the OpenCL backend and pmcxcl")
def test_tissue60_absorption_agrees_with_pmcxcl(capsys):
    status, report = run_bench(capsys, "tissue60", "--backend", "opencl", "--photons", "2000")
    assert status == 0
    ours, theirs = report["results"]
    assert (ours["engine"], theirs["engine"]) == ("photonqd", "pmcxcl")
    (check,) = report["checks"]
    assert check["agree"] and check["ratio"] is not None
    # tissue-like: hundreds of scattering events per photon, several times cube60's ~80
    assert ours["interactions_per_photon"] > 500
    assert theirs["interactions_per_photon"] == ours["interactions_per_photon"]


def test_package_never_imports_pmcxcl():
    code = "import photonqd, photonqd.bench, photonqd.phantom, photonqd.cli, sys; print('pmcxcl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_fluorescence_overhead_is_reported():
    """--fluorescence times excitation alone and excitation + emission on the skin tumour scene."""
    from photonqd.bench import _time_fluorescence

    out = _time_fluorescence("numpy", 20, seed=1, repeat=1)
    assert out["backend"] == "numpy" and out["photons"] == 20
    assert out["full_seconds"] > out["excitation_seconds"] > 0
    assert out["overhead_ratio"] == pytest.approx(out["full_seconds"] / out["excitation_seconds"])


def saved_reports(capsys, tmp_path, figures: dict) -> list:
    """A real saved numpy report copied once per (name: (photons/ms, kernel, rounds)), figures set."""
    status, template = run_bench(capsys, "cube60", "--backend", "numpy", "--numpy-photons", "20", "--no-pmcxcl")
    assert status == 0
    paths = []
    for i, (name, (rate, kernel, rounds)) in enumerate(figures.items()):
        report = json.loads(json.dumps(template))
        report.update(date=f"2026-12-0{i + 1}T00:00:00Z", kernel_sha256=kernel, repeat=rounds)
        report["results"][0].update(photons_per_ms=rate, backend="opencl")   # pmcxcl's ratio is OpenCL's
        report["checks"] = [{"case": "cube60", "check": "photonqd opencl vs pmcxcl", "agree": True,
                             "ratio": rate / 50.0}]
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    return paths


def test_history_groups_runs_of_the_same_code_and_rounds(capsys, tmp_path):
    paths = saved_reports(capsys, tmp_path, {"a": (100.0, "k1", 5), "b": (110.0, "k1", 5), "c": (90.0, "k1", 5),
                                             "d": (500.0, "k2", 5), "e": (300.0, "k1", 3)})
    (tmp_path / "study.json").write_text(json.dumps({"what": "default depth study"}))
    assert main(["bench", "--json", "--history", *map(str, paths), str(tmp_path / "study.json")]) == 0
    rows = json.loads(capsys.readouterr().out)
    by = {(r["code"], r["rounds"]): r for r in rows}
    assert set(by) == {("k1", 5), ("k2", 5), ("k1", 3)}
    same = by["k1", 5]
    assert [run["photons_per_ms"] for run in same["runs"]] == [100.0, 110.0, 90.0]   # in date order
    assert same["median"] == 100.0
    assert same["spread"] == pytest.approx(0.2) and same["within"] == pytest.approx(0.1)
    assert by["k2", 5]["spread"] == 0 and len(by["k2", 5]["runs"]) == 1
    # the text table: one line per group, the other file skipped, not an error
    assert main(["bench", "--history", *map(str, paths), str(tmp_path / "study.json")]) == 0
    text = capsys.readouterr().out
    assert "100.0 (2.00x) 110.0 (2.20x) 90.0 (1.80x)" in text
    assert "skipped 1 file(s)" in text
    # cases named before --history select rows
    assert main(["bench", "cube60b", "--history", *map(str, paths)]) == 0
    assert "no photonqd bench reports" in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ("not json", "not a readable JSON report"),
    (json.dumps({"filetype": "photonqd bench", "date": "x"}), "without git_commit"),
    (json.dumps({"filetype": "photonqd bench", "date": "x", "git_commit": None, "kernel_sha256": "k",
                 "checks": [], "results": [{"case": "cube60"}]}), "without results[0].engine"),
])
def test_history_rejects_a_broken_report_by_name(capsys, tmp_path, content, message):
    path = tmp_path / "broken.json"
    path.write_text(content)
    assert main(["bench", "--history", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "broken.json" in err and "Traceback" not in err
