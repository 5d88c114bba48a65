"""Running a study: every depth of its configuration, by the adjoint method (photonqd.adjoint_study)
or by the forward path (``run_depth``: one excitation run and each probe's emission per depth)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from .. import phantom as phantoms
from ..fluorescence import emitter_key
from ..metrics import Footprint, auto_annulus, regions, target_metrics
from ..exposure import exposure_for, recorded
from ..scene import Fluorophore
from ..tallies import batch_mean_error
from .config import CameraSettings, ConfigError, StudyConfig
from .result import ProbeImage, StudyResult

#: A depth counts as detectable only where Monte Carlo resolved the target's signal this well.
MAX_MC_ERROR = 0.3


def run_study(config: StudyConfig, backend=None, done: StudyResult | None = None, on_depth=None,
              progress=None) -> StudyResult:
    """Run every depth not already in ``done``; ``on_depth(result)`` is called after each depth
    (the CLI saves the file there, so an interrupted study keeps its completed depths).
    config.method "adjoint" computes every depth from one set of field runs
    (photonqd.adjoint_study); "forward" runs each depth's excitation and emission."""
    if config.multiplex is not None:          # every depth at once from the same runs, saved when complete
        from ..multiplex import run_multiplex
        result = run_multiplex(config, backend, progress)
        if on_depth:
            on_depth(result)
        return result
    if config.method == "adjoint":
        from ..adjoint_study import run_adjoint_study
        return run_adjoint_study(config, backend, done, on_depth, progress)
    result = done if done is not None else StudyResult(config)
    for depth in config.depths_mm:
        if depth in result.completed_depths():
            continue
        result.images = [i for i in result.images if i.depth_mm != depth]  # drop a partial depth
        result.images.extend(run_depth(config, depth, backend, result.provenance, progress))
        if on_depth:
            on_depth(result)
    return result


def run_depth(config: StudyConfig, depth_mm: float, backend=None, provenance=None,
              progress=None) -> list[ProbeImage]:
    """An excitation run at ``depth_mm`` per distinct probe excitation (wavelength and uptake: the
    tissue with the QD's non-specific uptake; and the target's QD where it shadows itself), then
    every probe's QD in the target and its emission through the probe's camera."""
    scene = config.scene(depth_mm)
    if scene.target is None or not scene.target.any():
        raise ConfigError(f"phantom: {config.phantom} defines no target to label")
    centre = target_centre(scene)
    cameras = {p.name: config.camera_for(p, centre) for p in config.probes}
    scene = scene.with_fluorophores()   # the target's QD: through the stored fluence unless it shadows itself
    stages = excitation_stages(config, scene, centre, cameras, config.photons, backend, progress)
    out = []
    for probe in config.probes:
        t0 = time.perf_counter()
        stage, present, excite_seconds, sharing = stages[stage_key(config, scene, probe)]
        labelled = label_probe(config, scene, probe, present)
        gate = gate_factors(config, probe, scene)
        camera = gate.camera(cameras[probe.name])
        # more emission photons until the target's contrast is resolved (or the cap is reached):
        # the target alone emits, so excitation noise scales the contrast but cannot create it
        n = config.emission_photons
        while True:
            image = labelled.image(stage, cameras[probe.name], n, backend, config.seed, progress=progress,
                                   keep_batches=True)
            signal, background = split_image(image, gate)
            rate = stage.excitation.photons_per_s
            exposed = exposure_for(config.camera, signal + background, rate, camera)
            signal_e, background_e, saturated = recorded(signal, background, rate, exposed)
            annulus = background_annulus(config.camera, signal_e, exposed, centre)
            error = _contrast_rel_error(image, camera, centre, config.camera.target_radius_mm, annulus)
            if error <= MAX_MC_ERROR or n >= config.max_emission_photons:
                break
            n = min(4 * n, config.max_emission_photons)
        metrics = target_metrics(signal_e, background_e, exposed, centre, config.camera.target_radius_mm,
                                 annulus, config.background.clutter)
        out.append(ProbeImage(depth_mm, probe.name, signal_e, background_e, signal, background, metrics,
                              error, excite_seconds / sharing + time.perf_counter() - t0, n,
                              background_annulus_mm=tuple(annulus), exposure_s=exposed.exposure_s,
                              saturated_pixels=saturated))
        if provenance is not None:
            _merge_provenance(provenance, image.provenance.to_dict(), image.notes)
    return out


#: Self-shadowing 3 d_mu_a mu_s' R^2 above which the target's QD is put in the excitation transport
#: rather than excited through the stored fluence (first order). In diffusion theory a sphere of
#: radius R absorbing d_mu_a more than its host, in a uniform fluence, lowers its own mean fluence
#: by 0.4 (k R)^2 to lowest order, k^2 = d_mu_a / D = 3 d_mu_a mu_s' (interior sinh(kr)/r matched in
#: fluence and flux to the exterior): 2 % at 0.05. Measured with the engine, where R is under a
#: transport length and diffusion holds poorly: 31 % at 0.44 (R 0.5 mm, 10 µM), 0.2-0.3 % at 0.004
#: (the default study; review of the study's physics, §3.1).
SHADOWING_LIMIT = 0.05


def self_shadowing(config: StudyConfig, scene, probe, target_voxels: int | None = None) -> float:
    """3 d_mu_a mu_s' R^2 of ``probe``'s target in ``scene``: d_mu_a the QD's excess absorption at
    the probe's excitation wavelength, mu_s' the target tissue's reduced scattering there (the
    largest over its labels), R the radius of the sphere of the target's volume (of
    ``target_voxels`` voxels when given: the same target at another depth)."""
    wavelength = config.excitation_for((0.0, 0.0), probe).wavelength_nm
    excess = probe.concentration_uM - probe.background_concentration_uM
    d_mua = excess * float(config.quantum_dot(probe.quantum_dot).mua_per_uM([wavelength])[0])
    labels = np.unique(scene.labels[scene.target])
    reduced = max(float(np.max(scene.tissues[int(label)].properties([wavelength]).mus_reduced)) for label in labels)
    count = np.count_nonzero(scene.target) if target_voxels is None else target_voxels
    volume = float(count * np.prod(np.broadcast_to(scene.voxel_size, (3,))))
    radius = (3 * volume / (4 * np.pi)) ** (1 / 3)
    return 3 * d_mua * reduced * radius**2


def shadowed(config: StudyConfig, scene, probe, target_voxels: int | None = None) -> bool:
    return self_shadowing(config, scene, probe, target_voxels) > SHADOWING_LIMIT


def excitation_stages(config: StudyConfig, scene, centre, cameras, photons: int, backend=None, progress=None,
                      keep_batches: bool = False) -> dict:
    """{key: (stage, {"uptake": Fluorophore or None, "target": Fluorophore or None} present in it,
    seconds, probes sharing it)}: one excitation run per distinct probe wavelength and uptake
    (StudyConfig.excitation_key), and one per probe whose target shadows itself (key: its name)."""
    out = {}
    for probe in config.probes:
        key = stage_key(config, scene, probe)
        if key in out:
            stage, present, seconds, sharing = out[key]
            out[key] = (stage, present, seconds, sharing + 1)
            continue
        present = {"uptake": uptake_fluorophore(config, scene, probe),
                   "target": target_fluorophore(config, scene, probe) if shadowed(config, scene, probe) else None}
        start = time.perf_counter()
        stage = scene.with_fluorophores(*[f for f in present.values() if f is not None]).excite(
            config.excitation_for(centre, probe), cameras[probe.name], photons, backend, config.seed, progress,
            keep_batches=keep_batches)
        out[key] = (stage, present, time.perf_counter() - start, 1)
    return out


def stage_key(config: StudyConfig, scene, probe):
    """The key of ``probe``'s excitation stage in excitation_stages."""
    return probe.name if shadowed(config, scene, probe) else config.excitation_key(probe)


def target_fluorophore(config: StudyConfig, scene, probe) -> Fluorophore:
    """``probe``'s QD in the target at its excess over the non-specific uptake."""
    excess = probe.concentration_uM - probe.background_concentration_uM
    return Fluorophore(config.quantum_dot(probe.quantum_dot), np.where(scene.target, excess, 0.0))


def uptake_fluorophore(config: StudyConfig, scene, probe) -> Fluorophore | None:
    """``probe``'s non-specific uptake: its QD at concentration / target_to_background in every
    tissue voxel (None without uptake)."""
    uptake = probe.background_concentration_uM
    if not uptake > 0:
        return None
    return Fluorophore(config.quantum_dot(probe.quantum_dot), np.where(scene.labels > 0, uptake, 0.0))


def label_probe(config: StudyConfig, scene, probe, present: dict | None = None):
    """``scene`` with ``probe``'s QD as species 0 in the target, at its excess over the uptake, and
    the uptake as species 1: the target's own contrast stays one emitter, the uptake joins the
    background. ``present``: the fluorophores the excitation stage held (excitation_stages), reused
    so that their absorption there is used; the others are excited through the stored fluence."""
    present = present or {}
    target = present.get("target") or target_fluorophore(config, scene, probe)
    uptake = present.get("uptake") or uptake_fluorophore(config, scene, probe)
    return scene.with_fluorophores(*[f for f in (target, uptake) if f is not None])


@dataclass(frozen=True)
class GateFactors:
    """What a probe's time gate keeps of each emitter's CW image (all 1 without a gate;
    photonqd.gating): the QD's (target and uptake), the tissue autofluorescence's, the excitation
    leakage's, and the sensor's dark charge."""

    qd: float = 1.0
    autofluorescence: float = 1.0
    leakage: float = 1.0
    dark: float = 1.0

    def camera(self, camera):
        """``camera`` with its sensor's dark current scaled by the gate's duty."""
        if self.dark == 1.0:
            return camera
        sensor = dataclasses.replace(camera.sensor, dark_current_e_per_s=camera.sensor.dark_current_e_per_s * self.dark)
        return dataclasses.replace(camera, sensor=sensor)


def gate_factors(config: StudyConfig, probe, scene) -> GateFactors:
    """``probe``'s gate factors. The autofluorescence takes the longest lifetime among the scene's
    tissues (the most that passes the gate: an upper bound where the tissues' lifetimes differ)."""
    if not probe.gated:
        return GateFactors()
    from ..gating import dark_duty_factor, gate_factor, leakage_factor, qd_gate_factor

    gate = config.gate.gate()
    lifetimes = [af.lifetime_ns for af in (scene.autofluorescence_of(label) for label in scene.tissues)
                 if af is not None and af.yield_per_absorbed > 0]
    if any(t is None for t in lifetimes):
        raise ConfigError(f"probe {probe.name!r}: gated, but a tissue's autofluorescence has no lifetime_ns")
    af = float(gate_factor(max(lifetimes) * 1e-9, gate)) if lifetimes else 1.0
    return GateFactors(float(qd_gate_factor(config.quantum_dot(probe.quantum_dot), gate)), af, float(leakage_factor(gate)),
                       float(dark_duty_factor(gate)))


def split_image(image, gate: GateFactors = GateFactors()) -> tuple[np.ndarray, np.ndarray]:
    """(signal, background) per excitation photon on the unbinned pixels of a probe's image from a
    label_probe scene: the target's QD; autofluorescence, leakage and the uptake; each times its
    gate factor."""
    background = image.autofluorescence_per_photon * gate.autofluorescence + image.leakage_per_photon * gate.leakage
    return image.signal_per_photon[0] * gate.qd, background + image.signal_per_photon[1:].sum(axis=0) * gate.qd


def background_annulus(settings: CameraSettings, signal_e, camera, centre) -> tuple:
    """The background annulus of one image: the configured one, or for "auto" the one outside the
    target's own spread in ``signal_e`` (photonqd.metrics.auto_annulus)."""
    if settings.auto_annulus:
        return auto_annulus(signal_e, camera, centre, settings.target_radius_mm)
    return settings.background_annulus_mm


def _contrast_rel_error(image, camera, centre, target_radius_mm: float, annulus) -> float:
    """Monte Carlo relative standard error of the target's signal contrast S_target - S_background
    (the CNR's numerator), from the QD emission run's batch images (batch means)."""
    run = image.emission.get(emitter_key(0))
    if run is None:
        return float("nan")
    target, ring = regions(camera, centre, target_radius_mm, annulus)
    contrast = np.array([_contrast(camera.bin_image(b["exit_map"]), target, ring) for b in run.batch_tallies])
    mean, error = batch_mean_error(contrast, run.batch_photons)
    return float(error / abs(mean)) if mean != 0 else float("inf")


def _contrast(image, target, ring) -> float:
    return float(image[target].mean() - image[ring].mean())


def target_centre(scene) -> Footprint:
    """The target's projection onto the surface: its centroid's (x, y) in mm, on which the camera
    and the beam are centred, and, for a target that runs through the whole phantom along x or y
    (a capillary), that axis: its image regions and profile are then taken across it."""
    x, y, _ = phantoms.target_centre_mm(scene)
    columns = scene.target.any(axis=2)
    spans = (bool(columns.any(axis=1).all()), bool(columns.any(axis=0).all()))
    return Footprint(x, y, spans.index(True) if spans.count(True) == 1 else None)


def _merge_provenance(into: dict, new: dict, notes) -> None:
    for key, value in new.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        elif isinstance(value, list):
            existing = into.setdefault(key, [])
            existing.extend(v for v in value if v not in existing)
    existing = into.setdefault("notes", [])
    existing.extend(n for n in notes if n not in existing)
