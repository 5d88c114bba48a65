"""`photonqd bench` end to end on tiny photon counts. Speed is never asserted here."""

import json
import math
import subprocess
import sys

import pytest

from photonqd import bench
from photonqd.cli import main


def run_bench(capsys, *argv) -> tuple[int, dict]:
    status = main(["bench", *argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_numpy_run_produces_a_complete_json_report(capsys, tmp_path):
    status, report = run_bench(capsys, "cube60", "cubesph60b", "--backend", "numpy",
                               "--numpy-photons", "60", "--no-pmcxcl", "--save", str(tmp_path))
    assert status == 0
    assert report["filetype"] == "photonqd bench"
    assert report["photons"] == {"numpy": 60}
    for key in ("date", "git_commit", "git_dirty", "kernel_sha256", "host", "devices", "seed"):
        assert key in report
    rows = report["results"]
    assert [(r["case"], r["engine"], r["backend"]) for r in rows] == [
        ("cube60", "photonqd", "numpy"), ("cubesph60b", "photonqd", "numpy")]
    for r in rows:
        assert r["photons"] == 60 and r["device"]
        for key in ("seconds", "photons_per_ms", "interactions_per_s", "absorbed_fraction", "absorbed_error"):
            assert math.isfinite(r[key]) and r[key] >= 0
        assert 0 < r["absorbed_fraction"] < 1
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
    assert "spherebox" in out and "photons/ms" in out


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
