"""Depth study: configuration checks, end-to-end runs, HDF5 round trip, resume, CLI and plots."""

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest

from photonqd.backends import get_backend
from photonqd.cli import main
from photonqd.io import load, save
from photonqd.study import (BackgroundSettings, CameraSettings, ConfigError, ExcitationSettings, Probe, default_config_text,
                            parse_config, run_study)
from photonqd.testing import SMALL_CAMERA_AND_PROBES

SMALL = """
[study]
phantom = "skin_tumour"
method = "forward"
depths_mm = [1.0, 2.0]
photons = 600
emission_photons = 600
max_emission_photons = 600
seed = 5

[phantom]
radius_mm = 0.5
size_mm = [6.0, 6.0, 4.0]
voxel_size = [0.5, 0.5, 0.25]

[excitation]
wavelength_nm = 808
irradiance_mw_per_cm2 = 50
beam_radius_mm = 2

""" + SMALL_CAMERA_AND_PROBES


def test_a_photon_override_above_the_adjoint_cap_reads_back():
    """--photons above max_adjoint_photons raises the cap: the stored configuration must parse."""
    cfg = parse_config(SMALL.replace('method = "forward"', 'method = "adjoint"'), photons=5_000_000)
    assert cfg.max_adjoint_photons == cfg.adjoint_photons == 5_000_000
    assert parse_config(cfg.to_toml()).to_toml() == cfg.to_toml()


def test_default_config_is_valid():
    cfg = parse_config(default_config_text())
    assert [p.name for p in cfg.probes] == ["NIR-I", "NIR-II", "NIR-IIb"]
    assert cfg.depths_mm[0] == 0.25 and cfg.depths_mm[-1] == 15 and len(cfg.depths_mm) == 60
    assert np.allclose(np.diff(cfg.depths_mm), 0.25) and cfg.method == "adjoint"
    assert cfg.excitation.wavelength_nm == 808


@pytest.mark.parametrize("change,key", [
    (("photons = 600", "photons = -3"), "study.photons"),
    (("photons = 600", "photons = 6.5"), "study.photons"),
    (('phantom = "skin_tumour"', 'phantom = "teapot"'), "study.phantom"),
    (("numerical_aperture = 0.3", "numerical_aperture = 3"), "camera.numerical_aperture"),
    (('quantum_dot = "pbs_cds_1300"', 'quantum_dot = "unobtainium"'), "probe[1].quantum_dot"),
    (("window_nm = [820, 900]", "window_nm = [780, 900]"), "probe[0].window_nm"),
    (("window_nm = [820, 900]", "window_nm = [900, 820]"), "probe[0].window_nm"),
    (("seed = 5", "seed = 5\ncolour = 3"), "study: unknown key"),
    (("radius_mm = 0.5", "radius_mm = 5.0"), "phantom"),
    (("[camera]", "[camera]\nzoom = 2"), "camera: unknown key"),
    (("seed = 5", 'seed = 5\ncorrection = "some"'), "study.correction"),
    (("seed = 5", "seed = 5\ncorrection_photons = 50"), "study.correction_photons"),
    (("seed = 5", "seed = 5\nz = -1"), "study.z"),
    (("[camera]", "[background]\nclutter = 0.6\n\n[camera]"), "background.clutter"),
    (("[camera]", "[background]\nfog = 1\n\n[camera]"), "background: unknown key"),
    (('sensor = "ingaas_standard"', 'sensor = "ingaas_standard"\ntarget_to_background = 0.5'),
     "probe[1].target_to_background"),
])
def test_bad_config_names_the_key(change, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config(SMALL.replace(*change))


def test_bad_config_on_the_command_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text(SMALL.replace("pixels = 12", "pixels = 0"))
    assert main(["study", str(bad), "-o", str(tmp_path / "r.h5")]) == 2
    assert "camera.pixels" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()
    assert main(["show", str(tmp_path / "missing.h5")]) == 2


def test_study_end_to_end_and_round_trip(backend, budget, tmp_path):
    cfg = parse_config(SMALL, photons=budget(kernel=600, numpy=200))
    result = run_study(cfg, backend)
    assert result.completed_depths() == [1.0, 2.0]
    assert len(result.images) == 4
    for img in result.images:
        assert img.signal_e.shape == img.background_e.shape == (12, 12)
        assert img.metrics.snr >= 0 and np.isfinite(img.metrics.sbr)
    path = tmp_path / "study.h5"
    save(result, path, {"backend": backend, "device": "test"})
    loaded, info = load(path)
    assert info["filetype"] == "photonqd-study" and info["backend"] == backend
    for a, b in zip(result.images, loaded.images):
        assert a.probe == b.probe and a.depth_mm == b.depth_mm
        assert np.array_equal(a.signal_e, b.signal_e)
        np.testing.assert_equal(a.metrics.as_dict(), b.metrics.as_dict())  # NaN == NaN here
    for p in cfg.probes:
        np.testing.assert_equal(result.max_depth(p.name), loaded.max_depth(p.name))
    if backend == "numpy":
        return  # reproduction is checked on the kernel backends, where it is cheap
    # re-running the stored configuration on the same backend and seed reproduces it
    again = run_study(loaded.config, backend)
    assert all(np.array_equal(a.signal_e, b.signal_e) for a, b in zip(result.images, again.images))


def test_file_checks(tmp_path):
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "something else"
    with pytest.raises(ValueError, match="not a photonqd study"):
        load(path)
    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = "photonqd-study"
        f.attrs["version"] = 99
    with pytest.raises(ValueError, match="version"):
        load(path)


def test_interrupted_study_resumes(fast_backend, tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out = tmp_path / "r.h5"
    cfg = parse_config(SMALL)

    class Interrupt(Exception):
        pass

    device = get_backend(fast_backend).device

    def save_then_stop(result):
        save(result, out, {"backend": fast_backend, "device": device})
        raise Interrupt

    with pytest.raises(Interrupt):
        run_study(cfg, fast_backend, on_depth=save_then_stop)
    partial, _ = load(out)
    assert partial.completed_depths() == [1.0]
    assert main(["study", str(config), "-o", str(out), "--backend", fast_backend,
                 "--plots", str(tmp_path / "plots")]) == 0
    assert "resuming" in capsys.readouterr().err
    resumed, _ = load(out)
    assert resumed.completed_depths() == [1.0, 2.0]
    fresh = run_study(parse_config(SMALL), fast_backend)
    for a, b in zip(sorted(resumed.images, key=lambda i: (i.depth_mm, i.probe)),
                    sorted(fresh.images, key=lambda i: (i.depth_mm, i.probe))):
        assert np.array_equal(a.signal_e, b.signal_e)
    assert (tmp_path / "plots" / "metrics.png").stat().st_size > 10_000
    assert (tmp_path / "plots" / "montage_2mm.png").exists()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "NIR-II" in shown and "depth limit" in shown
    # a different study may not be resumed into the same file
    config.write_text(SMALL.replace("seed = 5", "seed = 6"))
    assert main(["study", str(config), "-o", str(out), "--backend", fast_backend]) == 2


def test_emission_photons_grow_until_the_contrast_is_resolved(fast_backend):
    """Deep target, few photons: the probe's emission photons are raised (x4) up to the cap while
    the target's contrast is not resolved to 30 %."""
    text = SMALL.replace("depths_mm = [1.0, 2.0]", "depths_mm = [2.0]").replace(
        "emission_photons = 600\nmax_emission_photons = 600", "emission_photons = 300\nmax_emission_photons = 4800")
    result = run_study(parse_config(text), fast_backend)
    for img in result.images:
        assert img.emission_photons in (300, 1200, 4800)
        assert img.signal_rel_error <= 0.3 or img.emission_photons == 4800
    assert any(img.emission_photons > 300 for img in result.images)


# --- reliability: everything a study needs is checked before anything runs ----------------------
@pytest.mark.parametrize("change,key", [
    (('phantom = "skin_tumour"', 'phantom = ["skin_tumour"]'), "study.phantom"),
    (("pixels = 12", "pixels = nan"), "camera.pixels"),
    (("radius_mm = 0.5", 'radius_mm = "big"'), "phantom.radius_mm"),
    (("voxel_size = [0.5, 0.5, 0.25]", "voxel_size = [0.25, 0.25]"), "phantom.voxel_size"),
    (("voxel_size = [0.5, 0.5, 0.25]", "voxel_size = 0.0001"), r"phantom.voxel_size: .* GiB"),
    (("radius_mm = 0.5", "radius_mm = 0.5\ndepth_mm = 2"), "phantom.depth_mm: set by study"),
    (("radius_mm = 0.5", "radius_mm = 0.5\nlayers = 3"), "phantom.layers"),
    (("depths_mm = [1.0, 2.0]", "depths_mm = [1.0, 20.0]"), r"depth_mm = 20"),      # F5
    (("depths_mm = [1.0, 2.0]", f"depths_mm = {[0.5 + i / 1000 for i in range(401)]}"), "at most 400"),
    (("window_nm = [820, 900]", "window_nm = [400, 450]"), r"probe\[0\].window_nm: .* emission"),
    (("field_of_view_mm = 6", "field_of_view_mm = 100"), "camera.field_of_view_mm"),
    (("pixels = 12", "pixels = 1"), "camera.background_annulus_mm: no pixel"),
    (('name = "NIR-I"', "name = {a = 1}"), r"probe\[0\].name"),
    (('[[probe]]\nname = "NIR-I"', "probe = 3\n[[probx]]\nname = 1"), "config: unknown key"),
    (('quantum_dot = "cdtese_zns_800"\n', ""), r"probe\[0\].quantum_dot: None is not one of"),
    (('quantum_dot = "cdtese_zns_800"', 'quantum_dot = "unobtainium"'),
     r"probe\[0\].quantum_dot: 'unobtainium' is not one of .*'pbs_cds_1300'"),
    (('sensor = "silicon_ccd_bidd"', 'sensor = "eye"'), r"probe\[0\].sensor: 'eye' is not one of"),
    (("[[probe]]", "[[probe]]\nzoom = 2"), r"probe\[0\]: unknown key"),
    (("target_radius_mm = 0.5", "target_radius_mm = 2"), "camera.target_radius_mm: must not exceed"),
    (("background_annulus_mm = [1.5, 2.5]", "background_annulus_mm = [1.5, 4.5]"),
     "camera.background_annulus_mm: the annulus reaches outside"),
])
def test_bad_study_is_refused_before_anything_runs(change, key):
    assert change[0] in SMALL
    with pytest.raises(ConfigError, match=key):
        parse_config(SMALL.replace(*change))


@pytest.mark.parametrize("where", ["1.5", "30"])   # between two depths of the study; below the phantom
def test_bad_verify_depth_is_refused_before_any_transport(tmp_path, capsys, monkeypatch, where):
    """--verify names depths of the study: any other is refused right after the configuration is
    read, in one line, before the study (or NumPy's timing launch) runs a photon."""
    import photonqd.simulation
    import photonqd.study

    def transport(*args, **kwargs):
        raise AssertionError("transport ran before --verify was checked")

    monkeypatch.setattr(photonqd.study, "run_study", transport)
    monkeypatch.setattr(photonqd.simulation.Simulation, "run", transport)
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out = tmp_path / "r.h5"
    assert main(["study", str(config), "-o", str(out), "--backend", "numpy", "--verify", f"1,{where}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"photonqd study: error: --verify: {where} mm is not a depth of the study; allowed: 1, 2 mm"]
    assert not out.exists()


@pytest.mark.parametrize("text,key", [
    ("study = []", "study: expected a table"),
    ("camera = 0.0\n[study]\ndepths_mm = [1]", "camera: expected a table"),
    ("probe = [1, 2]\n[study]\ndepths_mm = [1]", r"probe\[0\]: expected a \[\[probe\]\] table"),
])
def test_sections_that_are_not_tables(text, key):
    with pytest.raises(ConfigError, match=key):
        parse_config(text)


def test_scalar_size_is_accepted_by_every_phantom():
    cfg = parse_config(SMALL.replace("size_mm = [6.0, 6.0, 4.0]", "size_mm = 6.0"))
    assert cfg.scene(1.0).labels.shape == (12, 12, 24)


def test_missing_mie_is_named_before_transport(monkeypatch):
    """The Intralipid example needs Mie theory for the NIR-II window: without miepython the
    configuration is refused up front, naming the probe and the extra to install (F6)."""
    import sys
    text = (Path(__file__).parents[1] / "examples" / "intralipid_capillary_study.toml").read_text()
    monkeypatch.setitem(sys.modules, "miepython", None)  # import miepython -> ImportError
    with pytest.raises(ConfigError, match=r"probe\[1\].window_nm: .*photonqd\[mie\]"):
        parse_config(text)


def test_qd_extrapolation_is_in_the_provenance(fast_backend):
    """QDs excited through the stored fluence at 350 nm (outside the measured range) are listed as
    extrapolated in the study's provenance, not only warned about (F10)."""
    text = SMALL.replace("depths_mm = [1.0, 2.0]", "depths_mm = [1.0]").replace(
        "wavelength_nm = 808", "wavelength_nm = 350")
    result = run_study(parse_config(text, photons=300), fast_backend)
    assert any("epsilon_qd" in q for q in result.provenance["extrapolated_quantities"])


def _stored_study(path, backend="numpy", device="CPU (NumPy reference)", depths=(1.0,)):
    """A results file of SMALL with synthetic images (no transport), as the CLI would write it."""
    from photonqd.metrics import TargetMetrics, UNITS
    from photonqd.study import ProbeImage, StudyResult
    cfg = parse_config(SMALL)
    result = StudyResult(cfg)
    for d in depths:
        for p in cfg.probes:
            img = np.full((12, 12), d)
            result.images.append(ProbeImage(d, p.name, img, img, img, img,
                                            TargetMetrics(**{k: 1.0 for k in UNITS}), 0.1, 1.0, 600))
    save(result, path, {"backend": backend, "device": device})
    return result


def test_depths_are_appended_without_rewriting_earlier_ones(tmp_path):
    from photonqd.io import append_depth
    path = tmp_path / "r.h5"
    result = _stored_study(path)
    with h5py.File(path, "r") as f:
        offset = f["images/0000/signal_e"].id.get_offset()
    cfg = result.config
    extra = [type(result.images[0])(2.0, p.name, *(np.full((12, 12), 2.0),) * 4, result.images[0].metrics,
                                    0.1, 1.0, 600) for p in cfg.probes]
    result.images.extend(extra)
    append_depth(result, path, 2.0)
    with h5py.File(path, "r") as f:
        assert f["images/0000/signal_e"].id.get_offset() == offset  # untouched
        assert all(f["images"][k].attrs["complete"] for k in f["images"])
        # a depth being written when the run stopped: its groups are not flagged complete
        f.close()
    with h5py.File(path, "r+") as f:
        f["images/0003"].attrs["complete"] = False
    loaded, _ = load(path)
    assert loaded.completed_depths() == [1.0]
    # resuming rewrites that depth: no duplicate images
    append_depth(result, path, 2.0)
    loaded, _ = load(path)
    assert loaded.completed_depths() == [1.0, 2.0] and len(loaded.images) == 4


def test_resume_refuses_another_version_commit_or_device(tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    path = tmp_path / "r.h5"
    for key, value in (("photonqd_version", "0.0.1"), ("git_commit", "0" * 40), ("device", "a GPU")):
        _stored_study(path)
        with h5py.File(path, "r+") as f:
            f.attrs[key] = value
        assert main(["study", str(config), "-o", str(path), "--backend", "numpy"]) == 2
        err = capsys.readouterr().err
        assert key in err and len(err.strip().splitlines()) == 1
        with h5py.File(path, "r") as f:
            assert f.attrs[key] == value  # never relabelled


@pytest.mark.parametrize("damage,match", [
    (lambda f: f.attrs.__setitem__("version", "one"), "version"),
    (lambda f: f["config"].attrs.__setitem__("effective_toml", f["config"].attrs["effective_toml"].replace(
        "seed = 5", "seed = -5")), "study.seed"),
    (lambda f: f.__delitem__("config"), "config"),
    (lambda f: f["images/0000"].attrs.__delitem__("cnr"), "cnr"),
])
def test_damaged_results_file_names_what_is_wrong(tmp_path, capsys, damage, match):
    path = tmp_path / "r.h5"
    _stored_study(path)
    with h5py.File(path, "r+") as f:
        damage(f)
    assert main(["show", str(path)]) == 2
    err = capsys.readouterr().err
    assert match in err and str(path) in err and len(err.strip().splitlines()) == 1


def test_unreadable_files_give_one_line(tmp_path, capsys):
    good = tmp_path / "good.h5"
    _stored_study(good)
    (tmp_path / "text.h5").write_text("hi")
    (tmp_path / "cut.h5").write_bytes(good.read_bytes()[:3000])
    (tmp_path / "empty.h5").write_bytes(b"")
    for name in ("text.h5", "cut.h5", "empty.h5", "."):
        assert main(["show", str(tmp_path / name)]) == 2
    config = tmp_path / "c.toml"
    config.write_bytes("# é\n".encode("utf-16"))
    assert main(["run", str(config)]) == 2
    assert main(["run", str(tmp_path)]) == 2
    config.write_text(SMALL)
    assert main(["run", str(config), "-o", str(tmp_path / "text.h5"), "--backend", "numpy"]) == 2
    assert main(["run", str(config), "-o", str(tmp_path), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 8 and all(line.startswith("photonqd ") for line in err)
    assert (tmp_path / "text.h5").read_text() == "hi"


def test_stale_temporaries_are_removed_and_files_follow_the_umask(tmp_path):
    path = tmp_path / "r.h5"
    stale, fresh = tmp_path / ".r.h5.old.tmp", tmp_path / ".r.h5.new.tmp"
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (0, 0))
    old = os.umask(0o022)
    try:
        _stored_study(path)
    finally:
        os.umask(old)
    assert not stale.exists() and fresh.exists()  # a fresh one may belong to a running save
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_ctrl_c_keeps_completed_depths_and_the_bar_counts_what_is_left(tmp_path, capsys, monkeypatch):
    import photonqd.study.run as study_run  # run_study calls run_depth from its own module
    from photonqd.study import ProbeImage
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    path = tmp_path / "r.h5"
    _stored_study(path, depths=(1.0,))
    real = study_run.run_depth

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(study_run, "run_depth", interrupt)
    assert main(["study", str(config), "-o", str(path), "--backend", "numpy"]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"interrupted; 1 depths kept in {path}, rerun to resume" in err
    assert "running on NumPy" in err and "pocl-opencl-icd" in err  # the time estimate came first

    calls = []
    monkeypatch.setattr(study_run, "run_depth", lambda config, depth, *a, **k: calls.append(depth) or [
        ProbeImage(depth, p.name, *(np.zeros((12, 12)),) * 4, load(path)[0].images[0].metrics,
                   0.1, 1.0, 600) for p in config.probes])
    assert main(["study", str(config), "-o", str(path), "--backend", "numpy"]) == 0
    assert calls == [2.0] and "1/1 2 mm saved" in capsys.readouterr().err
    assert real is not None


@pytest.mark.parametrize("text", [SMALL, default_config_text()])
def test_effective_configuration_round_trips(text):
    import dataclasses

    cfg = parse_config(text, photons=1234)
    again = parse_config(cfg.to_toml())
    a, b = dataclasses.asdict(cfg), dataclasses.asdict(again)
    a.pop("text"), b.pop("text")
    assert a == b and again.photons == 1234 and again.to_toml() == cfg.to_toml()
    assert dataclasses.replace(again, text=cfg.text) == cfg     # the settings objects compare equal


# --- the settings objects: each table's values checked on construction ----------------------------
PROBE = dict(name="NIR-I", quantum_dot="cdtese_zns_800", concentration_uM=0.1, window_nm=(820, 900),
             sensor="silicon_ccd_bidd")


@pytest.mark.parametrize("settings,field,value", [
    (ExcitationSettings, "wavelength_nm", 299), (ExcitationSettings, "wavelength_nm", float("nan")),
    (ExcitationSettings, "irradiance_mw_per_cm2", 0), (ExcitationSettings, "irradiance_mw_per_cm2", 2e5),
    (ExcitationSettings, "beam_radius_mm", 0), (ExcitationSettings, "beam_radius_mm", "5"),
    (CameraSettings, "field_of_view_mm", 0), (CameraSettings, "field_of_view_mm", 1001),
    (CameraSettings, "pixels", 0), (CameraSettings, "pixels", 4097), (CameraSettings, "pixels", 12.5),
    (CameraSettings, "pixels", "25"), (CameraSettings, "pixels", True),
    (CameraSettings, "numerical_aperture", 0), (CameraSettings, "numerical_aperture", 1.2),
    (CameraSettings, "exposure_s", 0), (CameraSettings, "exposure_s", 2e4),
    (CameraSettings, "blocking_od", -1), (CameraSettings, "blocking_od", 13),
    (CameraSettings, "target_radius_mm", 0), (CameraSettings, "target_radius_mm", 9.0),   # > annulus' inner
    (CameraSettings, "background_annulus_mm", (0, 4)), (CameraSettings, "background_annulus_mm", (4.5, 3.0)),
    (CameraSettings, "background_annulus_mm", (3.0,)), (CameraSettings, "background_annulus_mm", "automatic"), (CameraSettings, "background_annulus_mm", (3.0, 15.0)),
    (Probe, "name", ""), (Probe, "name", "a/b"), (Probe, "name", 3),
    (Probe, "quantum_dot", 3), (Probe, "concentration_uM", -1), (Probe, "concentration_uM", None),
    (Probe, "window_nm", (900, 820)), (Probe, "window_nm", (200, 300)), (Probe, "window_nm", 820),
    (Probe, "sensor", None), (Probe, "target_to_background", 0.99), (Probe, "target_to_background", "inf"),
    (Probe, "target_to_background", float("nan")), (BackgroundSettings, "clutter", -0.01),
    (BackgroundSettings, "clutter", 0.51),
])
def test_settings_refuse_a_bad_field_by_name(settings, field, value):
    given = dict(PROBE) if settings is Probe else {}
    given[field] = value
    with pytest.raises((ValueError, TypeError), match=rf"^{field}: "):
        settings(**given)


def test_settings_convert_and_are_frozen():
    import dataclasses

    camera = CameraSettings(pixels=12.0, background_annulus_mm=[2, 3])
    assert camera.pixels == 12 and isinstance(camera.pixels, int)
    assert camera.background_annulus_mm == (2.0, 3.0)
    assert Probe(**PROBE).window_nm == (820.0, 900.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        camera.pixels = 0


def test_settings_defaults_are_the_studys_defaults():
    """A configuration without [excitation] and [camera] tables gets the settings' defaults, which
    are the default study's values (but for the target disk: 0.5 mm there, for its 0.5 mm tumour)."""
    import re

    text = default_config_text()
    cfg = parse_config(text)
    assert cfg.excitation == ExcitationSettings()
    assert cfg.camera == CameraSettings(target_radius_mm=0.5)
    bare = parse_config(re.sub(r"\n\[(excitation|camera)\][^\n]*\n.*?(?=\n\[)", "\n", text, flags=re.S))
    assert bare.excitation == ExcitationSettings() and bare.camera == CameraSettings()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "examples").glob("*.toml")) +
                         sorted((Path(__file__).parents[1] / "validation" / "literature").glob("*.toml")),
                         ids=lambda p: p.name)
def test_shipped_configurations_are_valid(path):
    """Every example and literature-comparison configuration parses and builds its phantom, with a
    target, at its first depth (docs/literature.md runs them)."""
    cfg = parse_config(path.read_text(), base_dir=path.parent)
    scene = cfg.scene(cfg.depths_mm[0])
    assert scene.target is not None and scene.target.any()


def test_verify_reports_unresolved_forward_values_instead_of_z():
    """A forward region that detected nothing (0 +- 0) or a few photons must not produce a huge z
    or count in max |z|: it is printed as unresolved, with the advice to raise --verify-photons."""
    from photonqd.verify import Comparison, format_comparisons
    rows = [Comparison("NIR-II", 1.0, "signal_target_e", 100.0, 5.0, 104.0, 6.0),        # z = -0.51
            Comparison("NIR-II", 1.0, "background_target_e", 7e4, 300.0, 0.0, 0.0),     # nothing detected
            Comparison("NIR-II", 1.0, "signal_ring_e", 45.0, 4.0, 0.3, 0.29)]            # a few photons
    assert [r.resolved for r in rows] == [True, False, False]
    text = format_comparisons(rows)
    assert "max |z| = 0.51 over 1 comparisons (0 above 3)" in text
    assert sum(line.endswith("unres") for line in text.splitlines()) == 2
    assert "2 comparisons unresolved" in text and "--verify-photons" in text
