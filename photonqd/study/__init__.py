"""Depth studies: how deep does a QD-labelled target stay detectable, per probe?

A study runs a phantom generator at each target depth. Per depth, one excitation run (tissue only)
serves every probe (QD + detection window + camera): each probe's QD is excited through the stored
fluence (first order: the QD's own absorption does not attenuate the excitation light, accurate
while mu_a,QD x target size << 1; the provenance notes it). Per depth and probe the result holds
the signal and background images and the target metrics (photonqd.metrics); per probe, the deepest
depth at which the criterion (default CNR >= 3) still holds.

Configuration is TOML (see photonqd/data/default_study.toml, the default study); every key is
validated before anything runs, with errors naming the key and the allowed values.

Modules: ``config`` (the configuration as validated objects, read from and written back to TOML),
``result`` (images, metrics and depth limits), ``run`` (the run loop and the forward path).
"""

from .config import (CORRECTIONS, CRITERIA, METHODS, SCENES, CameraSettings, ConfigError, ExcitationSettings, Probe,
                     StudyConfig, default_config_text, parse_config)
from .result import ProbeImage, StudyResult, estimate_photons
from .run import run_depth, run_study, target_centre

__all__ = ["CORRECTIONS", "CRITERIA", "METHODS", "SCENES", "CameraSettings", "ConfigError", "ExcitationSettings", "Probe",
           "StudyConfig", "default_config_text", "parse_config", "ProbeImage", "StudyResult", "estimate_photons",
           "run_depth", "run_study", "target_centre"]
