"""The validation cases: geometry, optics, photons, the quantities checked, their reference values,
tolerances and sources. Pure data plus the one method that turns a case into a Simulation.

Units are the package's (mm, 1/mm, ns); published values in cm⁻¹ are converted where they are
written down. Slabs are laterally infinite: a single voxel 100 mm wide whose side faces are mirrors
(or cyclic), which leaves total reflectance and transmittance unchanged by lateral symmetry.

Quantities (see ``comparison.QUANTITIES``): ``R`` total reflectance (specular + diffuse, escaped
through z = 0), ``Rd`` diffuse reflectance, ``T`` total transmittance (unscattered included,
escaped through the far face), ``A`` absorbed fraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import photonqd as pq
from photonqd.optics import FixedOptics
from photonqd.phantom import Benchmark, benchmark
from photonqd.scene import Scene

SLAB_WIDTH = 100.0  # mm; any width works with mirror sides, this one keeps the source centred

#: Photons per case for the full validation: enough to resolve a 2 % error in every checked
#: quantity (see comparison; tested in tests/test_validation.py).
FULL_PHOTONS = 1_000_000


@dataclass(frozen=True)
class Check:
    """One quantity compared with its reference.

    tolerance: the reference's standard uncertainty (absolute): rounding of the published digits,
    its own Monte Carlo or discretisation error, and known differences in conventions.
    """

    quantity: str
    reference: float
    tolerance: float

    def __post_init__(self):
        if not self.tolerance > 0:
            raise ValueError(f"{self.quantity}: tolerance must be > 0, got {self.tolerance}")


@dataclass(frozen=True, eq=False)
class Case:
    """A validation problem: a scene (photonqd.scene.Scene with FixedOptics), a source, and checks.

    time_gate_ns: photons still propagating at this time stop (None: no gate).
    photons:      the full validation's photon count; ``fast``: part of the subset that pytest runs
                  on every backend.
    """

    name: str
    citation: str
    checks: tuple[Check, ...]
    scene: Scene
    source: pq.Source
    time_gate_ns: float | None = None
    photons: int = FULL_PHOTONS
    seed: int = 1
    fast: bool = False

    @classmethod
    def from_benchmark(cls, problem: Benchmark, name: str, citation: str, checks, **kwargs) -> "Case":
        """A case on a photonqd.phantom benchmark: its scene, source and time gate."""
        return cls(name=name, citation=citation, checks=tuple(checks), scene=problem.scene,
                   source=problem.source, time_gate_ns=problem.time_gate_ns, **kwargs)

    def simulation(self, photons: int | None = None, batches: int = 20) -> pq.Simulation:
        """The case as a Simulation with ``batches`` equal batches for batch-means errors."""
        photons = int(photons or self.photons)
        medium, _ = self.scene.medium()
        return pq.Simulation(medium, self.source, photons=photons, seed=self.seed,
                             time_gate_ns=self.time_gate_ns, fluence=False,
                             batch_photons=math.ceil(photons / batches))


MIRROR_SIDES = {"x-": "mirror", "x+": "mirror", "y-": "mirror", "y+": "mirror"}


def box_scene(tissue, shape, voxel_size, n_ambient: float = 1.0, boundary=None) -> Scene:
    """A box of one tissue (mu_a [1/mm], mu_s [1/mm], g, n): every voxel label 1."""
    return Scene(np.ones(shape, np.uint8), voxel_size, {1: FixedOptics(*tissue, name="slab")},
                 n_ambient=n_ambient, boundary=boundary if boundary is not None else "escape")


def slab(mua, mus, g, n, thickness, n_ambient=1.0, side="mirror", width=SLAB_WIDTH) -> Scene:
    """A laterally infinite slab: one voxel ``width`` mm wide with mirror (or cyclic) side faces,
    escaping through its top and bottom faces."""
    sides = {face: side for face in MIRROR_SIDES}
    return box_scene((mua, mus, g, n), (1, 1, 1), (width, width, thickness), n_ambient, sides)


def slab_case(name, citation, checks, mua, mus, g, n, thickness, **kwargs) -> Case:
    """A laterally infinite slab in air, lit by a normal pencil beam at the centre of its top."""
    return Case(name=name, citation=citation, checks=tuple(checks), scene=slab(mua, mus, g, n, thickness),
                source=pq.PencilBeam((SLAB_WIDTH / 2, SLAB_WIDTH / 2, 0.0), (0.0, 0.0, 1.0)), **kwargs)


def adding_doubling_case(name, albedo, optical_thickness, g, n, r_total, t_total, **kwargs):
    """A 1 mm slab in air checked against adding-doubling (iadpython) total R and T.

    The stored values come from ``adding_doubling.total_rt`` (tests/test_validation.py recomputes
    them); the tolerance is the change from 16 to 24 quadrature points, at least 1e-5.
    """
    mut = optical_thickness  # per mm, for a 1 mm slab
    return slab_case(
        name, "Prahl, Keijzer, Jacques & Welch 1989 (adding-doubling), via iadpython "
              f"(a={albedo}, b={optical_thickness}, g={g}, n={n} in air, no slides)",
        (Check("R", *r_total), Check("T", *t_total)),
        mua=(1 - albedo) * mut, mus=albedo * mut, g=g, n=n, thickness=1.0, **kwargs)


def _beer_lambert(name, direction, boundary, mua=0.4, layers=20, dz=0.25):
    """No scattering, matched index: every photon leaves with weight exp(-mu_a d / cos theta).

    Tolerance 2**-17 relative (64 float32 ulps): the weight is multiplied once per voxel step.
    """
    cos_theta = direction[2] / math.hypot(*direction)
    t = math.exp(-mua * layers * dz / cos_theta)
    return Case(
        name=name, citation="Beer-Lambert law (exact)",
        checks=(Check("T", t, t * 2**-17), Check("A", 1 - t, t * 2**-17)),
        scene=box_scene((mua, 0.0, 0.0, 1.37), (1, 1, layers), (1.0, 1.0, dz), 1.37, boundary),
        source=pq.PencilBeam((0.5, 0.5, 0.0), direction), photons=20_000, fast=True)


def _fresnel_slab(name, mua=1.0, n=1.4, thickness=1.0):
    """No scattering, a slab of index n in air: the unscattered beam bounces between the faces,
    each time reflected with the normal-incidence Fresnel r = ((n - 1)/(n + 1))**2, so
    R = r + (1 - r)² r τ² / (1 - r² τ²) and T = (1 - r)² τ / (1 - r² τ²) with τ = exp(-mu_a d).

    Tolerance 1e-6 (float32 weights); the reflect-or-transmit choice is sampled, so SE > 0.
    """
    r = ((n - 1) / (n + 1)) ** 2
    tau = math.exp(-mua * thickness)
    bounce = 1 - (r * tau) ** 2
    return slab_case(name, "Fresnel equations at normal incidence with multiple reflections (exact)",
                     (Check("R", r + (1 - r) ** 2 * r * tau**2 / bounce, 1e-6),
                      Check("T", (1 - r) ** 2 * tau / bounce, 1e-6)),
                     mua=mua, mus=0.0, g=0.0, n=n, thickness=thickness, fast=True)


#: Slabs checked against adding-doubling: (name, albedo, optical thickness, g, n, (R, tolerance),
#: (T, tolerance), other Case fields). Several albedos, thicknesses, g of both signs, n = 1 and 1.4.
ADDING_DOUBLING = (
    # R is only 2.5 %: four times the photons keep a 2 % error in it detectable
    ("ad_thin_forward", 0.99, 1.0, 0.9, 1.0, (0.025128, 1e-5), (0.963704, 1e-5),
     {"photons": 4 * FULL_PHOTONS}),
    ("ad_low_albedo_n1.4", 0.5, 1.0, 0.0, 1.4, (0.078155, 3.2e-5), (0.388960, 2.7e-5), {"fast": True}),
    ("ad_forward_n1.4", 0.95, 4.0, 0.8, 1.4, (0.163529, 4.2e-5), (0.427207, 1.3e-4), {}),
    ("ad_backward_n1.4", 0.8, 2.0, -0.3, 1.4, (0.226875, 9.1e-5), (0.205936, 3.0e-5), {}),
    ("ad_thick", 0.99, 10.0, 0.0, 1.0, (0.740932, 1e-5), (0.084761, 1e-5), {}),
)

_CUBE60 = benchmark("cube60")

CASES: tuple[Case, ...] = (
    slab_case(
        "vdhulst_slab",
        "van de Hulst 1980, as tabulated in Wang & Jacques 1992 (MCML manual), Table 6.1 "
        "(mu_a 10, mu_s 90 /cm, g 0.75, n 1, d 0.02 cm)",
        # five published digits: standard uncertainty 1e-5 covers rounding
        (Check("Rd", 0.09739, 1e-5), Check("T", 0.66096, 1e-5)),
        mua=1.0, mus=9.0, g=0.75, n=1.0, thickness=0.2, fast=True),
    slab_case(
        "giovanelli_semi_infinite",
        "Giovanelli 1955, as tabulated in Wang & Jacques 1992 (MCML manual), Table 6.2 "
        "(mu_a 10, mu_s 90 /cm, g 0, n 1.5 in air)",
        # four published digits; adding-doubling gives 0.25991-0.26008 as its quadrature varies
        (Check("R", 0.2600, 1e-4),),
        # 10 mm = 100 mean free paths: nothing reaches the far face (diffusion decay e^-55)
        mua=1.0, mus=9.0, g=0.0, n=1.5, thickness=10.0, fast=True),
    Case.from_benchmark(
        _CUBE60, "mcx_cube60",
        "MCX benchmark cube60 (fangq/mcx src/mcx_bench.c): MCX's own Monte Carlo",
        # MCX's figure is itself Monte Carlo: at the benchmark's 1e6 photons its standard error is
        # 0.029 % (per-photon spread of absorbed weight 0.29), plus 0.005 % rounding of the printed
        # digits. Conventions match MCX's: no specular loss, weight alive at 5 ns (~0.004 %) is
        # not absorbed, no reflection at the faces (n_ambient = n)
        (Check("A", _CUBE60.reference_absorbed, 3e-4),)),
    _beer_lambert("beer_lambert_normal", (0.0, 0.0, 1.0), {}),
    # oblique through 1 mm wide voxels: mirror x faces and cyclic y faces are crossed several times
    _beer_lambert("beer_lambert_oblique", (0.48, 0.6, 0.64),
                  {"x-": "mirror", "x+": "mirror", "y-": "cyclic", "y+": "cyclic"}),
    _fresnel_slab("fresnel_slab"),
) + tuple(adding_doubling_case(*row[:7], **row[7]) for row in ADDING_DOUBLING)


def by_name(names=None) -> list[Case]:
    """The cases called ``names`` (all if None), in table order; unknown names raise ValueError."""
    if not names:
        return list(CASES)
    known = {c.name: c for c in CASES}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown validation case(s) {unknown}; known: {sorted(known)}")
    return [c for c in CASES if c.name in set(names)]
