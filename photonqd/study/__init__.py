"""Depth studies: how deep does a QD-labelled target stay detectable, per probe?

A study images a QD-labelled target at each depth of a phantom generator, through each probe (QD,
its concentration and non-specific uptake, detection window, camera): by reciprocity from one set
of field runs for every depth (method "adjoint", photonqd.adjoint_study), or by an excitation run
and each probe's emission per depth (method "forward"). Each probe's QD is excited through the
stored fluence (first order: the QD's own absorption does not attenuate the excitation light).
Per depth and probe the result holds the signal (the target's own QD light) and background
(autofluorescence, the QD's uptake outside the target, excitation leakage) images and the target
metrics with their Monte Carlo errors (photonqd.metrics; the CNR's noise includes the camera's
and the background's clutter); per probe, the depth limit decided at study.z standard errors
(photonqd.decision: default CNR >= 3 at 2 standard errors).

Configuration is TOML (see photonqd/data/default_study.toml, the default study); every key is
validated before anything runs, with errors naming the key and the allowed values.

Modules: ``config`` (the configuration as validated objects, read from and written back to TOML),
``result`` (images, metrics and depth limits), ``run`` (the run loop and the forward path).
"""

from .config import (CORRECTIONS, CRITERIA, METHODS, SCENES, BackgroundSettings, CameraSettings, ConfigError,
                     ExcitationSettings, Probe, StudyConfig, default_config_text, parse_config)
from .result import ProbeImage, StudyResult, estimate_photons
from .run import run_depth, run_study, target_centre

__all__ = ["CORRECTIONS", "CRITERIA", "METHODS", "SCENES", "BackgroundSettings", "CameraSettings", "ConfigError", "ExcitationSettings", "Probe",
           "StudyConfig", "default_config_text", "parse_config", "ProbeImage", "StudyResult", "estimate_photons",
           "run_depth", "run_study", "target_centre"]
