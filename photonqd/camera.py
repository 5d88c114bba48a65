"""The camera that looks at the z = 0 face from the ambient side: optics, emission filter, sensor.

Units: lengths mm (field of view, centre), wavelength nm, time s, read noise e⁻ rms per read, dark current
e⁻ per (unbinned) pixel per second. Everything optical that depends on wavelength — filter transmission
times sensor quantum efficiency — is :meth:`Camera.detection_efficiency`, which the transport kernel
multiplies into the weight it scores in the image for each wavelength bin. The geometric acceptance
(numerical aperture) is applied by the kernel through :meth:`Camera.exit_map`. What the kernel returns is
therefore detected photoelectrons per launched photon per pixel; :mod:`photonqd.noise` turns that into
electrons and signal-to-noise.

Sensor presets live in ``data/sensors.csv`` (one row per preset, with sources and the values that are
typical rather than measured); see ``docs/camera.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .optics.provenance import Provenance, check_wavelengths
from .simulation import ExitMap
from .tables import preset_row, read_keyed_csv

DATA_DIR = Path(__file__).with_name("data")
SENSOR_FILE = "sensors.csv"
SILICON_K_FILE = "silicon_k_green2008.csv"
BINNING_MODES = ("charge", "digital")


def _positive(name: str, value, allow_zero: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


@dataclass(frozen=True)
class Sensor:
    """An image sensor.

    name : label.
    wavelengths_nm, qe : quantum-efficiency curve (strictly increasing wavelengths, QE in [0, 1]);
        linear interpolation between points, zero outside them.
    read_noise_e : read noise [e⁻ rms] per read.
    dark_current_e_per_s : dark current [e⁻ / pixel / s] per unbinned pixel.
    binning : "charge" (on-chip, CCD: one read per binned pixel) or "digital" (summed after
        readout, sCMOS and InGaAs: binning² reads per binned pixel).
    pixel_pitch_um : physical pixel pitch [µm], informational (the object-side pixel is set by the
        Camera's field of view), or None.
    full_well_e : charge one unbinned pixel holds before it clips [e⁻], or None (default: no clipping and
        an ideal ADC, i.e. no quantisation noise; the presets all give one).
    bit_depth : ADC bits, 1 to 32 (default 16, the output of the scientific cameras in the presets).
    register_well_e : for charge binning, the charge the summing (serial/output) register holds [e⁻], which
        caps a binned pixel; None: no cap below b² × full_well_e.
    sources : citations; typical : quantities whose values are typical of the sensor class.
    """

    name: str
    wavelengths_nm: np.ndarray
    qe: np.ndarray
    read_noise_e: float
    dark_current_e_per_s: float
    binning: str = "digital"
    pixel_pitch_um: float | None = None
    full_well_e: float | None = None
    bit_depth: int = 16
    register_well_e: float | None = None
    sources: dict[str, str] = field(default_factory=dict)
    typical: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        wl = check_wavelengths(self.wavelengths_nm)
        qe = np.asarray(self.qe, dtype=float)
        if wl.ndim != 1 or wl.shape != qe.shape or wl.size < 2 or np.any(np.diff(wl) <= 0):
            raise ValueError(f"sensor {self.name!r}: wavelengths_nm and qe must be 1-D of equal length >= 2, "
                             "wavelengths strictly increasing")
        if not np.all(np.isfinite(qe)) or np.any(qe < 0) or np.any(qe > 1):
            raise ValueError(f"sensor {self.name!r}: qe values must be in [0, 1]")
        object.__setattr__(self, "wavelengths_nm", wl)
        object.__setattr__(self, "qe", qe)
        object.__setattr__(self, "read_noise_e", _positive("read_noise_e", self.read_noise_e, allow_zero=True))
        object.__setattr__(self, "dark_current_e_per_s",
                           _positive("dark_current_e_per_s", self.dark_current_e_per_s, allow_zero=True))
        if self.binning not in BINNING_MODES:
            raise ValueError(f"binning: must be one of {BINNING_MODES}, got {self.binning!r}")
        if self.pixel_pitch_um is not None:
            object.__setattr__(self, "pixel_pitch_um", _positive("pixel_pitch_um", self.pixel_pitch_um))
        for name in ("full_well_e", "register_well_e"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _positive(name, getattr(self, name)))
        if isinstance(self.bit_depth, bool) or int(self.bit_depth) != self.bit_depth or not 1 <= self.bit_depth <= 32:
            raise ValueError(f"bit_depth: must be an integer in [1, 32], got {self.bit_depth!r}")
        object.__setattr__(self, "bit_depth", int(self.bit_depth))

    def quantum_efficiency(self, wavelengths_nm) -> np.ndarray:
        """QE at ``wavelengths_nm`` (any shape); zero outside the tabulated curve."""
        return np.interp(check_wavelengths(wavelengths_nm), self.wavelengths_nm, self.qe, left=0.0, right=0.0)

    def reads_per_binned_pixel(self, binning: int) -> int:
        return 1 if self.binning == "charge" else binning * binning

    def provenance(self, provenance: Provenance | None = None) -> Provenance:
        prov = provenance if provenance is not None else Provenance()
        for k, v in self.sources.items():
            prov.cite(f"{self.name}.{k}", v)
        for k, v in self.typical.items():
            prov.label_typical(f"{self.name}.{k}", v)
        return prov


@lru_cache(maxsize=1)
def _silicon_k() -> tuple[np.ndarray, np.ndarray]:
    rows = [ln for ln in (DATA_DIR / SILICON_K_FILE).read_text().splitlines() if ln and not ln.startswith("#")]
    data = np.array([r.split(",") for r in rows[1:]], dtype=float)
    return data[:, 0], data[:, 1]


def silicon_qe(peak_qe: float, depth_um: float) -> tuple[np.ndarray, np.ndarray]:
    """QE of silicon collecting the photons absorbed within ``depth_um``, scaled to ``peak_qe``.

    QE(λ) ∝ 1 − exp(−α d), α = 4πk/λ with k from Green 2008 (intrinsic Si, 300 K), on 400–1200 nm.
    Front-surface losses are taken as wavelength independent, so the curve's shape in the NIR comes
    from silicon's absorption alone; that is what limits silicon in NIR-I and ends it near 1100 nm.
    """
    if not 0 < peak_qe <= 1:
        raise ValueError(f"peak_qe: must be in (0, 1], got {peak_qe!r}")
    _positive("depth_um", depth_um)
    wl, k = _silicon_k()
    alpha_per_um = 4 * np.pi * k / (wl * 1e-3)
    absorbed = -np.expm1(-alpha_per_um * depth_um)
    return wl, peak_qe * absorbed / absorbed.max()


@lru_cache(maxsize=1)
def _sensor_rows() -> dict[str, dict[str, str]]:
    return read_keyed_csv(DATA_DIR / SENSOR_FILE, "name")


def sensor_names() -> list[str]:
    return list(_sensor_rows())


def sensor_preset(name: str) -> Sensor:
    """A sensor from ``data/sensors.csv``: silicon_scmos, silicon_ccd_bidd, ingaas_standard."""
    r = preset_row(_sensor_rows(), name, "name", "sensor")
    if r["qe_model"] == "silicon":
        wl, qe = silicon_qe(float(r["peak_qe"]), float(r["depth_um"]))
    elif r["qe_model"] == "points":
        pts = np.array([p.split(":") for p in r["qe_points"].split(";")], dtype=float)
        wl, qe = pts[:, 0], pts[:, 1]
    else:
        raise ValueError(f"{SENSOR_FILE}: unknown qe_model {r['qe_model']!r} for {name!r}")
    basis = "typical of the sensor class, not a measurement of one camera"
    return Sensor(
        name=name, wavelengths_nm=wl, qe=qe,
        read_noise_e=float(r["read_noise_e"]), dark_current_e_per_s=float(r["dark_current_e_per_s"]),
        binning=r["binning"], pixel_pitch_um=float(r["pixel_pitch_um"]) if r["pixel_pitch_um"] else None,
        full_well_e=float(r["full_well_e"]), bit_depth=int(r["bit_depth"]),
        register_well_e=float(r["register_well_e"]) if r["register_well_e"] else None,
        sources={"description": r["description"], "values": r["sources"]},
        typical={q: basis for q in r["typical"].split(";") if q},
    )


@dataclass(frozen=True)
class EmissionFilter:
    """A band-pass interference filter: ``transmission`` in [lo_nm, hi_nm], 10^−OD outside (or 0).

    The edges are steps at normal incidence. Tilted rays see both edges shifted blue,
    λ(θ) = λ0 · sqrt(1 − (sin θ / n_eff)²) for an angle of incidence θ in air (Semrock technical note
    "Filter Spectra at Non-normal Angles of Incidence"); ``effective_index`` is n_eff of the coating
    stack, ≥ 1 (default 2.0, typical of hard-coated band-pass filters: makers quote 1.5–2.1).
    """

    lo_nm: float
    hi_nm: float
    transmission_in_band: float = 0.9
    blocking_od: float | None = None
    effective_index: float = 2.0

    def __post_init__(self):
        lo, hi = float(self.lo_nm), float(self.hi_nm)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
            raise ValueError(f"emission_filter: need 0 < lo_nm < hi_nm, got ({self.lo_nm!r}, {self.hi_nm!r})")
        if not 0 < self.transmission_in_band <= 1:
            raise ValueError(f"emission_filter.transmission_in_band: must be in (0, 1], "
                             f"got {self.transmission_in_band!r}")
        if self.blocking_od is not None and not (math.isfinite(self.blocking_od) and self.blocking_od > 0):
            raise ValueError(f"emission_filter.blocking_od: must be > 0 or None, got {self.blocking_od!r}")
        n = float(self.effective_index)
        if not (math.isfinite(n) and n >= 1):
            raise ValueError(f"emission_filter.effective_index: must be >= 1, got {self.effective_index!r}")
        object.__setattr__(self, "lo_nm", lo)
        object.__setattr__(self, "hi_nm", hi)
        object.__setattr__(self, "effective_index", n)

    def transmission(self, wavelengths_nm, numerical_aperture: float = 0.0) -> np.ndarray:
        """Transmission at ``wavelengths_nm`` (any shape), averaged over a cone of rays in air.

        numerical_aperture : sin of the cone's half-angle in air, in [0, 1]; 0 (default) is normal
            incidence, where the edges are ideal steps. The rays are taken uniform in sin²θ (uniform in
            projected solid angle: a Lambertian source filling the cone). At angle θ the band is
            [lo, hi] · s with s = sqrt(1 − sin²θ / n_eff²); a wavelength λ is inside it for
            sin²θ in [n_eff²(1 − (λ/lo)²), n_eff²(1 − (λ/hi)²)], so the average is exact for step
            edges: T = T_in · f + 10^−OD · (1 − f), f that interval's share of [0, NA²].
        """
        wl = check_wavelengths(wavelengths_nm)
        na = float(numerical_aperture)
        if not (math.isfinite(na) and 0 <= na <= 1):
            raise ValueError(f"numerical_aperture: the filter sits in air, so NA must be in [0, 1], got "
                             f"{numerical_aperture!r}")
        out_of_band = 0.0 if self.blocking_od is None else 10.0 ** (-self.blocking_od)
        if na == 0:
            inside = ((wl >= self.lo_nm) & (wl <= self.hi_nm)).astype(float)
        else:
            n2, u_max = self.effective_index**2, na * na
            u_lo = n2 * (1.0 - (wl / self.lo_nm) ** 2)  # below it, the blue-shifted lower edge is still above λ
            u_hi = n2 * (1.0 - (wl / self.hi_nm) ** 2)  # above it, the upper edge has moved below λ
            inside = np.clip(np.minimum(u_hi, u_max) - np.maximum(u_lo, 0.0), 0.0, None) / u_max
        return self.transmission_in_band * inside + out_of_band * (1.0 - inside)


@dataclass(frozen=True)
class Camera:
    """A camera imaging the z = 0 face from the ambient side.

    field_of_view_mm : (fx, fy) extent of the imaged area on the z = 0 face [mm].
    pixels : (nx, ny) object-side pixels before binning; each multiple of ``binning``.
    centre_mm : (x, y) of the field-of-view centre in the grid frame [mm].
    numerical_aperture : NA = n_ambient · sin θ of the collection optics, > 0 and ≤ n_ambient.
    emission_filter : :class:`EmissionFilter`.
    sensor : :class:`Sensor`.
    exposure_s : exposure time [s].
    binning : b × b pixels summed into one output pixel.
    """

    field_of_view_mm: tuple
    pixels: tuple
    centre_mm: tuple
    numerical_aperture: float
    emission_filter: EmissionFilter
    sensor: Sensor
    exposure_s: float
    binning: int = 1

    def __post_init__(self):
        fov = tuple(float(v) for v in np.broadcast_to(self.field_of_view_mm, (2,)))
        if not all(math.isfinite(v) and v > 0 for v in fov):
            raise ValueError(f"field_of_view_mm: need two numbers > 0 mm, got {self.field_of_view_mm!r}")
        px = np.broadcast_to(self.pixels, (2,))
        if not all(float(v).is_integer() and v >= 1 for v in px):
            raise ValueError(f"pixels: need two integers >= 1, got {self.pixels!r}")
        centre = tuple(float(v) for v in np.broadcast_to(self.centre_mm, (2,)))
        if not all(math.isfinite(v) for v in centre):
            raise ValueError(f"centre_mm: need two finite numbers, got {self.centre_mm!r}")
        if not (math.isfinite(self.numerical_aperture) and self.numerical_aperture > 0):
            raise ValueError(f"numerical_aperture: must be > 0, got {self.numerical_aperture!r}")
        if not isinstance(self.emission_filter, EmissionFilter):
            raise TypeError("emission_filter: expected a photonqd.camera.EmissionFilter")
        if not isinstance(self.sensor, Sensor):
            raise TypeError("sensor: expected a photonqd.camera.Sensor (see sensor_preset)")
        _positive("exposure_s", self.exposure_s)
        if int(self.binning) != self.binning or self.binning < 1:
            raise ValueError(f"binning: must be an integer >= 1, got {self.binning!r}")
        if any(int(v) % int(self.binning) for v in px):
            raise ValueError(f"binning: {self.binning} must divide both pixel counts {tuple(int(v) for v in px)}")
        object.__setattr__(self, "field_of_view_mm", fov)
        object.__setattr__(self, "pixels", tuple(int(v) for v in px))
        object.__setattr__(self, "centre_mm", centre)
        object.__setattr__(self, "exposure_s", float(self.exposure_s))
        object.__setattr__(self, "binning", int(self.binning))

    @property
    def band(self) -> tuple[float, float]:
        """Emission-filter pass band (lo, hi) [nm]."""
        return self.emission_filter.lo_nm, self.emission_filter.hi_nm

    @property
    def detection_band(self) -> tuple[float, float]:
        """Wavelengths (lo, hi) [nm] that reach the sensor through the pass band for some ray in the cone.

        The cone's rim ray (sin θ = NA in air) moves the lower edge to lo·sqrt(1 − NA²/n_eff²); the
        upper edge's blue shift narrows the band instead. Wavelength bins span this range.
        """
        f = self.emission_filter
        return f.lo_nm * math.sqrt(1.0 - (min(self.numerical_aperture, 1.0) / f.effective_index) ** 2), f.hi_nm

    @property
    def pixel_size_mm(self) -> tuple[float, float]:
        return tuple(f / n for f, n in zip(self.field_of_view_mm, self.pixels))

    @property
    def binned_pixels(self) -> tuple[int, int]:
        return tuple(n // self.binning for n in self.pixels)

    def acceptance_half_angle_deg(self, n_ambient: float) -> float:
        """θ = asin(NA / n_ambient): the collection cone's half-angle in the ambient medium."""
        n = _positive("n_ambient", n_ambient)
        if self.numerical_aperture > n:
            raise ValueError(f"numerical_aperture: {self.numerical_aperture} exceeds the ambient refractive "
                             f"index {n}; NA = n sin θ cannot be larger than n")
        return math.degrees(math.asin(self.numerical_aperture / n))

    def exit_map(self, medium) -> ExitMap:
        """The kernel's exit map for this camera over ``medium``'s z = 0 face (unbinned pixels)."""
        origin = tuple(c - f / 2 for c, f in zip(self.centre_mm, self.field_of_view_mm))
        return ExitMap(self.pixels, self.pixel_size_mm, origin,
                       self.acceptance_half_angle_deg(medium.n_ambient))

    def detection_efficiency(self, wavelengths_nm) -> np.ndarray:
        """Filter transmission × sensor QE: detected electrons per photon reaching the sensor.

        The transmission is averaged over the collection cone, half-angle asin(NA) in air: the filter is
        taken to sit in object space (in front of the lens), where the rays from one object point fill
        the cone uniformly in sin²θ for a Lambertian exit (:meth:`EmissionFilter.transmission`).
        """
        t = self.emission_filter.transmission(wavelengths_nm, self.numerical_aperture)
        return t * self.sensor.quantum_efficiency(wavelengths_nm)

    def bin_image(self, image) -> np.ndarray:
        """Sum binning × binning blocks of an (nx, ny) image (the kernel's image layout)."""
        img = np.asarray(image, dtype=float)
        if img.shape != self.pixels:
            raise ValueError(f"image: expected shape {self.pixels} (camera pixels), got {img.shape}")
        b = self.binning
        nx, ny = self.binned_pixels
        return img.reshape(nx, b, ny, b).sum(axis=(1, 3))
