"""Adjoint (camera-side) detection: reciprocity of the CameraLaunch fluence with forward emission
runs scored by an ExitMap with the same footprint and NA (docs/adjoint.md), on every backend.

Forward and adjoint runs use independent seeds; agreement is a z-score of their batch-means
errors. Each check also shows its power: removing the 1/n² radiance factor, or launching a
collimated beam instead of the cone, moves the adjoint many standard errors away.
"""

import math

import numpy as np
import pytest

import photonqd as pq
from photonqd.testing import zscore
from photonqd.adjoint import detection_probability, etendue
from photonqd.sources import VoxelEmission

NA = 0.5                                          # in air: theta_max = 30 degrees
HALF_ANGLE = math.degrees(math.asin(NA))
N_TISSUE = 1.4
PHOTONS = {"numpy": (40_000, 20_000)}             # (forward, adjoint); kernel backends: DEFAULT
DEFAULT = (200_000, 100_000)


def photons(backend):
    return PHOTONS.get(backend, DEFAULT)


def forward_p(result):
    return result.mean_and_error("exit_map")


# --- a laterally invariant slab, n = 1.4 under air --------------------------------------------------
W, DZ, NZ, LAYER = 50.0, 0.1, 25, 7               # the point sits in layer 7: depth 0.75 mm


def slab():
    optics = [[0, 0, 0, 1.0], [0.3, 3.0, 0.8, N_TISSUE]]
    return pq.Medium(np.ones((1, 1, NZ), np.uint8), (W, W, DZ), optics, n_ambient=1.0,
                     boundary={f: "mirror" for f in ("x-", "x+", "y-", "y+")})


def test_reciprocity_in_a_slab(backend):
    """Isotropic point at depth -> camera over the face (NA 0.5) equals the camera launch over the
    face -> fluence in the point's layer. The layer is thin, so its average is the point's value to
    O(dz^2); with mirror sides the point's lateral position does not matter."""
    n_fwd, n_adj = photons(backend)
    m = slab()
    fwd = pq.Simulation(m, pq.IsotropicPoint((W / 2, W / 2, (LAYER + 0.5) * DZ)), photons=n_fwd, seed=11,
                        exit_map=pq.ExitMap((1, 1), (W, W), half_angle_deg=HALF_ANGLE)).run(backend)
    p_fwd, e_fwd = forward_p(fwd)
    sim = pq.Simulation(m, pq.CameraLaunch((0, 0, 0), footprint=(W, W), na=NA), photons=n_adj, seed=12,
                        keep_batches=("fluence",))
    d = detection_probability(sim, sim.run(backend))
    p_adj, e_adj = d.probability[0, 0, LAYER], d.error[0, 0, LAYER]
    z = zscore(p_adj, e_adj, p_fwd, e_fwd)
    assert abs(z) <= 3, f"adjoint {p_adj:.5g} +- {e_adj:.2g} vs forward {p_fwd:.5g} +- {e_fwd:.2g}: z = {z:.2f}"
    # the 1/n^2 radiance factor is resolved: without it the adjoint is n^2 = 1.96 x too high
    z_without = zscore(p_adj * N_TISSUE**2, e_adj * N_TISSUE**2, p_fwd, e_fwd)
    assert z_without > 20, z_without


# --- a pixel and a voxel beside it, two wavelength bins ------------------------------------------------
H = 0.25                                         # voxel size, mm
PIXEL = ((1.75, 1.75, 0.0), (0.5, 0.5))          # corner, footprint: the grid's central 0.5 mm
VOXEL = (9, 8, 4)                                # x in [2.25, 2.5] (just beside the pixel), z in [1, 1.25]
BIN_WEIGHTS = (1.0, 3.0)
N_BIN = (N_TISSUE, 1.33)                         # the bins differ in index and scattering


def pixel_medium():
    optics = [[[0, 0, 0, 1.0], [0.05, 1.0, 0.8, N_BIN[0]]],
              [[0, 0, 0, 1.0], [0.08, 0.7, 0.8, N_BIN[1]]]]
    return pq.Medium(np.ones((16, 16, 12), np.uint8), (H, H, H), optics)


def pixel_forward(backend, b):
    """Emitters uniform in VOXEL, all in bin b, detected through the pixel inside the cone."""
    density = np.zeros((16, 16, 12))
    density[VOXEL] = 1.0
    weights = np.eye(2)[b]
    exit_map = pq.ExitMap((1, 1), PIXEL[1], origin=PIXEL[0][:2], half_angle_deg=HALF_ANGLE)
    sim = pq.Simulation(pixel_medium(), VoxelEmission(density=density, bin_weights=weights),
                        photons=photons(backend)[0], seed=21 + b, exit_map=exit_map)
    return forward_p(sim.run(backend))


def test_reciprocity_for_a_pixel_per_band(backend):
    """One camera launch over a pixel carrying both bins (bin_weights 1 : 3, one fluence band per
    bin) against forward runs from a voxel beside the pixel, one per bin. Each band's P is
    p_b P_b, with its own 1/n_b^2. The voxel lies outside the pixel's vertical column, inside its
    refracted cone: a collimated launch over the pixel reaches it only by scattering."""
    m = pixel_medium()
    sim = pq.Simulation(m, pq.CameraLaunch(PIXEL[0], footprint=PIXEL[1], na=NA, bin_weights=BIN_WEIGHTS),
                        photons=photons(backend)[1], seed=22, fluence_bands=(0, 1), keep_batches=("fluence",))
    result = sim.run(backend)
    assert result.fluence.shape == (2, *m.shape)
    d = detection_probability(sim, result)
    p_bin = np.asarray(BIN_WEIGHTS) / sum(BIN_WEIGHTS)
    forward = [pixel_forward(backend, b) for b in range(2)]
    for b, (p_fwd, e_fwd) in enumerate(forward):
        p_adj, e_adj = d.probability[(b, *VOXEL)] / p_bin[b], d.error[(b, *VOXEL)] / p_bin[b]
        z = zscore(p_adj, e_adj, p_fwd, e_fwd)
        assert abs(z) <= 3, f"bin {b}: adjoint {p_adj:.4g} +- {e_adj:.2g} vs forward {p_fwd:.4g} +- {e_fwd:.2g}"

    # a collimated launch over the same pixel (normal incidence, same Fresnel loss at entry) is far off
    collimated = pq.Simulation(m, pq.RectangleSource(PIXEL[0], edge1=(0.5, 0, 0), edge2=(0, 0.5, 0)),
                               photons=photons(backend)[1], seed=23, keep_batches=("fluence",)).run(backend)
    fluence = np.array([t["fluence"][VOXEL] for t in collimated.batch_tallies])
    scale = etendue(0.25, NA) / (4 * math.pi * N_BIN[0] ** 2)
    p_col = scale * collimated.fluence[VOXEL]
    e_col = scale * fluence.std(ddof=1) / math.sqrt(len(fluence))
    p_fwd, e_fwd = forward[0]
    assert zscore(p_col, e_col, p_fwd, e_fwd) < -5, (p_col, p_fwd)


def test_bands_add_up_to_the_unbanded_tally(backend):
    """Fluence bands split the same photon histories (bins drawn the same way): their sum is the
    one-volume tally up to float rounding, and a band of empty bins stays empty."""
    optics = np.tile([[0, 0, 0, 1.0], [0.1, 2.0, 0.8, 1.4]], (3, 1, 1))
    m = pq.Medium(np.ones((3, 3, 4), np.uint8), 0.5, optics)
    src = pq.CameraLaunch((0.5, 0.5, 0), footprint=(0.5, 0.5), na=0.8, bin_weights=(1.0, 2.0, 0.0))
    one = pq.Simulation(m, src, photons=2000, seed=5).run(backend)
    banded = pq.Simulation(m, src, photons=2000, seed=5, fluence_bands=(1, 0, 2)).run(backend)
    assert banded.fluence.shape == (3, 3, 3, 4)
    np.testing.assert_allclose(banded.fluence.sum(axis=0), one.fluence, rtol=1e-12, atol=0)
    assert banded.fluence[0].sum() > banded.fluence[1].sum() > 0 and banded.fluence[2].sum() == 0


# --- refusals ----------------------------------------------------------------------------------------
def test_bad_camera_launches_are_refused():
    m = pq.Medium.uniform((4, 4, 4), 0.5, 0.1, 1.0, 0.8, 1.4)
    with pytest.raises(ValueError, match="^na"):
        pq.CameraLaunch((0, 0, 0), na=0.0)
    with pytest.raises(ValueError, match="^position"):
        pq.CameraLaunch((0, 0, -0.1), na=0.3)
    with pytest.raises(ValueError, match="^direction"):
        pq.CameraLaunch((0, 0, 0), direction=(0, 0, -1))
    with pytest.raises(ValueError, match="^footprint"):
        pq.CameraLaunch((0, 0, 0), footprint=(1.0, -1.0))
    checks = {"na": pq.CameraLaunch((0, 0, 0), na=1.2),     # above the ambient index 1
              "position/footprint": pq.CameraLaunch((1, 1, 0), footprint=(1.5, 3.5)),
              "bin_weights": pq.CameraLaunch((0, 0, 0), bin_weights=(1.0, 1.0)),
              "wavelength_bin": pq.CameraLaunch((0, 0, 0), wavelength_bin=1)}
    for field, src in checks.items():
        with pytest.raises(ValueError, match=f"^{field}"):
            pq.Simulation(m, src, photons=10).check()
    mirrored = pq.Medium.uniform((4, 4, 4), 0.5, 0.1, 1.0, 0.8, 1.4, boundary={"z-": "mirror"})
    with pytest.raises(ValueError, match="^medium: a camera launch"):
        pq.Simulation(mirrored, pq.CameraLaunch((0, 0, 0)), photons=10).check()


def test_bad_fluence_bands_and_detection_inputs_are_refused():
    m = pq.Medium.uniform((4, 4, 4), 0.5, 0.1, 1.0, 0.8, 1.4)
    for bands in [(0, 1), (1,), (0.5,), ("a",), (-1,)]:
        with pytest.raises(ValueError, match="^fluence_bands"):
            pq.Simulation(m, pq.CameraLaunch((0, 0, 0)), photons=10, fluence_bands=bands).check()
    from photonqd.tallies import TallyLayout
    with pytest.raises(ValueError, match="fluence_bands"):
        TallyLayout(n_voxels=2**27, fluence=True, n_species=0, map_pixels=0, fluence_bands=16).check()

    point = pq.Simulation(m, pq.CameraLaunch((1, 1, 0), na=0.3), photons=200, seed=1)
    res = point.run("numpy")
    with pytest.raises(ValueError, match="^area_mm2"):
        detection_probability(point, res)
    assert detection_probability(point, res, area_mm2=1.0).error is None   # batches not kept
    specless = pq.Simulation(m, pq.CameraLaunch((1, 1, 0), footprint=(1, 1), specular=False), photons=10)
    with pytest.raises(ValueError, match="specular"):
        detection_probability(specless, res)
    beam = pq.Simulation(m, pq.PencilBeam((1, 1, 0)), photons=10)
    with pytest.raises(TypeError, match="CameraLaunch"):
        detection_probability(beam, res)
