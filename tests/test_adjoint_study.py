"""The depth study by reciprocity on pooled fields (photonqd.adjoint_study)."""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from photonqd import phantom
from photonqd.adjoint_study import (DepthImages, StudyFields, _autofluorescence_weights, gauss_points,
                                    run_adjoint_study)
from photonqd.camera import Camera, EmissionFilter, sensor_preset
from photonqd.cli import main
from photonqd.io import load, load_verification
from photonqd.pooled_fields import RingGeometry, interpolate
from photonqd.scene import NotLaterallyInvariant
from photonqd.study import ConfigError, parse_config, run_study
from photonqd.testing import SMALL_CAMERA_AND_PROBES
from photonqd.verify import verify

SMALL = """
[study]
phantom = "skin_tumour"
method = "adjoint"
depths_mm = {from = 1.0, to = 2.0, step = 0.5}
photons = 20000
adjoint_photons = 20000
max_adjoint_photons = 20000
emission_photons = 40000
seed = 4

[phantom]
radius_mm = 0.5
size_mm = [16.0, 16.0, 8.0]
voxel_size = [0.25, 0.25, 0.1]

[excitation]
wavelength_nm = 808
irradiance_mw_per_cm2 = 50
beam_radius_mm = 3

""" + SMALL_CAMERA_AND_PROBES


def small(photons=None, replace=()):
    text = SMALL
    for old, new in replace:
        text = text.replace(old, new)
    return parse_config(text, photons=photons)


def test_without_target_puts_the_host_layer_in_place_of_the_target():
    scene = phantom.skin_tumour(depth_mm=1.0, radius_mm=0.5, size_mm=(6, 6, 3), voxel_size=(0.25, 0.25, 0.1))
    free = scene.without_target()
    assert not np.array_equal(free.labels, scene.labels)
    assert np.all(free.labels == free.labels[0, 0, :][None, None, :])
    assert np.array_equal(free.labels[~scene.target], scene.labels[~scene.target])
    scene.labels[0, 0, 5] = scene.labels.max()           # a second inclusion, outside the target
    with pytest.raises(NotLaterallyInvariant, match="stack of layers"):
        scene.without_target()


def _camera(pixels=6, fov=3.0, centre=(4.0, 4.0)):
    return Camera(field_of_view_mm=(fov, fov), pixels=(pixels, pixels), centre_mm=centre, numerical_aperture=0.3,
                  emission_filter=EmissionFilter(1250, 1400), sensor=sensor_preset("ingaas_standard"),
                  exposure_s=0.05)


def _direct(rings, gx, gy, area, x, y, layer, density):
    """Pixel integral of a pooled density for an emitter at (x, y) in ``layer``, point by point."""
    j, f = rings.weights(np.hypot(gx - x, gy - y))
    return (interpolate(density, np.full(j.shape, layer), j, f) * area).sum(axis=-1)


def test_target_operator_equals_the_direct_sum():
    rng = np.random.default_rng(2)
    shape, voxel, axis = (32, 32, 6), (0.25, 0.25, 0.1), (4.0, 4.0)
    rings = RingGeometry(shape, voxel, axis)
    fields = SimpleNamespace(rings=rings, emissions={"p": {}})
    camera = _camera()
    images = DepthImages(fields, SimpleNamespace(name="p", quantum_dot="qd"), camera, voxel)
    voxels = np.array([[15, 16, 2], [16, 16, 3], [17, 14, 3], [10, 20, 5]])
    q = rng.random(len(voxels))
    densities = rng.random((3, shape[2], rings.n_rings))
    op = images.target(voxels)
    expected = np.zeros((3,) + camera.pixels)
    for k in range(3):
        for (i, j, l), qv in zip(voxels, q):
            x, y = (i + 0.5) * 0.25 - axis[0], (j + 0.5) * 0.25 - axis[1]
            expected[k] += qv * _direct(rings, images.gx, images.gy, images.area, x, y, l, densities[k])
    np.testing.assert_allclose(op.images_of_densities(q, densities), expected, rtol=1e-12)
    np.testing.assert_allclose(op.images(np.stack([q, 2 * q]), densities[0]),
                               np.stack([expected[0], 2 * expected[0]]), rtol=1e-12)


def test_autofluorescence_weights_equal_the_direct_sum():
    rng = np.random.default_rng(3)
    shape, voxel, axis = (24, 24, 2), (0.25, 0.25, 0.1), (3.0, 3.0)
    rings = RingGeometry(shape, voxel, axis)
    camera = _camera(pixels=4, fov=2.0, centre=axis)
    gx, gy, area = gauss_points(camera, axis)
    w = _autofluorescence_weights(rings, gx, gy, area)
    absorbed, density = rng.random((2, rings.n_rings)), rng.random((2, rings.n_rings))
    x = absorbed.T @ density
    image = (w @ x.ravel()).reshape(camera.pixels)
    expected = np.zeros(camera.pixels)
    for u in range(len(rings.ring)):       # d through its voxel columns, the source interpolated
        for layer in range(2):
            expected += density[layer, rings.ring[u]] * _direct(rings, gx, gy, area, rings.column_x[u],
                                                                 rings.column_y[u], layer, absorbed)
    np.testing.assert_allclose(image, expected, rtol=1e-12)


def test_config_method_and_depth_range():
    cfg = small()
    assert cfg.method == "adjoint" and cfg.depths_mm == [1.0, 1.5, 2.0]
    assert cfg.adjoint_photons == 20000 and cfg.depth_resolution_mm == 0.25
    with pytest.raises(ConfigError, match="study.method"):
        parse_config(SMALL.replace('method = "adjoint"', 'method = "guess"'))
    with pytest.raises(ConfigError, match="study.depths_mm"):
        parse_config(SMALL.replace("step = 0.5", "step = 0.5, stride = 2"))
    with pytest.raises(ConfigError, match="at most 400"):
        parse_config(SMALL.replace("step = 0.5", "step = 0.001"))
    with pytest.raises(ConfigError, match="max_adjoint_photons"):
        parse_config(SMALL.replace("max_adjoint_photons = 20000", "max_adjoint_photons = 10"))


def test_a_phantom_that_is_not_layered_is_refused_before_transport(monkeypatch):
    cfg = small(photons=200)
    make = cfg.scene

    def with_inclusion(depth_mm):
        scene = make(depth_mm)
        scene.labels[0, 0, 10] = 1
        return scene

    monkeypatch.setattr(cfg, "scene", with_inclusion)
    with pytest.raises(ConfigError, match="stack of layers"):
        run_study(cfg, "numpy")


def test_adjoint_agrees_with_forward_on_a_small_skin_tumour(fast_backend):
    """With the target correction (correlated pairs with and without the tumour, the default at
    the depths where the tumour sits in dermis or fat), the QD signal over the target and the ring
    and the ring's background agree with the forward path (tumour in place) at two depths and both
    probes: |z| <= 3.5 (Sidak for 12 comparisons at a 1 % family rate: 3.3). The background over
    the target (the tumour's own autofluorescence and its shadow, not corrected) is held to 30 %
    (measured: +20 % at 1 mm for NIR-I, docs/adjoint.md)."""
    cfg = small(replace=[("seed = 4", "seed = 4\ncorrection_photons = 20000")])
    assert cfg.correction == "contrasted"
    result = run_study(cfg, fast_backend)
    rows = verify(result, [1.0, 2.0], fast_backend, 40000, 100000)
    assert len(rows) == 2 * 2 * 4
    bad = [(r.probe, r.depth_mm, r.quantity, round(r.z, 2)) for r in rows
           if r.quantity != "background_target_e" and not abs(r.z) <= 3.5]
    assert not bad, bad
    for r in rows:
        if r.quantity == "background_target_e":
            assert abs(r.adjoint / r.forward - 1) < 0.3, r


def test_born_fields_are_flagged_where_the_target_differs_from_its_host(fast_backend):
    """Without the correction the study says at which depths the tumour's scattering or index
    differs from its host layer's (dermis and fat here), and the QD signal there is off; with it
    (the default) the provenance says where the target's optics were included."""
    born = run_study(small(replace=[("seed = 4", "seed = 4\ncorrection = \"none\"")]), fast_backend)
    assert "Born: at depths 1-2 mm" in " ".join(born.provenance["notes"])
    assert born.provenance["adjoint"]["target_optics"].startswith("left out of the fields (Born)")
    corrected = run_study(small(), fast_backend)
    assert "Born:" not in " ".join(corrected.provenance["notes"])
    assert corrected.provenance["adjoint"]["target_optics"].startswith("included at every depth")
    for b, c in zip(born.images, corrected.images):
        assert c.signal_e.sum() != b.signal_e.sum()


def test_signals_are_linear_in_concentration_without_transport(fast_backend):
    """The pooled fields' signals are linear in the QD concentration: a new concentration costs no
    transport. (The target correction is not: its runs include the QD's re-absorption of its own
    emission, which grows with the concentration, so it is left out here; so is the uptake outside
    the target, whose image joins the background: tests/test_backgrounds.py.)"""
    born = ("seed = 4", 'seed = 4\ncorrection = "none"')
    no_uptake = "\ntarget_to_background = inf"
    fixed = ('exposure_s = "auto"', "exposure_s = 1e-5")          # "auto" would follow the brightness
    cfg = small(replace=[born, fixed, ("concentration_uM = 0.1", "concentration_uM = 0.1" + no_uptake)])
    fields = StudyFields(cfg, cfg.scene(1.0), fast_backend)
    seconds = dict(fields.seconds)
    base = run_adjoint_study(cfg, fast_backend, fields=fields)
    doubled_cfg = small(replace=[born, fixed, ("concentration_uM = 0.1", "concentration_uM = 0.2" + no_uptake)])
    doubled = run_adjoint_study(doubled_cfg, fast_backend, fields=fields)
    assert fields.seconds == seconds                      # no transport ran
    for a, b in zip(base.images, doubled.images):
        assert a.saturated_pixels == b.saturated_pixels == 0
        np.testing.assert_allclose(b.signal_e, 2 * a.signal_e, rtol=1e-12)
        np.testing.assert_array_equal(b.background_e, a.background_e)
        assert b.errors["signal_target_e"] == pytest.approx(2 * a.errors["signal_target_e"], rel=1e-9)


def test_correction_pairs_share_their_photons(fast_backend):
    """A target of its host's own tissue (and no QD) changes nothing: the pair's runs (same seed,
    stream and photon indices) give identical tallies, so the ratio is 1, exactly."""
    from photonqd.target_correction import run_correction

    cfg = small(replace=[("concentration_uM = 0.1", "concentration_uM = 0.0")])
    scene = cfg.scene(2.5)
    host = int(scene.labels[0, 0, 25])                   # subcutaneous fat at 2.5 mm
    target_label = int(scene.labels[scene.target][0])
    scene = dataclasses.replace(scene, tissues={**scene.tissues, target_label: scene.tissues[host]},
                                autofluorescence={target_label: scene.autofluorescence_of(host)})
    cameras = {p.name: cfg.camera_for(p, (8.0, 8.0)) for p in cfg.probes}
    c = run_correction(cfg, scene, (8.0, 8.0), cameras, 3000, fast_backend)
    assert c.excitation["NIR-I"] is c.excitation["NIR-II"]       # one wavelength: one pair
    np.testing.assert_array_equal(c.excitation["NIR-I"].with_target, c.excitation["NIR-I"].without)
    for probe in cfg.probes:
        pair = c.detection[probe.name]
        np.testing.assert_array_equal(pair.with_target, pair.without)
        assert c.ratio(probe.name) == 1.0
        for ratios, _ in c.variants(probe.name).values():
            assert np.all(ratios == 1.0)


def test_correction_includes_the_qds_reabsorption_of_their_emission(fast_backend):
    """A target of its host's own tissue holding QDs: the excitation pair is identical (the QD is
    excited through the stored fluence, as in the forward path), while the detection run with the
    target loses weight to the QDs along the same paths (until roulette, which the lower weights
    trigger differently, parts them), so the ratio is below 1."""
    from photonqd.target_correction import run_correction

    cfg = small()
    scene = cfg.scene(2.5)
    host = int(scene.labels[0, 0, 25])
    target_label = int(scene.labels[scene.target][0])
    scene = dataclasses.replace(scene, tissues={**scene.tissues, target_label: scene.tissues[host]},
                                autofluorescence={target_label: scene.autofluorescence_of(host)})
    cameras = {p.name: cfg.camera_for(p, (8.0, 8.0)) for p in cfg.probes}
    c = run_correction(cfg, scene, (8.0, 8.0), cameras, 3000, fast_backend)
    np.testing.assert_array_equal(c.excitation["NIR-I"].with_target, c.excitation["NIR-I"].without)
    for probe in cfg.probes:
        pair = c.detection[probe.name]
        assert all(c.ratio(probe.name, adj_batch=j) < 1.0 for j in range(len(pair.photons)))
        assert c.ratio(probe.name) < 1.0


def test_correction_ratio_and_its_batch_values():
    """rho is the ratio of the target overlaps of the two fields, with and without the target;
    the batch pseudo-values of either run average to it."""
    from photonqd.target_correction import Correction, Pair

    rng = np.random.default_rng(3)
    photons = np.full(10, 100.0)
    ex = Pair(1.0 + 0.01 * rng.random((10, 4)), np.ones((10, 4)), photons)
    det = Pair(np.full((10, 4), 0.8) + 0.01 * rng.random((10, 4)), np.ones((10, 4)), photons)
    c = Correction({"p": ex}, {"p": det}, 1000)
    expected = float(ex.mean("with_target") @ det.mean("with_target") / 4.0)
    assert c.ratio("p") == pytest.approx(expected, rel=1e-12)
    for ratios, w in c.variants("p").values():
        assert np.average(ratios, weights=w) == pytest.approx(expected, rel=1e-12)


def test_cli_study_verify_show_and_round_trip(fast_backend, tmp_path, capsys):
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out = tmp_path / "r.h5"
    assert main(["study", str(config), "-o", str(out), "--backend", fast_backend, "--photons", "4000",
                 "--verify", "1.5", "--verify-photons", "4000", "--plots", str(tmp_path / "plots")]) == 0
    printed = capsys.readouterr().out
    assert "depth limit" in printed and "S target" in printed
    # 4000 forward photons resolve few regions: each row has a z or says it is unresolved
    assert "max |z|" in printed or "comparisons unresolved" in printed
    result, info = load(out)
    assert info["method"] == "adjoint" and result.config.method == "adjoint"
    assert result.completed_depths() == [1.0, 1.5, 2.0]
    img = result.images[0]
    assert set(img.errors) >= {"cnr", "snr", "signal_target_e", "background_ring_e"}
    assert all(math.isfinite(v) and v >= 0 for v in img.errors.values() if not math.isnan(v))
    assert "excitation" in img.error_budget
    rows = load_verification(out)
    assert len(rows) == 2 * 4 and {r["depth_mm"] for r in rows} == {1.5}
    assert all(isinstance(r["resolved"], bool) for r in rows)
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "method: adjoint" in shown and "NIR-II" in shown
    assert main(["study", str(config), "-o", str(out), "--backend", fast_backend, "--photons", "4000"]) == 0
    assert "resuming" in capsys.readouterr().err       # every depth done: nothing runs again
    with pytest.raises(SystemExit):
        main(["study", "--verify", "one,two"])
