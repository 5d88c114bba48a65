"""Fluorescence scenes: layered tissue with a labelled target, the depth study's phantoms.

Each generator (``skin_tumour``, ``intralipid_capillary``, ``mouse_head``, ``lymph_node``) returns
a photonqd.scene.Scene: layers from the surface down over a base medium, and a target that carries
the highest label and is the scene's ``target`` mask (with a QD, also where its concentration is
> 0). Targets are centred laterally, so the camera's default centre is the middle of the z = 0
face: ``target_centre_mm(scene)[:2]``. "Depth" is always the depth of the target's centre (the
capillary's axis) below the surface. Layer tables are module constants with their sources
(``CITATIONS``); phantoms/README.md lists every phantom with its citations.
"""

from __future__ import annotations

import numpy as np

from ..checks import float_array
from ..scene import Fluorophore, Scene
from .shapes import cylinder_mask, ellipsoid_mask, grid_shape, layer_labels, sphere_mask


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
    from ..optics import PowerLawScattering, Tissue, water_refractive_index

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
    from ..optics import tissue_preset

    return tissue_preset(tissue) if isinstance(tissue, str) else tissue


def _target_depth(depth_mm, half_height, top, size_z, what: str, reaches_surface: bool = False) -> float:
    """Validate the depth of a target's centre: between the top ``top`` mm (the layers it lies
    under) plus its half height, and the bottom of the volume minus its half height. A target that
    ``reaches_surface`` may lie higher, its centre anywhere below the surface (z >= 0): the surface
    cuts off what would stick out."""
    lo, hi = (0.0 if reaches_surface else top + half_height), size_z - half_height
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
    if not target.any():
        raise ValueError("voxel_size: too coarse to hold any voxel of the target; refine it or enlarge "
                         "the target")
    concentration_uM = _check("concentration_uM", concentration_uM, 0.0, np.inf, "µM")
    labels = layer_labels(target.shape, voxel_size, [t for _, t in layers], below=len(layers) + 1)
    labels[target] = len(layers) + 2
    tissues = [t for t, _ in layers] + [base, target_tissue]
    fluorophores = () if quantum_dot is None else \
        (Fluorophore(quantum_dot, np.where(target, concentration_uM, 0.0)),)
    return Scene(labels, voxel_size, {i + 1: _tissue(t) for i, t in enumerate(tissues)}, n_ambient=n_ambient,
                 fluorophores=fluorophores, target=target)


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
    tumour holds it at ``concentration_uM``. A tumour shallower than its radius reaches the skin
    surface and is cut off by it (a superficial lesion that has replaced the epidermis above it).
    Returns a photonqd.scene.Scene."""
    size_mm, shape = _box(size_mm, voxel_size)
    radius_mm = _check("radius_mm", radius_mm, 1e-6, min(size_mm) / 2)
    depth_mm = _target_depth(depth_mm, radius_mm, 0.0, size_mm[2], "a tumour", reaches_surface=True)
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
    fraction 0.0109); at most the stock's own percentage. Returns a Scene."""
    from ..optics import Intralipid
    from ..optics.intralipid import MICHELS_2008

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
    Scene; the target is its highest label and its ``target`` mask."""
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
    tissue, like a node draining a tumour) as a stand-in. Returns a Scene."""
    size_mm, shape = _box(size_mm, voxel_size)
    top = sum(_check_layers(layers))
    if len(semi_axes_mm) != 3:
        raise ValueError(f"semi_axes_mm: need three semi-axes (x, y, z) in mm, got {semi_axes_mm!r}")
    a, b, c = (_check(f"semi_axes_mm[{i}]", v, 1e-6, size_mm[i] / 2) for i, v in enumerate(semi_axes_mm))
    depth = _target_depth(depth_mm, c, top, size_mm[2], "a lymph node in the fat")
    node = ellipsoid_mask(shape, voxel_size, (size_mm[0] / 2, size_mm[1] / 2, depth), (a, b, c))
    return _layered_scene(voxel_size, layers, fat, node, node_tissue, quantum_dot, concentration_uM, n_ambient)
