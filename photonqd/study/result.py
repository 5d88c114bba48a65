"""What a study produces: per depth and probe the images and target metrics (``ProbeImage``), and
per probe the depth limit they decide (``StudyResult``); ``estimate_photons`` says beforehand how
many photons a study launches."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..decision import DETECTABLE, DepthLimit, depth_limit, verdict
from ..metrics import TargetMetrics
from .config import StudyConfig


@dataclass
class ProbeImage:
    """One probe at one depth: images per binned pixel and the target metrics."""

    depth_mm: float
    probe: str
    signal_e: np.ndarray               # QD signal, electrons per binned pixel over the exposure
    background_e: np.ndarray           # autofluorescence + excitation leakage, same units
    signal_per_photon: np.ndarray      # detected QD photoelectrons per excitation photon, unbinned
    background_per_photon: np.ndarray
    metrics: TargetMetrics
    signal_rel_error: float            # Monte Carlo relative standard error of the target's contrast
    seconds: float
    emission_photons: int              # emission (forward) or adjoint photons per emitter it took
    errors: dict = field(default_factory=dict)   # metric name -> Monte Carlo standard error
    error_budget: dict = field(default_factory=dict)   # run -> its share of the criterion's error
    background_annulus_mm: tuple = (float("nan"), float("nan"))   # the background region the metrics used
    exposure_s: float = float("nan")         # the exposure the image was taken with (photonqd.exposure)
    saturated_pixels: int = 0                # binned pixels clipped at the sensor's saturation


@dataclass
class StudyResult:
    config: StudyConfig
    images: list = field(default_factory=list)        # ProbeImage, in run order
    provenance: dict = field(default_factory=dict)
    # the adjoint study's field runs and target corrections, kept in memory (not saved) for
    # studies that reuse them (photonqd.sensitivity)
    fields: object = field(default=None, repr=False, compare=False)
    corrections: dict = field(default_factory=dict, repr=False, compare=False)
    # a [multiplex] study's channels x species figures (photonqd.multiplex.MultiplexResult)
    multiplex: object = field(default=None, repr=False, compare=False)

    def completed_depths(self) -> list:
        probes = {p.name for p in self.config.probes}
        done = sorted({i.depth_mm for i in self.images})
        return [d for d in done if {i.probe for i in self.images if i.depth_mm == d} >= probes]

    def metric(self, probe: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(depths, values) of one metric for one probe."""
        rows = sorted((i.depth_mm, getattr(i.metrics, name)) for i in self.images if i.probe == probe)
        return np.array([r[0] for r in rows]), np.array([r[1] for r in rows])

    def criterion_error(self, image: ProbeImage) -> float:
        """Monte Carlo standard error of the criterion at one image: from the image's metric
        errors (adjoint), else the relative error of the target's contrast (forward) times the
        value."""
        name = self.config.criterion
        if name in image.errors:
            return float(image.errors[name])
        return abs(getattr(image.metrics, name)) * image.signal_rel_error

    def verdict(self, image: ProbeImage) -> str:
        """"yes", "no" or "undecided": the criterion against the threshold with its Monte Carlo
        error (photonqd.decision)."""
        return verdict(getattr(image.metrics, self.config.criterion), self.criterion_error(image),
                       self.config.threshold, self.config.z)

    def detectable(self, image: ProbeImage) -> bool:
        """Decided detectable: the criterion exceeds the threshold by config.z standard errors."""
        return self.verdict(image) == DETECTABLE

    def depth_limit(self, probe: str) -> DepthLimit:
        """``probe``'s depth limit with its interval (photonqd.decision.depth_limit)."""
        images = sorted((i for i in self.images if i.probe == probe), key=lambda i: i.depth_mm)
        return depth_limit([i.depth_mm for i in images],
                           [getattr(i.metrics, self.config.criterion) for i in images],
                           [self.criterion_error(i) for i in images], self.config.threshold, self.config.z)

    def max_depth(self, probe: str) -> float:
        """The depth limit's estimate (mm): the interpolated crossing of the threshold, or the
        deepest depth when the limit lies beyond the studied range; NaN when unresolved."""
        limit = self.depth_limit(probe)
        return limit.estimate if limit.status in ("crossing", "beyond") else float("nan")


def estimate_photons(config: StudyConfig, n_depths: int) -> tuple[int, int]:
    """Photons ``n_depths`` depths launch: (every run at its first count, every run raised to its
    cap). Forward: per depth the excitation runs (one per distinct probe excitation) and each
    probe's emission ladder. Adjoint: the excitation runs, two adjoint runs per probe (QD,
    autofluorescence), and per depth (at most) the target correction's pairs (excitation per
    wavelength, and each probe's adjoint from the pixel over the target)."""
    probes = len(config.probes)
    # one excitation run per distinct probe wavelength and uptake (StudyConfig.excitation_key)
    excitations = len({config.excitation_key(p) for p in config.probes})
    if config.method == "adjoint":
        corrected = 0 if config.correction == "none" else n_depths
        wavelengths = len({config.excitation_key(p)[0] for p in config.probes})
        fixed = corrected * config.correction_photons * 2 * (wavelengths + probes)   # pairs: with, without
        return (excitations * config.photons + 2 * probes * config.adjoint_photons + fixed,
                (excitations + 2 * probes) * config.max_adjoint_photons + fixed)
    return (n_depths * (excitations * config.photons + probes * config.emission_photons),
            n_depths * (excitations * config.photons + probes * _emission_ladder(config)))


def _emission_ladder(config: StudyConfig) -> int:
    """Emission photons of one probe raised (x4) up to the cap: every attempt is run."""
    n, total = config.emission_photons, config.emission_photons
    while n < config.max_emission_photons:
        n = min(4 * n, config.max_emission_photons)
        total += n
    return total
