"""Running a study: every depth of its configuration, by the adjoint method (photonqd.adjoint_study)
or by the forward path (``run_depth``: one excitation run and each probe's emission per depth)."""

from __future__ import annotations

import time

import numpy as np

from .. import phantom as phantoms
from ..fluorescence import emitter_key
from ..metrics import regions, target_metrics
from ..optics import qd_preset
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
    """One excitation run at ``depth_mm`` (tissue only), then every probe's QD in the target and its
    emission through the probe's camera."""
    scene = config.scene(depth_mm)
    if scene.target is None or not scene.target.any():
        raise ConfigError(f"phantom: {config.phantom} defines no target to label")
    centre = target_centre(scene)
    excitation = config.excitation_for(centre)
    cameras = {p.name: config.camera_for(p, centre) for p in config.probes}
    scene = scene.with_fluorophores()   # tissue only: each probe's QD is excited through the stored fluence
    start = time.perf_counter()
    stage = scene.excite(excitation, cameras[config.probes[0].name], config.photons, backend,
                         config.seed, progress)
    excite_seconds = time.perf_counter() - start
    out = []
    for probe in config.probes:
        t0 = time.perf_counter()
        labelled = scene.with_fluorophore(qd_preset(probe.quantum_dot),
                                          np.where(scene.target, probe.concentration_uM, 0.0))
        camera = cameras[probe.name]
        # more emission photons until the target's contrast is resolved (or the cap is reached):
        # the target alone emits, so excitation noise scales the contrast but cannot create it
        n = config.emission_photons
        while True:
            image = labelled.image(stage, camera, n, backend, config.seed, progress=progress,
                                   keep_batches=True)
            error = _contrast_rel_error(image, camera, centre, config.camera)
            if error <= MAX_MC_ERROR or n >= config.max_emission_photons:
                break
            n = min(4 * n, config.max_emission_photons)
        metrics = target_metrics(image.signal_e, image.background_e, camera, centre,
                                 config.camera.target_radius_mm, config.camera.background_annulus_mm)
        out.append(ProbeImage(depth_mm, probe.name, image.signal_e, image.background_e,
                              image.signal_per_photon.sum(axis=0), image.background_per_photon, metrics,
                              error, excite_seconds / len(config.probes) + time.perf_counter() - t0, n))
        if provenance is not None:
            _merge_provenance(provenance, image.provenance.to_dict(), image.notes)
    return out


def _contrast_rel_error(image, camera, centre, settings: CameraSettings) -> float:
    """Monte Carlo relative standard error of the target's signal contrast S_target - S_background
    (the CNR's numerator), from the QD emission run's batch images (batch means)."""
    run = image.emission.get(emitter_key(0))
    if run is None:
        return float("nan")
    target, ring = regions(camera, centre, settings.target_radius_mm, settings.background_annulus_mm)
    contrast = np.array([_contrast(camera.bin_image(b["exit_map"]), target, ring) for b in run.batch_tallies])
    mean, error = batch_mean_error(contrast, run.batch_photons)
    return float(error / abs(mean)) if mean != 0 else float("inf")


def _contrast(image, target, ring) -> float:
    return float(image[target].mean() - image[ring].mean())


def target_centre(scene) -> tuple[float, float]:
    """(x, y) in mm of the target's centroid: the camera and the beam are centred on it."""
    return phantoms.target_centre_mm(scene)[:2]


def _merge_provenance(into: dict, new: dict, notes) -> None:
    for key, value in new.items():
        if isinstance(value, dict):
            into.setdefault(key, {}).update(value)
        elif isinstance(value, list):
            existing = into.setdefault(key, [])
            existing.extend(v for v in value if v not in existing)
    existing = into.setdefault("notes", [])
    existing.extend(n for n in notes if n not in existing)
