"""Phantoms: voxel volumes built from shapes, and MCX's standard benchmark problems.

The benchmark definitions follow MCX's built-in benchmarks (fangq/mcx, src/mcx_bench.c; Fang & Boas
2009, Opt. Express 17:20178); ``phantoms/mcx_benchmarks.json`` records the same numbers with their
citations, and tests/test_phantom.py checks that the two agree. The same file records ``tissue60``,
photonqd's tissue-like speed case (not one of MCX's), which ``photonqd bench`` runs beside them.

All lengths are in mm in the grid frame (origin at the volume's corner, +z into the tissue). MCX
states its geometry in voxels of 1 mm; here the geometry is physical and ``voxel_size`` only sets
the resolution, so ``cubesph60b(voxel_size=0.5)`` is the same problem on a 120³ grid.

Shape voxelisation (MCX's rule, src/mcx_shapes.c ``mcx_raster_sphere``, ``mcx_raster_cylinder``):
a voxel belongs to a shape when its centre lies inside, boundary included (|centre - O| <= R for a
sphere, distance to the axis <= R for a cylinder); ellipsoids follow the same rule. Layers: a voxel
belongs to the layer that holds its centre (MCX ``ZLayers`` on whole voxels).

Fluorescence scenes (``skin_tumour``, ``intralipid_capillary``, ``mouse_head``, ``lymph_node``)
return a photonqd.fluorescence.FluorescenceScene: layers from the surface down over a base medium,
and a target that carries the highest label and is the scene's ``target`` mask (with a QD, also
where its concentration is > 0). Targets are centred laterally, so the camera's default centre is
the middle of the z = 0 face: ``target_centre_mm(scene)[:2]``. Layer tables are module constants
with their sources; phantoms/README.md lists every phantom with its citations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .checks import float_array
from .medium import MAX_VOXELS, Medium
from .simulation import Simulation
from .sources import DiskSource, PencilBeam, RectangleSource, Source

#: MCX's benchmark tissue (label 1 of every cube60 case): (mu_a [1/mm], mu_s [1/mm], g, n).
MCX_TISSUE = (0.005, 1.0, 0.01, 1.37)


@dataclass(frozen=True)
class Phantom:
    """A benchmark problem: a medium, a source and a time gate, ready to become a Simulation.

    name:               the benchmark's name (MCX's, for the MCX cases).
    medium, source:     what photonqd transports.
    time_gate_ns:       photons still propagating at this time stop (MCX's T1).
    reference_absorbed: published absorbed fraction (MCX semantics), or None.
    """

    name: str
    medium: Medium
    source: Source
    time_gate_ns: float
    reference_absorbed: float | None = None

    def simulation(self, photons: int, seed: int = 1, **options) -> Simulation:
        """A Simulation of this phantom; ``options`` go to Simulation (fluence, batch_photons, ...)."""
        return Simulation(self.medium, self.source, photons=photons, seed=seed,
                          time_gate_ns=self.time_gate_ns, **options)


def grid_shape(size, voxel_size) -> tuple[int, int, int]:
    """Voxels along x, y, z for a box of ``size`` mm (one number: a cube) cut into ``voxel_size``.
    Refuses a grid the kernels cannot hold before anything of that size is allocated."""
    size, voxel = float_array("size_mm", size, (3,)), float_array("voxel_size", voxel_size, (3,))
    if not (np.all(np.isfinite(voxel)) and np.all(np.isfinite(size))) or np.any(voxel <= 0) or np.any(size <= 0):
        raise ValueError(f"size_mm {size.tolist()} and voxel_size {voxel.tolist()} mm must be > 0 and finite")
    counts = size / voxel
    if np.prod(counts) > MAX_VOXELS:
        raise ValueError(f"voxel_size: {voxel.tolist()} mm cuts the {size.tolist()} mm box into "
                         f"{np.prod(counts):.3g} voxels, more than the limit of {MAX_VOXELS}")
    if not np.allclose(counts, np.round(counts), rtol=0, atol=1e-9):
        raise ValueError(f"size_mm {size.tolist()} mm is not a whole number of voxels of {voxel.tolist()} mm")
    return tuple(int(c) for c in np.round(counts))


def voxel_centres(shape, voxel_size) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable x, y, z coordinates (mm) of the voxel centres."""
    voxel = np.broadcast_to(np.asarray(voxel_size, dtype=np.float64), (3,))
    return tuple((np.arange(n) + 0.5) * d for n, d in zip(shape, voxel))


#: Relative slack on "boundary included": voxel centres in mm carry rounding (0.005 mm voxels are
#: not exact in binary), and a centre exactly on the surface in voxel units must stay inside.
BOUNDARY_RTOL = 1e-9


def ellipsoid_mask(shape, voxel_size, centre, semi_axes) -> np.ndarray:
    """Boolean (nx, ny, nz) mask of the voxels whose centre lies in the axis-aligned ellipsoid with
    ``semi_axes`` (a, b, c) mm about ``centre`` (mm): sum(((x - c) / a)^2) <= 1."""
    x, y, z = voxel_centres(shape, voxel_size)
    (cx, cy, cz), (a, b, c) = np.asarray(centre, dtype=np.float64), np.asarray(semi_axes, dtype=np.float64)
    q = (((x - cx) / a) ** 2)[:, None, None] + (((y - cy) / b) ** 2)[None, :, None] \
        + (((z - cz) / c) ** 2)[None, None, :]
    return q <= 1.0 + BOUNDARY_RTOL


def sphere_mask(shape, voxel_size, centre, radius: float) -> np.ndarray:
    """Boolean (nx, ny, nz) mask of the voxels whose centre lies within ``radius`` mm of ``centre``."""
    x, y, z = voxel_centres(shape, voxel_size)
    cx, cy, cz = np.asarray(centre, dtype=np.float64)
    r2 = ((x - cx) ** 2)[:, None, None] + ((y - cy) ** 2)[None, :, None] + ((z - cz) ** 2)[None, None, :]
    return r2 <= radius * radius * (1.0 + BOUNDARY_RTOL)


def cylinder_mask(shape, voxel_size, axis: int, centre, radius: float) -> np.ndarray:
    """Boolean mask of the voxels whose centre lies within ``radius`` mm of the line parallel to
    ``axis`` (0 = x, 1 = y, 2 = z) through ``centre``: the two other coordinates in mm, in order."""
    if axis not in (0, 1, 2):
        raise ValueError(f"axis: must be 0 (x), 1 (y) or 2 (z), got {axis!r}")
    coords = voxel_centres(shape, voxel_size)
    across = [i for i in range(3) if i != axis]
    u, v = (coords[i] - c for i, c in zip(across, np.asarray(centre, dtype=np.float64)))
    section = (u**2)[:, None] + (v**2)[None, :] <= radius * radius * (1.0 + BOUNDARY_RTOL)
    return np.broadcast_to(np.expand_dims(section, axis), shape)


def layer_labels(shape, voxel_size, thicknesses, below: int) -> np.ndarray:
    """uint8 labels of layers stacked from the surface (z = 0) down: layer i (``thicknesses[i]`` mm)
    gets label i + 1, voxels whose centre lies below the last layer get ``below``."""
    _, _, z = voxel_centres(shape, voxel_size)
    labels = np.full(shape, below, dtype=np.uint8)
    top = 0.0
    for i, thickness in enumerate(thicknesses):
        labels[:, :, (z >= top) & (z < top + thickness)] = i + 1
        top += thickness
    return labels


def _optics(n_ambient: float, *labels) -> np.ndarray:
    """Optics table: the ambient row 0, then one (mu_a, mu_s, g, n) row per label."""
    return np.array([(0.0, 0.0, 0.0, n_ambient), *labels], dtype=np.float64)


def _pencil(position) -> PencilBeam:
    # MCX's benchmarks launch without specular loss (DoSpecular 0)
    return PencilBeam(position=position, direction=(0.0, 0.0, 1.0), specular=False)


def _cube(size, voxel_size, tissue, fresnel: bool) -> Medium:
    """A cube of label 1; without Fresnel the ambient index equals the tissue's (MCX DoMismatch 0)."""
    labels = np.ones(grid_shape(size, voxel_size), dtype=np.uint8)
    n_ambient = 1.0 if fresnel else tissue[3]
    return Medium(labels, voxel_size, _optics(n_ambient, tissue), n_ambient=n_ambient, boundary="escape")


def cube60(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, source_position=(29.0, 29.0, 0.0),
           time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60``: a homogeneous 60 mm cube, pencil beam at (29, 29, 0), no reflection at the
    surface. MCX's absorbed fraction: 17.69 %."""
    return Phantom("cube60", _cube(size, voxel_size, tissue, fresnel=False), _pencil(source_position),
                   time_gate_ns, reference_absorbed=0.1769)


def cube60b(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, source_position=(29.0, 29.0, 0.0),
            time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60b``: ``cube60`` with Fresnel reflection against air (n = 1) on all six faces."""
    return Phantom("cube60b", _cube(size, voxel_size, tissue, fresnel=True), _pencil(source_position),
                   time_gate_ns)


def cube60planar(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, corner=(10.0, 10.0, -10.0),
                 edge1=(40.0, 0.0, 0.0), edge2=(0.0, 40.0, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``cube60planar``: ``cube60b`` lit by a uniform 40 x 40 mm planar beam launched in air
    10 mm above the top face."""
    source = RectangleSource(position=corner, direction=(0.0, 0.0, 1.0), edge1=edge1, edge2=edge2,
                             specular=False)
    return Phantom("cube60planar", _cube(size, voxel_size, tissue, fresnel=True), source, time_gate_ns)


def cubesph60b(size=60.0, voxel_size=1.0, tissue=MCX_TISSUE, sphere=(0.002, 5.0, 0.9, 1.0),
               sphere_centre=(30.0, 30.0, 30.0), sphere_radius=15.0,
               source_position=(29.0, 29.0, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``cubesph60b``: ``cube60b`` with a voxelised sphere of label 2 whose index (1.0) differs
    from the cube's, so photons refract at its staircase faces (results are voxel-specific)."""
    shape = grid_shape(size, voxel_size)
    labels = np.ones(shape, dtype=np.uint8)
    labels[sphere_mask(shape, voxel_size, sphere_centre, sphere_radius)] = 2
    medium = Medium(labels, voxel_size, _optics(1.0, tissue, sphere), n_ambient=1.0, boundary="escape")
    return Phantom("cubesph60b", medium, _pencil(source_position), time_gate_ns)


def spherebox(size=60.0, voxel_size=1.0, tissue=(0.002, 1.0, 0.01, 1.37),
              sphere=(0.05, 5.0, 0.9, 1.37), sphere_centre=(30.0, 30.0, 30.0), sphere_radius=10.0,
              source_position=(29.5, 29.5, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``spherebox``: an index-matched absorbing sphere (label 2) in a 60 mm cube, no reflection.
    (MCX records 50 time gates of 0.1 ns; only the 5 ns end of the window matters here.)"""
    shape = grid_shape(size, voxel_size)
    labels = np.ones(shape, dtype=np.uint8)
    labels[sphere_mask(shape, voxel_size, sphere_centre, sphere_radius)] = 2
    medium = Medium(labels, voxel_size, _optics(tissue[3], tissue, sphere), n_ambient=tissue[3],
                    boundary="escape")
    return Phantom("spherebox", medium, _pencil(source_position), time_gate_ns)


#: sphshells media, labels 1-4 (MCX src/mcx_bench.c). Label 4 is MCX's [0.05, 0, 1.0, 1.37]: with
#: mu_s = 0 the anisotropy never acts, and photonqd's media take g in (-1, 1), so g is written 0.
SPHSHELLS_MEDIA = ((0.02, 7.0, 0.89, 1.37), (0.004, 0.009, 0.89, 1.37), (0.02, 9.0, 0.89, 1.37),
                   (0.05, 0.0, 0.0, 1.37))


def sphshells(size=60.0, voxel_size=1.0, media=SPHSHELLS_MEDIA, centre=(30.0, 30.0, 30.0),
              radii=(25.0, 23.0, 10.0), source_position=(30.0, 30.1, 0.0), time_gate_ns=5.0) -> Phantom:
    """MCX ``sphshells``: concentric spheres in a 60 mm cube (label 1), painted outside-in: radius
    ``radii[0]`` -> label 2 (a thin, barely scattering shell), ``radii[1]`` -> 3, ``radii[2]`` -> 4
    (an absorbing, non-scattering core); Fresnel against air at the faces."""
    if len(radii) != 3 or not radii[0] > radii[1] > radii[2] > 0:
        raise ValueError(f"radii: need three radii R2 > R3 > R4 > 0 mm (outside in), got {radii!r}")
    if len(media) != 4:
        raise ValueError(f"media: need 4 rows (mu_a, mu_s, g, n) for labels 1-4, got {len(media)}")
    shape = grid_shape(size, voxel_size)
    labels = np.ones(shape, dtype=np.uint8)
    for label, radius in zip((2, 3, 4), radii):
        labels[sphere_mask(shape, voxel_size, centre, radius)] = label
    medium = Medium(labels, voxel_size, _optics(1.0, *media), n_ambient=1.0, boundary="escape")
    return Phantom("sphshells", medium, _pencil(source_position), time_gate_ns)


#: skinvessel media at 532 nm (MCX src/mcx_bench.c, from mcxyz's skin-vessel example): 1 a water-like
#: medium above the skin, 2 blood, 3 dermis, 4 epidermis. Label 1 is MCX's [3.564e-5, 1.0, 1.0, 1.37]:
#: scattering with g = 1 never changes direction, so it is written as mu_s = 0 (g in (-1, 1) here).
SKINVESSEL_MEDIA = ((3.564e-05, 0.0, 0.0, 1.37), (23.05426549, 9.398496241, 0.9, 1.37),
                    (0.04584957865, 35.65405549, 0.9, 1.37), (1.657237447, 37.59398496, 0.9, 1.37))


def skinvessel(size=1.0, voxel_size=0.005, media=SKINVESSEL_MEDIA, water_mm=0.1, epidermis_mm=0.06,
               vessel_centre=(0.5025, 0.5025), vessel_radius=0.1, source_position=(0.5, 0.5, 0.1),
               source_radius=0.3, time_gate_ns=50.0) -> Phantom:
    """MCX ``skinvessel`` (mcxyz's example at 532 nm): a 1 mm cube of 0.005 mm voxels; from the top,
    ``water_mm`` of label 1, ``epidermis_mm`` of epidermis (label 4), dermis (3) below, and a blood
    vessel (2) along x through (y, z) = ``vessel_centre``. A uniform disk beam of ``source_radius``
    starts at the top of the epidermis pointing +z; no reflection (ambient index = tissue index)."""
    if len(media) != 4:
        raise ValueError(f"media: need 4 rows (mu_a, mu_s, g, n) for labels 1-4, got {len(media)}")
    for name, value in (("water_mm", water_mm), ("epidermis_mm", epidermis_mm),
                        ("vessel_radius", vessel_radius)):
        _check(name, value, 1e-6, np.inf)
    shape = grid_shape(size, voxel_size)
    # layers in depth order (water, epidermis, dermis) carry MCX's labels 1, 4, 3; 2 is the vessel
    layers = layer_labels(shape, voxel_size, (water_mm, epidermis_mm), below=3)
    labels = np.array([0, 1, 4, 3], dtype=np.uint8)[layers]
    labels[cylinder_mask(shape, voxel_size, 0, vessel_centre, vessel_radius)] = 2
    n_ambient = media[0][3]
    source = DiskSource(position=source_position, direction=(0.0, 0.0, 1.0), radius=source_radius,
                        specular=False)
    medium = Medium(labels, voxel_size, _optics(n_ambient, *media), n_ambient=n_ambient, boundary="escape")
    return Phantom("skinvessel", medium, source, time_gate_ns)


#: MCX benchmark generators by name.
MCX_BENCHMARKS = {f.__name__: f for f in (cube60, cube60b, cube60planar, cubesph60b, spherebox, sphshells,
                                          skinvessel)}

#: tissue60's medium: (mu_a [1/mm], mu_s [1/mm], g, n), round values typical of soft tissue in the
#: near infrared (reduced scattering mu_s (1 - g) = 1/mm, g about 0.9; jacques2013 in CITATIONS).
TISSUE60_TISSUE = (0.01, 10.0, 0.9, 1.37)


def tissue60(size=60.0, voxel_size=1.0, tissue=TISSUE60_TISSUE, source_position=(29.0, 29.0, 0.0),
             time_gate_ns=5.0) -> Phantom:
    """photonqd's tissue-like speed case (not one of MCX's): ``cube60b`` (Fresnel against air on
    all six faces, pencil at (29, 29, 0) along +z without specular loss, 0-5 ns) filled with
    tissue-like optics, mu_s 10/mm and g 0.9: about 1,250 scattering events per photon, 16 times
    cube60's, which is where users' simulations spend their time."""
    return Phantom("tissue60", _cube(size, voxel_size, tissue, fresnel=True), _pencil(source_position),
                   time_gate_ns)


#: Every benchmark problem by name (``photonqd bench``, benchmarks/bench_mcxcl.py): MCX's and tissue60.
BENCHMARKS = {**MCX_BENCHMARKS, "tissue60": tissue60}


#: Default skin layers over muscle (top to bottom): tissue preset and thickness in mm. Epidermis
#: 0.1 mm, dermis 1.4 mm and subcutaneous fat 2 mm are typical of human skin on the trunk
#: (S. L. Jacques, Phys. Med. Biol. 58, R37 (2013) section 5; epidermis 0.05-0.15 mm,
#: dermis 1-2 mm); muscle fills the rest.
SKIN_LAYERS = (("epidermis", 0.1), ("dermis", 1.4), ("subcutaneous_fat", 2.0))


#: Sources of the fluorescence scenes' geometry, cited by key in the layer tables and docstrings.
CITATIONS = {
    "jacques2013": "S. L. Jacques, Optical properties of biological tissues: a review, Phys. Med. Biol. 58, "
                   "R37-R61 (2013), section 5 (skin layers)",
    "hong2014": "G. Hong et al., Through-skull fluorescence imaging of the brain in a new near-infrared "
                "window, Nat. Photonics 8, 723-730 (2014)",
    "carr2018": "J. A. Carr et al., Shortwave infrared fluorescence imaging with the clinically approved "
                "near-infrared dye indocyanine green, PNAS 115, 4465-4470 (2018)",
    "kim2004": "S. Kim et al., Near-infrared fluorescent type II quantum dots for sentinel lymph node "
               "mapping, Nat. Biotechnol. 22, 93-97 (2004)",
    "ying2003": "M. Ying and A. Ahuja, Sonography of neck lymph nodes. Part I: normal lymph nodes, "
                "Clin. Radiol. 58, 351-358 (2003)",
    "morel1974": "A. Morel, Optical properties of pure water and pure sea water, in Optical Aspects of "
                 "Oceanography (N. G. Jerlov, E. Steemann Nielsen, eds.), Academic Press, 1-24 (1974)",
}

#: Mouse head over the cortex (top to bottom): scalp 0.5 mm, modelled with the dermis preset (nude
#: and albino mice: thin epidermis, little melanin), and calvarial bone 0.2 mm; grey matter fills
#: the rest. Typical values for adult mice, not one animal's measurement and not taken from a
#: primary thickness study (hong2014 images through intact mouse scalp and skull; the thicknesses
#: are not from it): check them before quoting depths to better than ~0.1 mm.
MOUSE_HEAD_LAYERS = (("dermis", 0.5), ("skull", 0.2))

#: Skin over the subcutaneous fat that holds a sentinel lymph node: epidermis and dermis of
#: SKIN_LAYERS (jacques2013); fat fills the rest.
LYMPH_NODE_LAYERS = SKIN_LAYERS[:2]

#: A normal lymph node is oval (ying2003: short-to-long axis ratio mostly < 0.5 in normal nodes);
#: long axis 10 mm and short axes 5 mm, as semi-axes along x, y, z in mm. Typical size, not a
#: specific node.
LYMPH_NODE_SEMI_AXES_MM = (5.0, 2.5, 2.5)

#: Pure-water scattering (molecular, Rayleigh-like): b_w = 2.2e-3 /m at 500 nm, falling as
#: lambda^-4.32 (morel1974, tabulated over 350-600 nm). It only keeps a "water" Tissue well defined:
#: a mean free path of ~450 m makes the capillary's contents clear.
WATER_MUS_500NM_PER_MM = 2.2e-6
WATER_MUS_EXPONENT = 4.32


def water_tissue():
    """Water as a photonqd Tissue (photonqd.optics has no water preset): W = 1, no blood, fat or
    melanin; Morel's molecular scattering (isotropic to first order: g = 0); the refractive index of
    water (Kedenburg 2012, via photonqd.optics.water_refractive_index)."""
    from .optics import PowerLawScattering, Tissue, water_refractive_index

    scattering = PowerLawScattering(WATER_MUS_500NM_PER_MM, WATER_MUS_EXPONENT, (350.0, 600.0),
                                    source="water_scattering", citation=CITATIONS["morel1974"])
    return Tissue("water", blood=0.0, saturation=0.0, water=1.0, fat=0.0, melanin=0.0, scattering=scattering,
                  g=0.0, n=water_refractive_index, sources={"water.scattering": CITATIONS["morel1974"]})


def _check(name: str, value, lo: float, hi: float, unit: str = "mm") -> float:
    """``value`` as a float, or a ValueError naming ``name`` and the allowed range [lo, hi]."""
    if not isinstance(value, (int, float, np.number)) or not (np.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{name}: must be in [{lo:g}, {hi:g}] {unit}, got {value!r}")
    return float(value)


def _check_layers(layers) -> list[float]:
    """Layer thicknesses (mm), each checked > 0."""
    return [_check(f"layers ({tissue!r} thickness)", t, 1e-6, np.inf) for tissue, t in layers]


def _tissue(tissue):
    """A preset name becomes the preset; anything else is taken as a tissue object already."""
    from .optics import tissue_preset

    return tissue_preset(tissue) if isinstance(tissue, str) else tissue


def _target_depth(depth_mm, half_height, top, size_z, what: str) -> float:
    """Validate the depth of a target's centre: between the top ``top`` mm (the layers it lies
    under) plus its half height, and the bottom of the volume minus its half height."""
    lo, hi = top + half_height, size_z - half_height
    if lo > hi:
        raise ValueError(f"size_mm: a volume {size_z:g} mm deep cannot hold {what} of half height "
                         f"{half_height:g} mm under {top:g} mm of layers")
    return _check("depth_mm", depth_mm, lo, hi)


def _box(size_mm, voxel_size) -> tuple[tuple, tuple]:
    """The box size (x, y, z) in mm (one number: a cube) and its grid shape."""
    shape = grid_shape(size_mm, voxel_size)
    return tuple(float_array("size_mm", size_mm, (3,)).tolist()), shape


def _layered_scene(voxel_size, layers, base, target, target_tissue, quantum_dot, concentration_uM, n_ambient):
    """Layers (tissue, thickness) from the surface down over ``base``, with the boolean ``target``
    as the highest label; the QD, if any, fills the target at ``concentration_uM``."""
    from .fluorescence import FluorescenceScene

    if not target.any():
        raise ValueError("voxel_size: too coarse to hold any voxel of the target; refine it or enlarge "
                         "the target")
    concentration_uM = _check("concentration_uM", concentration_uM, 0.0, np.inf, "µM")
    labels = layer_labels(target.shape, voxel_size, [t for _, t in layers], below=len(layers) + 1)
    labels[target] = len(layers) + 2
    tissues = [t for t, _ in layers] + [base, target_tissue]
    scene = FluorescenceScene(labels, voxel_size, {i + 1: _tissue(t) for i, t in enumerate(tissues)},
                              n_ambient=n_ambient, target=target)
    if quantum_dot is not None:
        scene.add_fluorophore(quantum_dot, np.where(target, concentration_uM, 0.0))
    return scene


def target_centre_mm(scene) -> tuple[float, float, float]:
    """Centroid (x, y, z) in mm of a scene's target voxels; (x, y) is the default camera centre."""
    if getattr(scene, "target", None) is None or not np.any(scene.target):
        raise ValueError("scene: has no target mask")
    voxel = np.broadcast_to(np.asarray(scene.voxel_size, dtype=np.float64), (3,))
    index = np.argwhere(scene.target).mean(axis=0)
    return tuple(float(v) for v in (index + 0.5) * voxel)


def skin_tumour(depth_mm: float = 3.0, radius_mm: float = 1.0, size_mm=(20.0, 20.0, 15.0),
                voxel_size=(0.25, 0.25, 0.1), layers=SKIN_LAYERS, quantum_dot=None,
                concentration_uM: float = 1.0, n_ambient: float = 1.0):
    """Layered skin over skeletal muscle with a spherical tumour (``tumour_generic``) whose centre
    lies ``depth_mm`` below the surface, at the centre of the field; with ``quantum_dot`` the
    tumour holds it at ``concentration_uM``. Returns a photonqd.fluorescence.FluorescenceScene."""
    size_mm, shape = _box(size_mm, voxel_size)
    radius_mm = _check("radius_mm", radius_mm, 1e-6, min(size_mm) / 2)
    depth_mm = _target_depth(depth_mm, radius_mm, 0.0, size_mm[2], "a tumour")
    tumour = sphere_mask(shape, voxel_size, (size_mm[0] / 2, size_mm[1] / 2, depth_mm), radius_mm)
    return _layered_scene(voxel_size, layers, "skeletal_muscle", tumour, "tumour_generic", quantum_dot,
                          concentration_uM, n_ambient)


def intralipid_capillary(depth_mm: float = 2.0, inner_radius_mm: float = 0.25, intralipid_percent: float = 1.0,
                         size_mm=(10.0, 10.0, 6.0), voxel_size=(0.25, 0.05, 0.05), quantum_dot=None,
                         concentration_uM: float = 1.0, stock: str = "Intralipid 20%", n_ambient: float = 1.0):
    """A tank of diluted Intralipid with a QD-filled capillary along x whose axis lies ``depth_mm``
    below the liquid surface, at the middle of y: the standard NIR-II depth phantom (hong2014,
    carr2018). The capillary holds QDs in water (:func:`water_tissue`); its glass wall is not
    modelled. Concentration: "X % Intralipid" is X g soybean oil per 100 mL, the convention of
    photonqd.optics.Intralipid.from_percent (1 % = a 1:20 dilution of Intralipid 20 %, lipid volume
    fraction 0.0109); at most the stock's own percentage. Returns a FluorescenceScene."""
    from .optics import Intralipid
    from .optics.intralipid import MICHELS_2008

    size_mm, shape = _box(size_mm, voxel_size)
    if stock not in MICHELS_2008:
        raise ValueError(f"stock: must be one of {sorted(MICHELS_2008)}, got {stock!r}")
    stock_percent = MICHELS_2008[stock]["oil_g_per_L"] / 10.0
    percent = _check("intralipid_percent", intralipid_percent, 1e-6, stock_percent, "% (g oil / 100 mL)")
    radius = _check("inner_radius_mm", inner_radius_mm, 1e-6, size_mm[1] / 2)
    depth = _target_depth(depth_mm, radius, 0.0, size_mm[2], "a capillary")
    capillary = cylinder_mask(shape, voxel_size, 0, (size_mm[1] / 2, depth), radius)
    return _layered_scene(voxel_size, (), Intralipid.from_percent(percent, stock), capillary, water_tissue(),
                          quantum_dot, concentration_uM, n_ambient)


def mouse_head(depth_mm: float = 1.5, radius_mm: float = 0.5, size_mm=(10.0, 10.0, 5.0),
               voxel_size=(0.1, 0.1, 0.05), layers=MOUSE_HEAD_LAYERS, brain="brain_grey_matter",
               target_tissue="tumour_generic", quantum_dot=None, concentration_uM: float = 1.0,
               n_ambient: float = 1.0):
    """Mouse head: scalp and skull (``layers``, from the surface down) over the brain, with a
    spherical target (default ``tumour_generic``, e.g. a labelled brain tumour) whose centre lies
    ``depth_mm`` below the scalp surface, wholly inside the brain, at the centre of the field.
    ``layers`` entries are (tissue preset name or tissue object, thickness mm). Returns a
    FluorescenceScene; the target is its highest label and its ``target`` mask."""
    size_mm, shape = _box(size_mm, voxel_size)
    top = sum(_check_layers(layers))
    radius = _check("radius_mm", radius_mm, 1e-6, min(size_mm[:2]) / 2)
    depth = _target_depth(depth_mm, radius, top, size_mm[2], "a target in the brain")
    target = sphere_mask(shape, voxel_size, (size_mm[0] / 2, size_mm[1] / 2, depth), radius)
    return _layered_scene(voxel_size, layers, brain, target, target_tissue, quantum_dot, concentration_uM,
                          n_ambient)


def lymph_node(depth_mm: float = 8.0, semi_axes_mm=LYMPH_NODE_SEMI_AXES_MM, size_mm=(30.0, 30.0, 15.0),
               voxel_size=(0.25, 0.25, 0.1), layers=LYMPH_NODE_LAYERS, fat="subcutaneous_fat",
               node_tissue="tumour_generic", quantum_dot=None, concentration_uM: float = 1.0,
               n_ambient: float = 1.0):
    """A QD-labelled sentinel lymph node in subcutaneous fat under skin (``layers``: epidermis,
    dermis): an axis-aligned ellipsoid with ``semi_axes_mm`` (long axis along x, parallel to the
    skin) whose centre lies ``depth_mm`` below the surface, wholly in the fat, at the centre of the
    field. NIR QDs were first used this way by kim2004 (nodes ~1 cm deep in pigs). photonqd.optics
    has no lymph-node preset: ``node_tissue`` defaults to ``tumour_generic`` (vascularised soft
    tissue, like a node draining a tumour) as a stand-in. Returns a FluorescenceScene."""
    size_mm, shape = _box(size_mm, voxel_size)
    top = sum(_check_layers(layers))
    if len(semi_axes_mm) != 3:
        raise ValueError(f"semi_axes_mm: need three semi-axes (x, y, z) in mm, got {semi_axes_mm!r}")
    a, b, c = (_check(f"semi_axes_mm[{i}]", v, 1e-6, size_mm[i] / 2) for i, v in enumerate(semi_axes_mm))
    depth = _target_depth(depth_mm, c, top, size_mm[2], "a lymph node in the fat")
    node = ellipsoid_mask(shape, voxel_size, (size_mm[0] / 2, size_mm[1] / 2, depth), (a, b, c))
    return _layered_scene(voxel_size, layers, fat, node, node_tissue, quantum_dot, concentration_uM, n_ambient)
