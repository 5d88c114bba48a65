"""Fluorescence imaging in the engine: QD excitation -> emission, autofluorescence, camera, noise.

Two stages (DESIGN.md, "Fluorescence"):

1. Excitation at one wavelength: the transport kernel tallies fluence and, per fluorophore species,
   the excitation weight each absorbs in each voxel (their absorption adds to the tissue's).
2. Emission: every species emits QY x (absorbed excitation photons) per voxel. Emission photons start
   at voxels drawn in proportion to that density (uniform within the voxel, isotropic), with a
   wavelength bin drawn from the emission spectrum restricted to the camera's band, and are
   transported with the optics of their own bin, re-absorption by every species included. One launch
   covers the band; the band fraction scales the result. Tissue autofluorescence is a second emitter:
   yield x (excitation weight absorbed by the tissue itself).

All images are in detected photoelectrons per launched excitation photon per camera pixel (the
camera's acceptance cone, filter and quantum efficiency applied in the kernel); the photon budget
(:func:`photonqd.noise.photon_rate`) turns them into electrons over the exposure.

An excitation stage is reusable: a new camera, window or emission spectrum reruns only stage 2. A
fluorophore that was absent from stage 1 is excited through the stored fluence (its absorption
then does not attenuate the excitation light: a first-order approximation, noted in the result).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .camera import Camera
from .kernel_abi import rng_stream_id
from .noise import electrons, photon_rate, realise, region_snr, snr
from .optics.provenance import Provenance
from .simulation import Simulation
from .sources import DiskSource, GaussianBeam, RectangleSource, Source, VoxelEmission
from .tallies import Result

#: A camera band must pass at least this fraction of some fluorophore's emission: below it the
#: "signal" is the far tail of a spectrum model, not a measurement anyone would make.
MIN_BAND_FRACTION = 1e-3


@dataclass
class Excitation:
    """The excitation light: geometry (a photonqd source), wavelength and irradiance.

    area_mm2: illuminated area that receives ``irradiance_mw_per_cm2`` (mW/cm²); by default the
    source's own: π r² (disk), |edge1 × edge2| (rectangle), π w²/2 (Gaussian, so that the given
    irradiance is the peak). Pencil and point sources need it stated.
    """

    source: Source
    wavelength_nm: float
    irradiance_mw_per_cm2: float
    area_mm2: float | None = None

    def __post_init__(self):
        if not isinstance(self.source, Source) or isinstance(self.source, VoxelEmission):
            raise TypeError("source: expected a photonqd light source (PencilBeam, GaussianBeam, ...)")
        if not (math.isfinite(self.wavelength_nm) and 300 <= self.wavelength_nm <= 2000):
            raise ValueError(f"wavelength_nm: must be in [300, 2000] nm, got {self.wavelength_nm}")
        if not (math.isfinite(self.irradiance_mw_per_cm2) and self.irradiance_mw_per_cm2 > 0):
            raise ValueError(f"irradiance_mw_per_cm2: must be > 0, got {self.irradiance_mw_per_cm2}")
        if self.area_mm2 is None:
            s = self.source
            if isinstance(s, DiskSource):
                self.area_mm2 = math.pi * s.radius**2
            elif isinstance(s, RectangleSource):
                self.area_mm2 = float(np.linalg.norm(np.cross(s.edge1, s.edge2)))
            elif isinstance(s, GaussianBeam):
                self.area_mm2 = math.pi * s.waist**2 / 2
            else:
                raise ValueError(f"area_mm2: state the illuminated area for a {type(s).__name__}")
        if not (math.isfinite(self.area_mm2) and self.area_mm2 > 0):
            raise ValueError(f"area_mm2: must be > 0 mm², got {self.area_mm2}")

    @property
    def photons_per_s(self) -> float:
        return photon_rate(self.irradiance_mw_per_cm2, self.wavelength_nm, self.area_mm2)


@dataclass
class ExcitationStage:
    """Stage 1 of a scene, reusable for any camera, window or emitter."""

    excitation: Excitation
    result: Result                 # tallies per launched excitation photon
    species: tuple                 # fluorophores present during the stage
    provenance: Provenance
    exit_map: object               # the camera geometry its exit map (escaping excitation) used

    def tissue_absorbed(self) -> np.ndarray:
        """Excitation weight absorbed by tissue (not by fluorophores) per voxel."""
        absorbed = self.result.absorbed
        if self.result.fluorophore_absorbed is not None:
            absorbed = absorbed - self.result.fluorophore_absorbed.sum(axis=0)
        return np.clip(absorbed, 0.0, None)


@dataclass
class FluorescenceResult:
    """Images per camera pixel (binned), electrons over the exposure, and signal-to-noise.

    signal_per_photon:     (n_species, mx, my) detected photoelectrons per excitation photon,
                           unbinned camera pixels.
    autofluorescence_per_photon, leakage_per_photon: (mx, my), same units.
    signal_e, background_e: electrons per binned pixel over the exposure (all species summed;
                           background = autofluorescence + excitation leakage).
    snr_map:               per binned pixel, S / sqrt(S + B + dark + read²).
    emitted:               photons emitted per excitation photon, per species (all wavelengths).
    band_fraction:         fraction of each species' emission inside the camera band.
    """

    stage: ExcitationStage
    camera: Camera
    wavelengths_nm: np.ndarray
    signal_per_photon: np.ndarray
    autofluorescence_per_photon: np.ndarray
    leakage_per_photon: np.ndarray
    emitted: np.ndarray
    band_fraction: np.ndarray
    emission: dict                 # emitter key (emitter_key) -> its Result; emitters with nothing in band are absent
    provenance: Provenance
    notes: list = field(default_factory=list)

    @property
    def background_per_photon(self) -> np.ndarray:
        return self.autofluorescence_per_photon + self.leakage_per_photon

    @property
    def signal_e(self) -> np.ndarray:
        return electrons(self.signal_per_photon.sum(axis=0), self.stage.excitation.photons_per_s,
                         self.camera)

    @property
    def background_e(self) -> np.ndarray:
        return electrons(self.background_per_photon, self.stage.excitation.photons_per_s, self.camera)

    @property
    def snr_map(self) -> np.ndarray:
        return snr(self.signal_e, self.background_e, self.camera)

    def region_snr(self, mask) -> float:
        """SNR of the signal summed over the binned pixels where ``mask`` is True."""
        return region_snr(self.signal_e, self.background_e, mask, self.camera)

    def noisy_image(self, seed: int) -> np.ndarray:
        """One realisation of the camera image in electrons (Poisson + read noise)."""
        return realise(self.signal_e, self.background_e, self.camera, seed)


# --- stage 1 -------------------------------------------------------------------------------
def excite(scene, excitation: Excitation, camera: Camera, photons: int, backend=None, seed: int = 1,
           progress=None, keep_batches: bool = False) -> ExcitationStage:
    """Excitation transport through ``scene`` (a photonqd.scene.Scene): fluence, per-species
    absorption, and the excitation light that escapes into ``camera``'s field and acceptance cone
    (before its filter and sensor: any camera of the same geometry turns it into leakage).

    keep_batches: keep every batch's fluence, absorption and exit map (at least 10 batches), so
    that signals computed from this stage (photonqd.adjoint_imaging) carry its Monte Carlo error."""
    medium, table = scene.medium([excitation.wavelength_nm])
    exit_map = camera.exit_map(medium)
    source = dataclasses.replace(excitation.source, wavelength_bin=0)
    kept = ("fluence", "absorbed", "exit_map", "species") if scene.fluorophores else \
        ("fluence", "absorbed", "exit_map")
    result = Simulation(medium, source, photons=photons, seed=seed, fluence=True,
                        exit_map=exit_map, rng_stream=rng_stream_id("excitation"),
                        keep_batches=kept if keep_batches else False,
                        batch_photons=max(1, photons // 10) if keep_batches else None
                        ).run(backend, progress)
    return ExcitationStage(excitation, result, scene.fluorophores, table.provenance, exit_map)


# --- stage 2 -------------------------------------------------------------------------------
def image(scene, stage: ExcitationStage, camera: Camera, photons: int, backend=None, seed: int = 1,
          bin_width_nm: float = 10.0, progress=None, keep_batches: bool = False) -> FluorescenceResult:
    """Emission transport of every species of ``scene`` and of tissue autofluorescence into ``camera``.

    photons: emission photons in all, shared between the emitters (see ``_photon_shares``).
    bin_width_nm: width of the wavelength bins that discretise the camera band.
    keep_batches: keep every batch's image (only the image) in the emission results, with at
    least 10 batches, for Monte Carlo errors of image-derived quantities.
    """
    if not bin_width_nm > 0:
        raise ValueError(f"bin_width_nm: must be > 0 nm, got {bin_width_nm}")
    lo, hi = camera.detection_band  # the nominal band widened by the filter's blue shift at the cone's rim
    n_bins = max(1, int(math.ceil((hi - lo) / bin_width_nm)))
    edges = np.linspace(lo, hi, n_bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    medium, table = scene.medium(centres)
    provenance = Provenance().merge(stage.provenance).merge(table.provenance)
    camera_map = camera.exit_map(medium)
    if camera_map != stage.exit_map:
        raise ValueError("camera: its field of view, pixels and NA must match the excitation stage's "
                         "(the leakage image comes from that stage); rerun excite() for this camera")
    # excitation light reaching the sensor through the filter's blocking (OD) is leakage
    leakage = stage.result.exit_map * camera.detection_efficiency([stage.excitation.wavelength_nm])[0]
    voxel_volume = float(np.prod(medium.voxel_size))
    notes = []

    emitters = []
    emitted = np.zeros(len(scene.fluorophores))
    band_fraction = np.zeros(len(scene.fluorophores))
    for s, fluor in enumerate(scene.fluorophores):
        qd = fluor.quantum_dot
        density = qd.quantum_yield * _species_absorbed(stage, fluor, voxel_volume, notes, provenance)
        weights, efficiency = _bin_weights(qd.emission.pdf, edges, camera)
        emitted[s], band_fraction[s] = density.sum(), weights.sum()
        emitters.append(_Emitter(emitter_key(s), s, density, weights, efficiency, rng_stream_id("species", s)))
    for g, (spectrum, density) in enumerate(_autofluorescence_groups(scene, stage.tissue_absorbed())):
        weights, efficiency = _bin_weights(spectrum.pdf, edges, camera)
        emitters.append(_Emitter(emitter_key(None, g), None, density, weights, efficiency,
                                 rng_stream_id("autofluorescence", g)))
    if scene.fluorophores and not band_fraction.max() >= MIN_BAND_FRACTION:
        # legitimate for a background-only image, so a warning; a study refuses it outright
        warnings.warn(f"camera.emission_filter: the band {lo:g}-{hi:g} nm passes less than "
                      f"{MIN_BAND_FRACTION:g} of every fluorophore's emission (at most "
                      f"{band_fraction.max():.2g}): the image holds background only", stacklevel=2)
    emitters = [e for e in emitters if e.density.sum() > 0 and e.weights.sum() > 0]
    shares = _photon_shares([e.density.sum() * e.weights.sum() for e in emitters])

    signal = np.zeros((len(scene.fluorophores), *camera_map.pixels))
    autofluorescence = np.zeros(camera_map.pixels)
    runs = {}
    for (key, species, density, weights, efficiency, stream), share in zip(emitters, shares):
        n = max(1, int(round(photons * share)))
        sim = Simulation(medium, VoxelEmission(density=density, bin_weights=weights),
                         photons=n, seed=seed, fluence=False,
                         exit_map=dataclasses.replace(camera_map, bin_efficiency=efficiency),
                         rng_stream=stream, keep_batches=("exit_map",) if keep_batches else False,
                         batch_photons=max(1, n // 10) if keep_batches else None)
        r = sim.run(backend, progress)
        runs[key] = r
        image = r.exit_map * density.sum() * weights.sum()  # per excitation photon
        if species is None:
            autofluorescence += image
        else:
            signal[species] = image

    return FluorescenceResult(
        stage=stage, camera=camera, wavelengths_nm=centres, signal_per_photon=signal,
        autofluorescence_per_photon=autofluorescence,
        leakage_per_photon=leakage, emitted=emitted, band_fraction=band_fraction,
        emission=runs, provenance=provenance, notes=notes,
    )


def run(scene, excitation: Excitation, camera: Camera, photons: int = 100_000,
        emission_photons: int | None = None, backend=None, seed: int = 1, bin_width_nm: float = 10.0,
        progress=None) -> FluorescenceResult:
    """Both stages: excite with ``photons`` excitation photons, then image through ``camera`` with
    ``emission_photons`` (default: as many) emission photons shared between emitters."""
    stage = excite(scene, excitation, camera, photons, backend, seed, progress)
    return image(scene, stage, camera, emission_photons or photons, backend, seed, bin_width_nm, progress)


# --- helpers -------------------------------------------------------------------------------
def _species_absorbed(stage, fluor, voxel_volume, notes, provenance) -> np.ndarray:
    """Excitation photons absorbed by ``fluor`` per voxel, per launched excitation photon."""
    for i, present in enumerate(stage.species):
        if present is fluor:
            return stage.result.fluorophore_absorbed[i]
    # not present during excitation: track-length estimate from the stored fluence
    wl = [stage.excitation.wavelength_nm]
    mua = fluor.concentration_uM * float(fluor.quantum_dot.mua_per_uM(wl, provenance)[0])
    notes.append(f"{fluor.quantum_dot.name}: excited through the stored fluence; its absorption "
                 "does not attenuate the excitation light (first order)")
    return stage.result.fluence * voxel_volume * mua

def _autofluorescence_groups(scene, tissue_absorbed):
    """(emission spectrum, emission density) per distinct autofluorescence spectrum."""
    groups = []
    for label in sorted(scene.tissues):
        af = scene.autofluorescence_of(label)
        if af is None or af.yield_per_absorbed == 0:
            continue
        density = np.where(scene.labels == label, af.yield_per_absorbed * tissue_absorbed, 0.0)
        for i, (spectrum, total) in enumerate(groups):
            if spectrum == af.emission:
                groups[i] = (spectrum, total + density)
                break
        else:
            groups.append((af.emission, density))
    return groups


class _Emitter(NamedTuple):
    key: str                 # emitter_key
    species: int | None      # QD species index, None for autofluorescence
    density: np.ndarray      # emitted photons per voxel per excitation photon (all wavelengths)
    weights: np.ndarray      # emission probability per wavelength bin of the band
    efficiency: np.ndarray   # filter x QE per bin
    stream: int              # random stream


def emitter_key(species: int | None, group: int = 0) -> str:
    """Key of an emitter's run in FluorescenceResult.emission: "species <s>" for the scene's QD
    species s, "autofluorescence <g>" for autofluorescence spectrum group g."""
    return f"species {species}" if species is not None else f"autofluorescence {group}"


def _photon_shares(powers, floor: float = 0.25) -> np.ndarray:
    """Split emission photons between emitters: in proportion to their in-band emission, but at
    least ``floor`` of an even split each, so that a faint emitter still gets an image."""
    powers = np.asarray(powers, dtype=np.float64)
    if powers.size == 0:
        return powers
    shares = np.maximum(powers / powers.sum(), floor / powers.size)
    return shares / shares.sum()


def _bin_weights(pdf, edges, camera, step_nm: float = 1.0):
    """Emission probability of each bin (integral of the pdf per nm over the bin) and the
    camera's detection efficiency averaged over the bin with the emission spectrum as weight."""
    weights, efficiency = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    for b in range(len(edges) - 1):
        n = max(2, int(math.ceil((edges[b + 1] - edges[b]) / step_nm)) + 1)
        wl = np.linspace(edges[b], edges[b + 1], n)
        p = np.asarray(pdf(wl), dtype=np.float64)
        weights[b] = np.trapezoid(p, wl)
        if weights[b] > 0:
            efficiency[b] = np.trapezoid(p * camera.detection_efficiency(wl), wl) / weights[b]
    return weights, np.clip(efficiency, 0.0, 1.0)
