"""Test support: photon budgets per backend, small reference media and z-scores.

Used by photonqd's own tests (and usable by anyone testing code built on photonqd), in the way
``numpy.testing`` or ``cupy.testing`` serve their projects. Nothing here is needed at run time.
"""

from __future__ import annotations

import numpy as np

from .medium import Medium
from .validation.cases import slab as slab_scene

#: NumPy runs a test at 1/NUMPY_DIVISOR of the kernel backends' photons, at most NUMPY_CAP photons.
NUMPY_DIVISOR = 25
NUMPY_CAP = 4000
#: CUDA devices run this many times the OpenCL figure: it costs them nothing and adds power.
CUDA_FACTOR = 4


def photon_budget(backend: str, kernel: int, numpy: int | None = None) -> int:
    """Photons a statistical test launches on ``backend``.

    ``kernel`` is the count the test needs for its power on OpenCL (PoCL on two CPU cores must run
    it in seconds); CUDA runs CUDA_FACTOR times that; the NumPy reference runs ``numpy`` if given
    (for photons that are costly in NumPy), else kernel / NUMPY_DIVISOR capped at NUMPY_CAP.
    """
    if not (isinstance(kernel, (int, np.integer)) and kernel >= 1):
        raise ValueError(f"kernel: photons must be an integer >= 1, got {kernel!r}")
    if backend == "numpy":
        n = numpy if numpy is not None else min(kernel // NUMPY_DIVISOR, NUMPY_CAP)
        return max(int(n), 1)
    if backend == "cuda":
        return int(kernel) * CUDA_FACTOR
    return int(kernel)


class Budget:
    """``budget(kernel=100_000)``: :func:`photon_budget` for one backend, as the tests' fixture."""

    def __init__(self, backend: str):
        self.backend = backend

    def __call__(self, kernel: int, numpy: int | None = None) -> int:
        return photon_budget(self.backend, kernel, numpy)


#: The [study] and [excitation] tables of a small adjoint depth study (TOML; tests replace lines of
#: it), for SMALL_PHANTOM: a few seconds on OpenCL.
SMALL_STUDY = """[study]
phantom = "skin_tumour"
method = "adjoint"
depths_mm = [1.0, 2.0]
photons = 600
emission_photons = 600
max_emission_photons = 600
adjoint_photons = 2000
max_adjoint_photons = 2000
correction_photons = 500
seed = 5

[excitation]
wavelength_nm = 808
irradiance_mw_per_cm2 = 50
beam_radius_mm = 2
"""
#: The [phantom] table of SMALL_STUDY: a 0.5 mm tumour in skin, 10 x 10 x 4 mm, 0.5 x 0.5 x 0.25 mm voxels.
SMALL_PHANTOM = """[phantom]
radius_mm = 0.5
size_mm = [10.0, 10.0, 4.0]
voxel_size = [0.5, 0.5, 0.25]
"""
#: The camera of the tests' small depth studies.
SMALL_CAMERA = """[camera]
field_of_view_mm = 6
pixels = 12
numerical_aperture = 0.3
exposure_s = "auto"
target_radius_mm = 0.5
background_annulus_mm = [1.5, 2.5]
"""
#: The camera and two probes (NIR-I, NIR-II) of the tests' small depth studies (TOML, appended to
#: their [study], [phantom] and [excitation] tables).
SMALL_CAMERA_AND_PROBES = SMALL_CAMERA + """
[[probe]]
name = "NIR-I"
quantum_dot = "cdtese_zns_800"
concentration_uM = 0.1
window_nm = [820, 900]
sensor = "silicon_ccd_bidd"

[[probe]]
name = "NIR-II"
quantum_dot = "pbs_cds_1300"
concentration_uM = 0.1
window_nm = [1250, 1400]
sensor = "ingaas_standard"
"""


def zscore(a, sa, b, sb=0.0):
    """(a - b) in units of the combined standard error of two independent estimates."""
    return (a - b) / np.sqrt(np.square(sa) + np.square(sb))


def slab(mua, mus, g, n, thickness, n_ambient=1.0, side="mirror", width=100.0) -> Medium:
    """The engine's medium of a laterally infinite slab (photonqd.validation.cases.slab): one voxel
    with mirror (or cyclic) side faces."""
    return slab_scene(mua, mus, g, n, thickness, n_ambient, side, width).medium()[0]


def heterogeneous() -> Medium:
    """Three tissues with internal index mismatches and unequal voxel sizes."""
    labels = np.ones((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 2:6] = 2
    labels[:, :, 7:] = 3
    optics = [[0, 0, 0, 1], [0.02, 2.0, 0.8, 1.37], [0.1, 5.0, 0.9, 1.5], [0.01, 1.0, 0.0, 1.33]]
    return Medium(labels, (1.0, 1.0, 0.8), optics)
