"""Adjoint study against the forward path (``photonqd study --verify DEPTHS``).

At each chosen depth the forward path runs as photonqd.study.run_depth does (an excitation run
per distinct probe excitation, with the target's tissue in place and the QD's non-specific uptake,
then each probe's QD, uptake and autofluorescence emission runs), with batches kept, and the
region means the metrics are built from -- QD signal and background (autofluorescence + uptake +
leakage) over the target disk and the background annulus -- are compared with the adjoint
study's as z = (adjoint - forward) / sqrt(s_adjoint^2 + s_forward^2).

Forward errors (batch means): the emission runs' own batches, plus the excitation run's share to
first order (the relative batch error of the source it hands to the emission: the QD absorption
summed over the target, the autofluorescence and uptake sources summed over the volume, the
leakage image).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .fluorescence import emitter_key
from .metrics import regions
from .exposure import recorded
from .noise import electrons
from .tallies import batch_mean_error

QUANTITIES = (("signal_target_e", "S target"), ("signal_ring_e", "S ring"),
              ("background_target_e", "B target"), ("background_ring_e", "B ring"))


#: Relative error of a forward value above which its comparison is reported as unresolved, not as
#: a z-score (the forward study's own resolution target for a contrast, photonqd.study.run).
FORWARD_RESOLVED = 0.3


@dataclass
class Comparison:
    probe: str
    depth_mm: float
    quantity: str                 # a TargetMetrics field (electrons per binned pixel)
    adjoint: float
    adjoint_error: float
    forward: float
    forward_error: float

    @property
    def resolved(self) -> bool:
        """Whether the forward value is resolved (relative error <= FORWARD_RESOLVED): a forward
        run that detected nothing, or a handful of photons, has a batch-means error of about zero
        or far too small, and its z would say nothing."""
        return self.forward > 0 and self.forward_error <= FORWARD_RESOLVED * abs(self.forward)

    @property
    def z(self) -> float:
        s = math.hypot(self.adjoint_error, self.forward_error)
        return (self.adjoint - self.forward) / s if s > 0 else (0.0 if self.adjoint == self.forward else math.inf)

    def as_dict(self) -> dict:
        return {"probe": self.probe, "depth_mm": self.depth_mm, "quantity": self.quantity,
                "adjoint": self.adjoint, "adjoint_error": self.adjoint_error, "forward": self.forward,
                "forward_error": self.forward_error, "z": self.z, "resolved": self.resolved}


def _rel(values, photons) -> float:
    values = np.asarray(values, dtype=np.float64)
    mean, err = batch_mean_error(values, np.asarray(photons, dtype=np.float64))
    return err / abs(mean) if mean != 0 else 0.0


def forward_regions(config, depth_mm: float, backend=None, excitation_photons=None, emission_photons=None,
                    progress=None, annuli: dict | None = None, exposures: dict | None = None) -> dict:
    """{probe: {quantity: (value, standard error)}} from the forward path at one depth, over the
    background annulus ``annuli[probe]`` and with the exposure ``exposures[probe]`` (default: the
    configured ones; "auto" needs them: the adjoint study's)."""
    from .study import target_centre
    from .study.run import excitation_stages, gate_factors, label_probe, split_image, stage_key

    scene = config.scene(depth_mm)
    centre = target_centre(scene)
    cameras = {p.name: config.camera_for(p, centre) for p in config.probes}
    n_ex = int(excitation_photons or config.photons)
    n_em = int(emission_photons or config.emission_photons)
    stages = excitation_stages(config, scene, centre, cameras, n_ex, backend, progress, keep_batches=True)
    target_mask = np.asarray(scene.target, bool)
    tissue = scene.labels > 0       # the non-specific uptake's source: the fluence in every tissue voxel
    yields = np.zeros(max(scene.tissues) + 1)
    for label in scene.tissues:
        af = scene.autofluorescence_of(label)
        yields[label] = 0.0 if af is None else af.yield_per_absorbed
    af_source = yields[scene.labels]
    cam = config.camera
    out = {}
    for probe in config.probes:
        camera = dataclasses.replace(cameras[probe.name],
                                     exposure_s=(exposures or {}).get(probe.name, cameras[probe.name].exposure_s))
        stage, present, _, _ = stages[stage_key(config, scene, probe)]
        ex_batches, ex_photons = stage.result.batch_tallies, stage.result.batch_photons
        # the excitation's share: relative batch errors of what it hands to the emission runs
        qd_rel = _rel([b["fluence"][target_mask].sum() for b in ex_batches], ex_photons)
        af_rel = _rel([(np.clip(b["absorbed"], 0, None) * af_source).sum() for b in ex_batches], ex_photons)
        tissue_rel = _rel([b["fluence"][tissue].sum() for b in ex_batches], ex_photons)
        image = label_probe(config, scene, probe, present).image(stage, camera, n_em, backend, config.seed,
                                                        progress=progress, keep_batches=True)
        annulus = (annuli or {}).get(probe.name, cam.background_annulus_mm)
        masks = dict(zip(("target", "ring"), regions(camera, centre, cam.target_radius_mm, annulus)))
        rate = stage.excitation.photons_per_s
        gate = gate_factors(config, probe, scene)
        camera = gate.camera(camera)
        # as the sensor records them (clipped at saturation), as the adjoint study's images are
        signal, background, _ = recorded(*split_image(image, gate), rate, camera)
        uptake = electrons(image.signal_per_photon[1:].sum(axis=0) * gate.qd, rate, camera)
        leak = image.leakage_per_photon * gate.leakage
        qd_run, uptake_run = image.emission.get(emitter_key(0)), image.emission.get(emitter_key(1))
        af_runs = [r for key, r in image.emission.items() if key.startswith("autofluorescence")]
        values = {}
        for region, mask in masks.items():
            def region_rel(run):
                return _rel([camera.bin_image(b["exit_map"])[mask].sum() for b in run.batch_tallies],
                            run.batch_photons)

            s = float(signal[mask].mean())
            s_err = s * math.hypot(region_rel(qd_run), qd_rel) if qd_run is not None else 0.0
            leak_e = float(np.mean((camera.bin_image(leak) * rate * camera.exposure_s)[mask]))
            uptake_e = float(uptake[mask].mean())
            uptake_err = uptake_e * math.hypot(region_rel(uptake_run), tissue_rel) if uptake_run else 0.0
            af_e = float(background[mask].mean()) - leak_e - uptake_e
            af_em = max((region_rel(r) for r in af_runs), default=0.0)
            leak_err = 0.0
            if leak_e > 0:
                leak_rel = _rel([camera.bin_image(b["exit_map"])[mask].sum() for b in ex_batches], ex_photons)
                leak_err = leak_e * leak_rel
            b_err = math.sqrt((af_e * af_em) ** 2 + (af_e * af_rel) ** 2 + leak_err**2 + uptake_err**2)
            prefix = "target" if region == "target" else "ring"
            values[f"signal_{prefix}_e"] = (s, s_err)
            values[f"background_{prefix}_e"] = (float(background[mask].mean()), b_err)
        out[probe.name] = values
    return out


def check_depths(config, depths) -> list[float]:
    """``depths`` (--verify) as depths of the study, or a ConfigError naming the allowed ones; the
    CLI checks them before the study runs. A study's depths lie in its phantom's range
    (parse_config), so these do too."""
    from .study import ConfigError

    out = []
    for depth in depths:
        match = next((d for d in config.depths_mm if math.isclose(d, depth, abs_tol=1e-9)), None)
        if match is None:
            raise ConfigError(f"--verify: {depth:g} mm is not a depth of the study; allowed: "
                              f"{', '.join(f'{d:g}' for d in config.depths_mm)} mm")
        out.append(match)
    return out


def verify(result, depths, backend=None, excitation_photons=None, emission_photons=None,
           progress=None) -> list[Comparison]:
    """Adjoint study ``result`` against the forward path at ``depths`` (each one of the study's)."""
    config = result.config
    rows = []
    for depth in check_depths(config, depths):
        matches = [i for i in result.images if i.depth_mm == depth]
        if not matches:
            raise ValueError(f"--verify: the study has no images at {depth:g} mm (not run yet)")
        # the adjoint study's own regions, so that both sides average the same pixels
        annuli = {i.probe: i.background_annulus_mm for i in matches}
        exposures = {i.probe: i.exposure_s for i in matches}
        forward = forward_regions(config, depth, backend, excitation_photons, emission_photons, progress, annuli,
                                  exposures)
        for img in matches:
            for name, _ in QUANTITIES:
                value, error = forward[img.probe][name]
                rows.append(Comparison(img.probe, img.depth_mm, name, getattr(img.metrics, name),
                                       img.errors.get(name, float("nan")), value, error))
    return rows


def format_comparisons(rows) -> str:
    """The comparison table; z only where the forward value is resolved (Comparison.resolved)."""
    lines = [f"{'probe':10s}{'depth':>7s}  {'quantity':10s}{'adjoint':>24s}{'forward':>24s}{'z':>7s}"]
    for r in rows:
        label = dict(QUANTITIES)[r.quantity]
        z = f"{r.z:7.2f}" if r.resolved else "  unres"
        lines.append(f"{r.probe:10s}{r.depth_mm:7.3g}  {label:10s}{r.adjoint:13.4g} ± {r.adjoint_error:8.2g}"
                     f"{r.forward:13.4g} ± {r.forward_error:8.2g}{z}")
    finite = [abs(r.z) for r in rows if r.resolved and math.isfinite(r.z)]
    if finite:
        lines.append(f"max |z| = {max(finite):.2f} over {len(finite)} comparisons "
                     f"({sum(z > 3 for z in finite)} above 3)")
    unresolved = sum(not r.resolved for r in rows)
    if unresolved:
        lines.append(f"{unresolved} comparisons unresolved (unres): the forward run detected too few photons "
                     f"there (relative error > {FORWARD_RESOLVED:.0%}, or none); raise --verify-photons")
    return "\n".join(lines)
