"""What limits a target's visibility beyond the camera's noise: clutter in the CNR's noise term, the
QD's non-specific uptake outside the target (tumour-to-background ratio), and the decision margin
study.z (issue: "Detectability a reviewer would accept")."""

import math

import numpy as np
import pytest

from photonqd.camera import Camera, EmissionFilter, sensor_preset
from photonqd.metrics import TargetMetrics, regions, target_metrics
from photonqd.noise import pixel_variance
from photonqd.study import ConfigError, ProbeImage, StudyResult, parse_config, run_study

from test_adjoint_study import SMALL, small


def _camera():
    return Camera((6.0, 6.0), (12, 12), (3.0, 3.0), 0.5, EmissionFilter(1250, 1400),
                  sensor_preset("ingaas_standard"), 0.05)


def test_clutter_adds_kappa_times_each_background_pixels_level_to_the_cnr_noise():
    cam = _camera()
    rng = np.random.default_rng(3)
    signal = rng.uniform(0, 50, cam.pixels)
    background = rng.uniform(1e3, 3e3, cam.pixels)
    target, ring = regions(cam, (3.0, 3.0), 0.5, (1.5, 2.5))
    signal[target] += 200.0
    total = (signal + background)[ring]
    contrast = signal[target].mean() - signal[ring].mean()
    for kappa in (0.0, 0.003, 0.01, 0.03):
        m = target_metrics(signal, background, cam, (3.0, 3.0), 0.5, (1.5, 2.5), clutter=kappa)
        sigma = math.sqrt(np.mean(pixel_variance(total, cam) + (kappa * total) ** 2))
        assert m.cnr == pytest.approx(contrast / sigma, rel=1e-12)
    # the camera's noise on a ~2000 e- background: about 47 e- (shot, read 15 e-); 3 % clutter
    # (about 60 e-) outweighs it, and the CNR falls to about 0.6 of the camera-limited one
    plain = target_metrics(signal, background, cam, (3.0, 3.0), 0.5, (1.5, 2.5))
    cluttered = target_metrics(signal, background, cam, (3.0, 3.0), 0.5, (1.5, 2.5), clutter=0.03)
    assert cluttered.cnr < 0.8 * plain.cnr
    assert cluttered.snr == plain.snr and cluttered.sbr == plain.sbr      # clutter enters the CNR only
    with pytest.raises(ValueError, match="^clutter: "):
        target_metrics(signal, background, cam, (3.0, 3.0), 0.5, (1.5, 2.5), clutter=-0.1)


def _image(cnr, error, depth=1.0):
    metrics = TargetMetrics(sbr=1.0, contrast=0.0, cnr=cnr, snr=1.0, fwhm_mm=1.0, signal_target_e=1.0,
                            background_target_e=1.0)
    zero = np.zeros((2, 2))
    return ProbeImage(depth, "NIR-I", zero, zero, zero, zero, metrics, error / cnr, 0.0, 0, errors={"cnr": error})


@pytest.mark.parametrize("z,expected", [(2.0, "undecided"), (1.0, "yes"), (0.0, "yes"), (3.0, "undecided")])
def test_study_z_sets_the_decision_margin(z, expected):
    """CNR 4 +- 0.8 against k = 3: decided detectable within 1.25 standard errors, not at 2."""
    cfg = small(replace=[("seed = 4", f"seed = 4\nz = {z}")])
    result = StudyResult(cfg, [_image(4.0, 0.8)])
    assert result.verdict(result.images[0]) == expected


def test_decisions_and_limits_use_the_configured_margin():
    """The same CNR series gives a narrower depth-limit interval at z = 1 than at z = 2."""
    series = [(1.0, 30.0, 2.0), (2.0, 8.0, 1.5), (3.0, 2.0, 0.8)]
    widths = []
    for z in (1.0, 2.0):
        cfg = small(replace=[("seed = 4", f"seed = 4\nz = {z}")])
        result = StudyResult(cfg, [_image(c, e, d) for d, c, e in series])
        limit = result.depth_limit("NIR-I")
        assert limit.status == "crossing" and 2.0 < limit.estimate < 3.0
        widths.append(limit.high - limit.low)
    assert widths[0] < widths[1]


def test_uptake_moves_light_from_the_targets_signal_to_the_background(fast_backend):
    """Non-specific uptake c/TBR in every voxel: the target keeps the excess c (1 - 1/TBR) as its
    signal, further dimmed by the uptake's absorption of the excitation and of the emission (the
    uptake is in both transport media), and the uptake's image joins the background, with the
    Monte Carlo error of the runs it comes from."""
    born = ("seed = 4", 'seed = 4\ncorrection = "none"')

    def cfg(ratio):
        return small(replace=[born, ("concentration_uM = 0.1", f"concentration_uM = 0.1\ntarget_to_background = {ratio}")])

    free = run_study(cfg("inf"), fast_backend)
    three = run_study(cfg(3.0), fast_backend)
    names = set(three.provenance["adjoint"]["excitation_photons"])
    assert names == {"excitation 808 nm, cdtese_zns_800 uptake 0.0333 uM",
                     "excitation 808 nm, pbs_cds_1300 uptake 0.0333 uM"}
    assert set(free.provenance["adjoint"]["excitation_photons"]) == {"excitation 808 nm"}
    for a, b in zip(free.images, three.images):
        assert (a.probe, a.depth_mm) == (b.probe, b.depth_mm)
        ratio = b.signal_per_photon.sum() / a.signal_per_photon.sum()      # each image has its own exposure
        assert 0.5 * (1 - 1 / 3) < ratio < (1 - 1 / 3), (a.probe, a.depth_mm, ratio)
        assert b.background_per_photon.sum() > a.background_per_photon.sum()
        assert a.saturated_pixels == b.saturated_pixels == 0                 # "auto" exposure
        assert 0 < b.errors["background_ring_e"] < 0.1 * b.metrics.background_ring_e
        qd_runs = [run for run in b.error_budget if run.startswith("adjoint ") and "autofluorescence" not in run]
        assert qd_runs and "excitation" in b.error_budget
    # NIR-II autofluorescence is weak: there the uptake dominates the background and lowers the CNR
    for a, b in zip(free.images, three.images):
        if a.probe == "NIR-II":
            assert b.background_per_photon.sum() > 10 * a.background_per_photon.sum()
            assert b.metrics.cnr < a.metrics.cnr


def test_a_probe_may_have_its_own_excitation(fast_backend):
    """Probes with their own excitation wavelength get their own excitation run (shared by probes
    that share one), their own photon rate, and the window check against their own wavelength."""
    text = [("seed = 4", "seed = 4\ncorrection = \"none\""),
            ("concentration_uM = 0.1", "concentration_uM = 0.1\ntarget_to_background = inf"),
            ('window_nm = [820, 900]', 'window_nm = [780, 900]\nexcitation_nm = 730\nirradiance_mw_per_cm2 = 100')]
    cfg = small(replace=text)
    nir1, nir2 = cfg.probes
    assert cfg.excitation_key(nir1) == (730.0, "", 0.0) and cfg.excitation_key(nir2) == (808.0, "", 0.0)
    again = parse_config(cfg.to_toml())
    assert again.probes == cfg.probes
    result = run_study(cfg, fast_backend)
    assert set(result.provenance["adjoint"]["excitation_photons"]) == {"excitation 730 nm", "excitation 808 nm"}
    rate = {p.name: cfg.excitation_for((0.0, 0.0), p).photons_per_s for p in cfg.probes}
    # photons/s = P lambda / (h c): twice the irradiance at 730/808 of the wavelength
    assert rate["NIR-I"] / rate["NIR-II"] == pytest.approx(2 * 730 / 808, rel=1e-12)
    with pytest.raises(ConfigError, match=r"probe\[0\]\.window_nm: the window contains the excitation"):
        small(replace=[('window_nm = [820, 900]', 'window_nm = [700, 900]\nexcitation_nm = 730')])
    with pytest.raises(ConfigError, match=r"probe\[0\]\.excitation_nm"):
        small(replace=[('window_nm = [820, 900]', 'window_nm = [820, 900]\nexcitation_nm = 100')])


def test_results_of_version_2_are_read_as_they_ran(tmp_path):
    """A file written before clutter and uptake existed is read with clutter 0 and no uptake, not
    with today's defaults."""
    import h5py

    from photonqd.io import load, save

    cfg = parse_config(small().to_toml())
    result = StudyResult(cfg, [_image(4.0, 0.8)])
    path = tmp_path / "old.h5"
    save(result, path, {"backend": "numpy", "device": "cpu"})
    with h5py.File(path, "r+") as f:
        f.attrs["version"] = 2
    old, _ = load(path)
    assert old.config.background.clutter == 0.0
    assert all(p.target_to_background == math.inf for p in old.config.probes)
    with h5py.File(path, "r+") as f:
        f.attrs["version"] = 3
    now, _ = load(path)
    assert now.config.background.clutter == cfg.background.clutter == 0.01
    assert all(p.target_to_background == 3.0 for p in now.config.probes)


def test_a_target_that_shadows_itself_holds_its_qd_during_excitation(fast_backend):
    """At 10 µM (3 d_mu_a mu_s' R^2 = 0.44 here, above SHADOWING_LIMIT) the forward path puts the
    target's QD into its probe's own excitation run, whose QD absorption falls short of the first-
    order estimate from the QD-free fluence (diffusion: about 0.4 x 0.44 = 18 %; measured 31 % in
    the review; 24 % here, 10-45 % allowed). At 0.1 µM (0.004) the QD is excited through the fluence, and the
    adjoint study marks every depth for the target correction only when the QD shadows itself."""
    from photonqd.scene import Fluorophore
    from photonqd.study.run import (SHADOWING_LIMIT, excitation_stages, self_shadowing, shadowed, stage_key,
                                    target_centre)

    plain = [("seed = 4", 'seed = 4\ncorrection = "none"'),
             ("concentration_uM = 0.1", "concentration_uM = 0.1\ntarget_to_background = inf")]
    dense = plain[:1] + [("concentration_uM = 0.1", "concentration_uM = 10.0\ntarget_to_background = inf")]
    low, high = small(replace=plain), small(replace=dense)
    scene = high.scene(2.0).with_fluorophores()
    nir2_low, nir2 = low.probes[1], high.probes[1]
    assert self_shadowing(low, scene, nir2_low) < SHADOWING_LIMIT < self_shadowing(high, scene, nir2)
    assert self_shadowing(high, scene, nir2) == pytest.approx(100 * self_shadowing(low, scene, nir2_low), rel=1e-9)
    centre = target_centre(scene)
    cameras = {p.name: high.camera_for(p, centre) for p in high.probes}
    stages = excitation_stages(high, scene, centre, cameras, 20000, fast_backend)
    assert stage_key(high, scene, nir2) == "NIR-II" and shadowed(high, scene, nir2)
    stage, present, _, _ = stages["NIR-II"]
    assert present["target"] is not None and stage.species == (present["target"],)
    shadowed_absorbed = stage.result.fluorophore_absorbed[0][scene.target].sum()
    free, _, _, _ = excitation_stages(low, scene, centre, cameras, 20000, fast_backend)[low.excitation_key(nir2_low)]
    target = present["target"]
    first_order = (free.result.fluence[scene.target] * float(np.prod(scene.voxel_size))
                   * target.concentration_uM[scene.target]
                   * float(target.quantum_dot.mua_per_uM([808])[0])).sum()
    assert 0.55 < shadowed_absorbed / first_order < 0.9, shadowed_absorbed / first_order
    assert isinstance(target, Fluorophore)
    # the adjoint study: the target correction (with the QD in the with-target excitation) at every depth
    from photonqd.adjoint_study import StudyFields, _targets, contrasted_depths
    muscle = ("depths_mm = {from = 1.0, to = 2.0, step = 0.5}", "depths_mm = [5.0, 5.5]")   # tumour in muscle
    for replace, expected in (([muscle, plain[1]], []), ([muscle, dense[1]], [5.0, 5.5])):
        cfg = small(replace=replace)
        fields = StudyFields(cfg, cfg.scene(5.0), fast_backend, excitation_photons=1000, adjoint_photons=1000)
        assert contrasted_depths(cfg, fields, _targets(cfg, cfg.scene(5.0), fields)) == expected


def test_auto_background_annulus_moves_out_with_depth(fast_backend):
    """background_annulus_mm = "auto": each depth's annulus lies outside the target's own spread
    (at most a few per cent of its light, where the field allows), and deeper targets, whose light
    spreads wider, push it out; the configuration refuses a field too small for it."""
    cfg = small(replace=[("seed = 4", 'seed = 4\ncorrection = "none"'),
                         ("depths_mm = {from = 1.0, to = 2.0, step = 0.5}", "depths_mm = [1.0, 3.0]"),
                         ("field_of_view_mm = 6", "field_of_view_mm = 14"), ("pixels = 12", "pixels = 28"),
                         ("background_annulus_mm = [1.5, 2.5]", 'background_annulus_mm = "auto"')])
    assert parse_config(cfg.to_toml()).camera.background_annulus_mm == "auto"
    result = run_study(cfg, fast_backend)
    for probe in ("NIR-I", "NIR-II"):
        shallow, deep = sorted((i for i in result.images if i.probe == probe), key=lambda i: i.depth_mm)
        assert deep.background_annulus_mm[0] > shallow.background_annulus_mm[0]
        assert shallow.metrics.background_spread < 0.06
    with pytest.raises(ConfigError, match="camera.target_radius_mm"):
        small(replace=[("target_radius_mm = 0.5", "target_radius_mm = 2.0"),
                       ("background_annulus_mm = [1.5, 2.5]", 'background_annulus_mm = "auto"')])


# --- camera limits: exposure and saturation (photonqd.exposure) --------------------------------

def _flat_camera(full_well=1e4, dark=100.0):
    from photonqd.camera import Sensor
    sensor = Sensor("flat", [400.0, 2000.0], [1.0, 1.0], 5.0, dark, full_well_e=full_well)
    return Camera((6.0, 6.0), (12, 12), (3.0, 3.0), 0.3, EmissionFilter(1250, 1400), sensor, 0.05)


def test_recorded_images_clip_at_saturation_keeping_signal_and_background_in_proportion():
    from photonqd.exposure import recorded

    cam = _flat_camera()
    signal = np.full(cam.pixels, 1e-12)
    background = np.full(cam.pixels, 3e-12)
    signal[5, 5] = 1e-8                              # one bright pixel: 5e4 e- against a 1e4 e- well
    s, b, n = recorded(signal, background, 1e14, cam)      # 1e14 photons/s x 0.05 s
    dark = 100.0 * 0.05
    assert n == 1 and s[5, 5] + b[5, 5] == pytest.approx(1e4 - dark)
    assert s[5, 5] / b[5, 5] == pytest.approx(1e-8 / 3e-12)
    assert s[0, 0] == pytest.approx(1e-12 * 1e14 * 0.05) and b[0, 0] == pytest.approx(3e-12 * 1e14 * 0.05)


def test_auto_exposure_fills_the_brightest_pixel_to_the_set_fraction():
    """exposure_s = "auto": the brightest pixel's charge (light + dark) is full_well_fraction of
    saturation when that takes less than max_exposure_s, else the image gets max_exposure_s."""
    from photonqd.exposure import exposure_for, recorded
    from photonqd.study.config import CameraSettings

    cam = _flat_camera()
    image = np.full(cam.pixels, 1e-12)
    image[4, 4] = 2e-10
    settings = CameraSettings(exposure_s="auto", max_exposure_s=1.0, full_well_fraction=0.8)
    bright = exposure_for(settings, image, 1e14, cam)
    rate = 2e-10 * 1e14                               # e-/s in the brightest pixel
    assert bright.exposure_s == pytest.approx(0.8 * 1e4 / (rate + 100.0))
    s, _, n = recorded(image, np.zeros_like(image), 1e14, bright)
    assert n == 0 and s.max() + 100.0 * bright.exposure_s == pytest.approx(0.8 * 1e4)
    assert exposure_for(settings, image, 1e8, cam).exposure_s == 1.0          # dim: the limit
    assert exposure_for(CameraSettings(exposure_s=0.02), image, 1e14, cam).exposure_s == 0.02
    with pytest.raises(ValueError, match="^exposure_s: "):
        CameraSettings(exposure_s="sometimes")
    with pytest.raises(ValueError, match="^full_well_fraction: "):
        CameraSettings(full_well_fraction=1.5)


def test_a_fixed_exposure_that_saturates_is_reported(fast_backend):
    """The same study with a long fixed exposure: pixels clip, the image says how many, and the
    results file keeps it; "auto" keeps every pixel below saturation."""
    import tempfile

    from photonqd.io import load, save

    long = small(replace=[("seed = 4", 'seed = 4\ncorrection = "none"'), ('exposure_s = "auto"', "exposure_s = 10.0")])
    result = run_study(long, fast_backend)
    assert all(i.saturated_pixels > 0 for i in result.images if i.depth_mm == 1.0)
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/r.h5"
        save(result, path, {"backend": fast_backend, "device": "?"})
        again, _ = load(path)
    assert [i.saturated_pixels for i in again.images] == [i.saturated_pixels for i in result.images]
    assert [i.exposure_s for i in again.images] == [10.0] * len(result.images)
    auto = run_study(small(replace=[("seed = 4", 'seed = 4\ncorrection = "none"')]), fast_backend)
    assert all(i.saturated_pixels == 0 and i.exposure_s <= 1.0 for i in auto.images)


# --- time-gated detection in the study (photonqd.gating) ---------------------------------------

GATE = """
[gate]
repetition_rate_hz = 100000
pulse_width_s = 1e-8
delay_s = 1e-7
width_s = 9e-6
"""


def test_a_gated_probe_shares_the_ungated_ones_runs_and_scales_each_emitter(fast_backend):
    """A gated copy of the NIR-II probe: the same field runs (no new transport), its target and
    uptake images times the QD's gate factor, its autofluorescence times the tissue's (ns: ~0),
    its leakage times 0 (the gate opens after the pulse), its dark current times the duty."""
    from photonqd.gating import gate_factor, qd_gate_factor
    from photonqd.optics import qd_preset
    from photonqd.study.run import gate_factors

    text = SMALL_WITH_GATED
    cfg = parse_config(text)
    gated = cfg.probes[2]
    assert gated.gated and cfg.gate is not None
    result = run_study(cfg, fast_backend)
    fields = result.fields
    assert fields.emissions["NIR-II gated"] is fields.emissions["NIR-II"]
    g = gate_factors(cfg, gated, cfg.scene(1.0))
    assert g.qd == pytest.approx(float(qd_gate_factor(qd_preset("pbs_cds_1300"), cfg.gate.gate())))
    assert g.leakage == 0.0 and g.dark == pytest.approx(9e-6 * 1e5)
    assert g.autofluorescence == pytest.approx(float(gate_factor(0.2e-9, cfg.gate.gate())))
    assert g.autofluorescence < 1e-100
    for a, b in zip([i for i in result.images if i.probe == "NIR-II"],
                    [i for i in result.images if i.probe == "NIR-II gated"]):
        np.testing.assert_allclose(b.signal_per_photon, g.qd * a.signal_per_photon, rtol=1e-12)
        assert b.background_per_photon.sum() < a.background_per_photon.sum()
    again = parse_config(cfg.to_toml())
    assert again.gate == cfg.gate and again.probes == cfg.probes
    with pytest.raises(ConfigError, match=r"probe\[2\]\.gated: true needs a \[gate\] table"):
        parse_config(text.replace(GATE, ""))
    with pytest.raises(ConfigError, match="gate.width_s"):
        parse_config(text.replace("width_s = 9e-6", "width_s = 2e-5"))


SMALL_WITH_GATED = SMALL.replace("seed = 4", 'seed = 4\ncorrection = "none"') + GATE + """
[[probe]]
name = "NIR-II gated"
quantum_dot = "pbs_cds_1300"
concentration_uM = 0.1
window_nm = [1250, 1400]
sensor = "ingaas_standard"
gated = true
"""
