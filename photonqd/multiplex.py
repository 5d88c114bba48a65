"""Multiplexed QD imaging: N species in one target under one excitation, C detection channels,
crosstalk and linear unmixing at every depth (a study with a [multiplex] table,
photonqd.study.multiplex_table).

Each (channel, species) pair is a probe of the adjoint depth study (photonqd.adjoint_study): one
adjoint run per pair and one autofluorescence run per channel (shared by its species), one
excitation run for all. At each depth and channel c, over the channel's own auto exposure (set by
everything it collects: all species and the background), with the study's camera and regions:

* A[c, s]: species s's contrast in channel c at its nominal concentration: its mean over the
  target region minus its mean over the background region, electrons per binned pixel (the
  numerator of the study's CNR);
* var_c: the noise variance of a background pixel of channel c: the camera's (shot noise of all
  it collects, dark, read) plus clutter (kappa x its level)^2, as the study's CNR uses.

With ``autofluorescence = "component"`` the target region's own light is unmixed instead: A[c, s] is
species s's mean over the target region, autofluorescence an extra column (its level over the
target per channel, its abundance free, as in vivo where its level is not known beforehand),
excitation leakage (known from the filter) subtracted, and var_c the noise of a target pixel.

Channels are read separately, so their noise is independent: S = diag(var_c). Weighted least
squares (photonqd.unmixing) gives the abundances' covariance (A^T S^-1 A)^-1; with the true
abundances 1, species s's unmixed CNR is 1 / its standard error (with one species and one
channel: the study's CNR). A species no channel sees, or whose spectrum the channels cannot tell
from the others', is reported not separable (NaN). Design figures: the crosstalk matrix (the
fraction of each species' contrast in each channel) and the condition number of the whitened,
column-normalised A of the species inside some channel's band.

Errors: every figure is recomputed with one run's batch k in place of its mean (the excitation
run and the target correction's excitation pair move every pair at once; a pair's adjoint run
moves its species in its channel; a channel's autofluorescence run moves its background); the
batch-means variances of independent runs add (as photonqd.adjoint_study). A species' separable
depth is where its unmixed CNR crosses the study's threshold, decided at study.z standard errors
(photonqd.decision).

Limits: the species are co-located (one target) and carry no non-specific uptake; photons are not
refined towards the separable depths (study.adjoint_photons are used as given).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from .decision import DepthLimit, depth_limit, verdict
from .adjoint_study import _Variant
from .exposure import exposure_for, recorded
from .fluorescence import MIN_BAND_FRACTION
from .metrics import auto_annulus, regions
from .noise import pixel_variance
from .tallies import batch_mean_error
from .unmixing import condition_number, crosstalk, unmix

#: Why a species whose emission no channel's band holds (MIN_BAND_FRACTION) is not separable.
OUTSIDE = (f"outside every channel's band (less than {MIN_BAND_FRACTION:g} of its emission detected in any, "
           "band times quantum efficiency)")


@dataclass
class MultiplexDepth:
    """The channels x species figures at one depth (C channels, N species)."""

    depth_mm: float
    signal_e: np.ndarray          # (C, N) A: each species' contrast (or, autofluorescence "component",
                                  #   its mean over the target region), electrons per binned pixel
    noise_e: np.ndarray           # (C,) noise of a background (target) pixel, camera + clutter, electrons
    background_e: np.ndarray      # (C,) background over the target region (AF + leakage), electrons
    exposure_s: np.ndarray        # (C,) each channel's exposure
    covariance: np.ndarray        # (N, N) of the unmixed abundances (1 = nominal concentration)
    cnr: np.ndarray               # (N,) unmixed CNR; NaN where not separable
    cnr_error: np.ndarray         # (N,) its Monte Carlo standard error
    separable: np.ndarray         # (N,) the channels can tell the species from the others
    reason: tuple                 # (N,) why not, "" where separable
    crosstalk: np.ndarray         # (C, N) fraction of species s's contrast in channel c
    crosstalk_error: np.ndarray   # (C, N)
    condition_number: float
    condition_number_error: float


@dataclass
class MultiplexResult:
    species: tuple
    channels: tuple               # photonqd.study.multiplex_table.Channel
    depths: list = field(default_factory=list)        # MultiplexDepth, by depth
    threshold: float = 3.0
    z: float = 2.0
    crosstalk_depth_mm: float = 2.0      # the depth the table and the plot show the crosstalk of

    def separable_depth(self, species: str) -> DepthLimit:
        """The deepest depth at which ``species`` stays separable (unmixed CNR >= threshold,
        decided at z standard errors)."""
        s = self.species.index(species)
        d = [x.depth_mm for x in self.depths]
        cnr = [x.cnr[s] for x in self.depths]
        err = [x.cnr_error[s] for x in self.depths]
        if not any(x.separable[s] for x in self.depths):
            return DepthLimit(math.nan, math.nan, math.nan, "unresolved")
        return depth_limit(d, cnr, err, self.threshold, self.z)

    def at(self, depth_mm: float) -> MultiplexDepth:
        """The studied depth nearest ``depth_mm``."""
        return min(self.depths, key=lambda x: abs(x.depth_mm - depth_mm))


def run_multiplex(config, backend=None, progress=None):
    """The study's images of every (channel, species) pair (a StudyResult, as run_adjoint_study
    without photon refinement) and, as its ``multiplex``, the MultiplexResult."""
    from .adjoint_study import ProbeDepths, StudyFields, _all_depths, _record_fields, _targets, contrasted_depths
    from .scene import NotLaterallyInvariant
    from .study import ConfigError, StudyResult

    if config.method != "adjoint":
        raise ConfigError("study.method: a [multiplex] study runs by reciprocity (\"adjoint\")")
    first = config.scene(config.depths_mm[0])
    if first.target is None or not first.target.any():
        raise ConfigError(f"phantom: {config.phantom} defines no target to label")
    try:
        fields = StudyFields(config, first, backend, progress)
    except NotLaterallyInvariant as err:
        raise ConfigError(str(err)) from None
    targets = _targets(config, first, fields)
    contrasted = contrasted_depths(config, fields, targets)
    corrected = {"all": list(targets), "contrasted": contrasted, "none": []}[config.correction]
    corrections = {}
    probes = {p.name: ProbeDepths(config, fields, p, fields.voxel) for p in config.probes}
    result = StudyResult(config, _all_depths(config, fields, targets, corrected, corrections, list(probes.values())))
    _record_fields(result.provenance, fields, result, config, contrasted, corrected)
    settings = config.multiplex
    out = MultiplexResult(settings.species, settings.channels, threshold=config.threshold, z=config.z,
                          crosstalk_depth_mm=settings.crosstalk_depth_mm)
    for depth, (_, voxels) in targets.items():
        op = next(iter(probes.values())).images.target(voxels)
        names = [[settings.probe_name(ch, s) for s in settings.species] for ch in settings.channels]
        pairs = [[probes[name].variants(voxels, op, corrections.get(depth)) for name in row] for row in names]
        runs = [[{run: _run(fields, corrections.get(depth), name, run) for run in groups}
                 for name, (_, groups) in zip(row, pair_row)] for row, pair_row in zip(names, pairs)]
        cameras = [probes[row[0]] for row in names]
        out.depths.append(_depth(config, depth, fields.axis, cameras, pairs, runs))
    result.fields, result.corrections, result.multiplex = fields, corrections, out
    return result


def _run(fields, correction, probe: str, run: str):
    """The transport run behind a pair's error group ``run`` (photonqd.adjoint_study.ProbeDepths.variants):
    pairs that share a run (the excitation; a channel's autofluorescence; identical channels'
    adjoint runs; the correction's excitation pair) move together in its batches."""
    if run == "excitation":
        return fields.excitation_of(next(p for p in fields.config.probes if p.name == probe))
    if run.startswith("adjoint "):
        return fields.emissions[probe][run.removeprefix("adjoint ")]
    return (correction.excitation if run == "target excitation" else correction.detection)[probe]


def _depth(config, depth_mm: float, axis, probes, pairs, runs) -> MultiplexDepth:
    """The figures at one depth from each pair's image variants (``pairs[c][s]``: (mean, groups)
    of photonqd.adjoint_study.ProbeDepths.variants; ``runs[c][s]``: each group's run); ``probes[c]``:
    a ProbeDepths of channel c (its camera and excitation)."""
    means = [[mean for mean, _ in row] for row in pairs]
    channels = _Channels(config, axis, probes, means)
    figures = channels.figures(means)
    errors = _errors(channels, pairs, runs, means, figures.size)
    n_c, n_s = len(pairs), len(pairs[0])
    _, _, background = channels.measure(means)
    result, A, unmixed_var = channels.unmixed(means)
    names = config.multiplex.species
    reason = tuple(_named(r, [*names, "autofluorescence"]) if inside else OUTSIDE
                   for r, inside in zip(result.reason, channels.inside))
    cnr, err = np.where(result.separable[:n_s], figures[:n_s], np.nan), errors[:n_s]
    separable = result.separable[:n_s]
    return MultiplexDepth(depth_mm, A[:, :n_s], np.sqrt(unmixed_var), background,
                          np.array([c.exposure_s for c in channels.cameras]), result.covariance[:n_s, :n_s], cnr,
                          np.where(separable, err, np.nan), separable, reason,
                          figures[n_s:n_s + n_c * n_s].reshape(n_c, n_s), errors[n_s:n_s + n_c * n_s].reshape(n_c, n_s),
                          float(figures[-1]), float(errors[-1]))


def detected_fraction(config, species: str, channel) -> float:
    """The fraction of ``species``' emitted photons that ``channel`` would count if its filter
    blocked everything outside its band: the emission in the band times the sensor's QE."""
    grid = np.linspace(*channel.window_nm, 401)
    pdf = config.quantum_dot(species).emission.pdf(grid) * config.sensor(channel.sensor).quantum_efficiency(grid)
    return float(np.trapezoid(pdf, grid))


def _named(reason: str, species) -> str:
    """photonqd.unmixing's reason with the species' names for its column indices."""
    return re.sub(r"species (\d+(?:, \d+)*)", lambda m: ", ".join(species[int(i)] for i in m.group(1).split(",")), reason)


class _Channels:
    """Each channel's camera with its exposure and its regions, from the mean images; then the
    figures of any set of images (the means, or one run's batch variant)."""

    def __init__(self, config, axis, probes, means):
        self.config, self.rate = config, probes[0].excitation.photons_per_s
        mux = config.multiplex
        # a species seen only through the filters' out-of-band leakage counts as seen by no channel
        self.inside = np.array([max(detected_fraction(config, s, ch) for ch in mux.channels) >= MIN_BAND_FRACTION
                                for s in mux.species])
        cam = config.camera
        self.component = mux.autofluorescence == "component"
        self.leakage = [row[0].leakage for row in means]
        self.cameras, self.regions = [], []
        for probe, row in zip(probes, means):
            signal = sum(v.signal for v in row)
            camera = exposure_for(cam, signal + row[0].background, self.rate, probe.camera)
            signal_e, _, _ = recorded(signal, row[0].background, self.rate, camera)
            annulus = auto_annulus(signal_e, camera, axis, cam.target_radius_mm) if cam.auto_annulus \
                else cam.background_annulus_mm
            self.cameras.append(camera)
            self.regions.append(regions(camera, axis, cam.target_radius_mm, annulus))

    def measure(self, images, component: bool = False):
        """(A (C, N), noise variance (C,), background over the target (C,)) of ``images[c][s]``
        (_Variant per pair; the background is the channel's, taken from s = 0): the species'
        contrasts and a background pixel's noise; ``component``: the species' and the
        autofluorescence's (a last column) means over the target region and a target pixel's noise."""
        kappa = self.config.background.clutter
        rows, var, back = [], [], []
        for c, (camera, (target, ring), row) in enumerate(zip(self.cameras, self.regions, images)):
            total = sum(v.signal for v in row)
            total_e, background_e, _ = recorded(total, row[0].background, self.rate, camera)
            # each part's share of the recorded (possibly clipped) image, pixel by pixel
            share = [np.divide(v.signal, total, out=np.zeros_like(total), where=total > 0) for v in row]
            back.append(float(background_e[target].mean()))
            if not component:
                rows.append([(total_e * f)[target].mean() - (total_e * f)[ring].mean() for f in share])
                level = total_e[ring] + background_e[ring]
            else:
                leak = self.leakage[c] if row[0].leakage is None else row[0].leakage
                background = row[0].background
                af = np.divide(background - leak, background, out=np.zeros_like(background), where=background > 0)
                rows.append([(total_e * f)[target].mean() for f in share] + [(background_e * af)[target].mean()])
                level = total_e[target] + background_e[target]
            var.append(float((pixel_variance(level, camera) + (kappa * level) ** 2).mean()))
        return np.array(rows), np.array(var), np.array(back)

    def unmixed(self, images):
        """The UnmixResult of ``images`` (species first; with the autofluorescence component last)."""
        if not self.component:
            A, var, _ = self.measure(images)
            A = A * self.inside
        else:
            A, var, _ = self.measure(images, component=True)
            A = A * np.append(self.inside, True)
        return unmix(A, A.sum(axis=1), var), A, var

    def figures(self, images) -> np.ndarray:
        """[unmixed CNR (N), crosstalk (C x N), condition number] of ``images``."""
        result, A, var = self.unmixed(images)
        n = len(self.inside)
        contrast = self.measure(images)[0] * self.inside if self.component else A
        with np.errstate(invalid="ignore", divide="ignore"):
            ct = crosstalk(np.clip(contrast, 0, None))
        # the design figure of what is unmixed, for the species the channels are meant for (inf
        # where they cannot be told apart)
        used = np.append(self.inside, True) if self.component else self.inside
        cond = condition_number(A[:, used], var) if self.inside.any() else math.nan
        # a species the channels cannot tell apart carries no information: CNR 0 (in a batch
        # variant; the mean reports it as not separable)
        return np.concatenate([np.where(result.separable, result.cnr, 0.0)[:n], ct.ravel(), [cond]])


def _errors(channels: _Channels, pairs, runs, means, size: int) -> np.ndarray:
    """Monte Carlo standard error of every figure: the batch-means variances of the runs, added;
    a run shared by several pairs moves them all in each of its batches."""
    var = np.zeros(size)
    groups = {}            # id(run) -> (photons, [(c, s, variants)])
    for c, (pair_row, run_row) in enumerate(zip(pairs, runs)):
        for s, ((_, variant_groups), run_of) in enumerate(zip(pair_row, run_row)):
            for run, (variants, photons) in variant_groups.items():
                groups.setdefault(id(run_of[run]), (photons, []))[1].append((c, s, run, variants))
    for photons, members in groups.values():
        values = []
        for k in range(len(photons)):
            images = [list(row) for row in means]
            for c, s, run, variants in members:
                if run.startswith("adjoint autofluorescence"):      # moves the channel's background
                    images[c][0] = _Variant(images[c][0].signal, variants[k].background, images[c][0].leakage)
                else:
                    images[c][s] = _Variant(variants[k].signal, images[c][s].background) if s else variants[k]
            values.append(channels.figures(images))
        values = np.array(values)
        for i in range(size):
            column = values[:, i]
            if np.all(np.isfinite(column)):
                var[i] += batch_mean_error(column, np.asarray(photons, dtype=np.float64))[1] ** 2
            elif not np.all(np.isnan(column)):
                var[i] = np.nan
    return np.sqrt(var)


# --- the table ---------------------------------------------------------------------------------------
def format_multiplex(result: MultiplexResult) -> str:
    """Separable depth per species, the crosstalk matrix at the settings' depth, and the unmixed
    CNR per depth, each with its Monte Carlo error."""
    lines = ["multiplex: separable depth (unmixed CNR >= "
             f"{result.threshold:g}, decided at {result.z:g} standard errors) [2-sigma interval]"]
    for s in result.species:
        limit = result.separable_depth(s)
        never = not any(d.separable[result.species.index(s)] for d in result.depths)
        lines.append(f"  {s:<16} {'not separable: ' + _reason(result, s) if never else limit.describe() + ' mm'}")
    lines.append("")
    return "\n".join(lines + format_crosstalk(result) + [""] + _cnr_table(result))


def _reason(result: MultiplexResult, species: str) -> str:
    s = result.species.index(species)
    return next((d.reason[s] for d in result.depths if d.reason[s]), "")


def format_crosstalk(result: MultiplexResult, depth_mm: float | None = None) -> list[str]:
    depth = result.at(result.crosstalk_depth_mm if depth_mm is None else depth_mm)
    width = max(12, *(len(s) + 2 for s in result.species))
    lines = [f"crosstalk at {depth.depth_mm:g} mm: fraction of each species' contrast (columns) in each channel "
             f"(rows), +- Monte Carlo error; condition number {depth.condition_number:.3g} "
             f"+- {depth.condition_number_error:.2g}",
             f"{'channel':<14}" + "".join(f"{s:>{width}}" for s in result.species)]
    for c, ch in enumerate(result.channels):
        cells = [f"{v:.3f}+-{e:.3f}" if math.isfinite(v) else "-" for v, e in
                 zip(depth.crosstalk[c], depth.crosstalk_error[c])]
        lines.append(f"{ch.name:<14}" + "".join(f"{x:>{width}}" for x in cells))
    return lines


def _cnr_table(result: MultiplexResult) -> list[str]:
    rows = []
    for d in result.depths:
        cells = []
        for s in range(len(result.species)):
            v, e = d.cnr[s], d.cnr_error[s]
            cells.append(f"{v:.3g}+-{e:.2g} {verdict(v, e, result.threshold, result.z)}" if d.separable[s]
                         else "not separable")
        rows.append((f"{d.depth_mm:g}", f"{d.condition_number:.3g}", cells))
    width = max(len(x) for x in [*result.species, *(c for _, _, cells in rows for c in cells)]) + 2
    lines = ["unmixed CNR +- Monte Carlo error (verdict) per depth; cond = condition number",
             f"{'depth mm':>8} {'cond':>8}" + "".join(f"{s:>{width}}" for s in result.species)]
    lines += [f"{d:>8} {c:>8}" + "".join(f"{x:>{width}}" for x in cells) for d, c, cells in rows]
    return lines
