"""Fluorescence imaging: bookkeeping, physics checks and cross-backend agreement."""

import dataclasses
import math

import numpy as np
import pytest

import photonqd as pq
from photonqd.camera import Camera, EmissionFilter, Sensor
from photonqd.fluorescence import Excitation
from photonqd.scene import Scene
from photonqd.optics import qd_preset, tissue_preset
from photonqd.optics.quantum_dots import GaussianEmission
from photonqd.sources import VoxelEmission
from photonqd.testing import zscore

IDEAL = Sensor("ideal", np.array([300.0, 2000.0]), np.array([1.0, 1.0]), read_noise_e=0.0,
               dark_current_e_per_s=0.0)


def camera(band=(1250, 1400), na=1.0, shape=(8, 8), fov=4.0, sensor=IDEAL, **filter_options):
    return Camera(field_of_view_mm=(fov, fov), pixels=shape, centre_mm=(fov / 2, fov / 2),
                  numerical_aperture=na, emission_filter=EmissionFilter(*band, transmission_in_band=1.0,
                                                                        **filter_options),
                  sensor=sensor, exposure_s=1.0)


def tissue():
    return tissue_preset("skeletal_muscle")


def scene(qd_conc=2.0, qd=None, boundary="escape"):
    labels = np.ones((8, 8, 6), np.uint8)
    s = Scene(labels, 0.5, {1: tissue()}, autofluorescence={1: None}, boundary=boundary)
    if qd_conc:
        conc = np.zeros(labels.shape, np.float32)
        conc[3:5, 3:5, 1:3] = qd_conc
        s = s.with_fluorophore(qd or qd_preset("pbs_cds_1300"), conc)
    return s


EXCITATION = Excitation(pq.DiskSource((2, 2, 0), radius=1.5), 808.0, 10.0)


def test_emitted_photons_are_quantum_yield_times_absorbed(backend):
    res = scene().run(EXCITATION, camera(), photons=1000, backend=backend)
    qd = res.stage.species[0].quantum_dot
    assert res.emitted[0] == pytest.approx(qd.quantum_yield * res.stage.result.fluorophore_absorbed.sum())
    assert res.emitted[0] > 0
    # the bins span the band seen by some ray of the cone: at NA 1 (n_eff 2) the 1250 nm edge reaches
    # 1250 * sqrt(1 - 1/4) = 1082.5 nm for the grazing rays
    lo, hi = camera().detection_band
    assert (lo, hi) == pytest.approx((1250 * math.sqrt(0.75), 1400))
    assert res.band_fraction[0] == pytest.approx(qd.emission.band_fraction(lo, hi), rel=1e-3)
    assert res.signal_per_photon.sum() > 0


def test_no_fluorophore_no_quantum_yield_no_band_no_signal(backend):
    empty = scene(qd_conc=0).run(EXCITATION, camera(), photons=300, backend=backend)
    assert empty.signal_per_photon.shape[0] == 0 and empty.signal_e.sum() == 0
    dark_qd = dataclasses.replace(qd_preset("pbs_cds_1300"), quantum_yield=0.0)
    dark = scene(qd=dark_qd).run(EXCITATION, camera(), photons=300, backend=backend)
    assert dark.signal_per_photon.sum() == 0 and dark.emitted[0] == 0
    with pytest.warns(UserWarning, match="emission_filter"):
        off_band = scene().run(EXCITATION, camera(band=(700, 800)), photons=300, backend=backend)
    assert off_band.band_fraction[0] < 1e-12 and off_band.signal_per_photon.sum() < 1e-15


def test_band_fraction_weighting_is_unbiased(backend, budget):
    """Sampling the spectrum inside the band with the band fraction as weight equals sampling the
    whole spectrum and filtering afterwards (z-score of the two exit-map totals)."""
    emission = GaussianEmission(1300.0, 120.0)
    edges_full = np.linspace(1100, 1500, 9)
    centres = 0.5 * (edges_full[:-1] + edges_full[1:])
    optics = np.array([[[0, 0, 0, 1], [0.01 + 0.0001 * c / 10, 2.0, 0.8, 1.37]] for c in centres])
    m = pq.Medium(np.ones((6, 6, 4), np.uint8), 0.5, optics)
    density = np.zeros((6, 6, 4))
    density[2:4, 2:4, 1] = 1
    weights = np.array([emission.band_fraction(a, b) for a, b in zip(edges_full[:-1], edges_full[1:])])
    in_band = (centres > 1250) & (centres < 1400)
    n = budget(kernel=100_000)
    results = []
    for bin_weights, efficiency, stream in ((weights, in_band.astype(float), 1),
                                            (np.where(in_band, weights, 0), np.ones(8), 2)):
        exit_map = pq.ExitMap((1, 1), 3.0, bin_efficiency=efficiency)
        r = pq.Simulation(m, VoxelEmission(density=density, bin_weights=bin_weights), photons=n,
                          exit_map=exit_map, rng_stream=stream, batch_photons=n // 10).run(backend)
        value, error = r.mean_and_error("exit_map")
        scale = bin_weights.sum()
        results.append((value * scale, error * scale))
    (a, sa), (b, sb) = results
    assert abs(zscore(a, sa, b, sb)) < 4


def test_infinite_medium_emission_equals_qy_times_absorption_share(backend):
    """Uniform fluorophore, isotropic excitation, photons cannot leave (mirror faces): emitted
    fluorescence per excitation photon = QY * mu_a,f / mu_a,total (times 1 + net roulette weight)."""
    labels = np.ones((3, 3, 3), np.uint8)
    qd = qd_preset("pbs_cds_1300")
    s = Scene(labels, 1.0, {1: tissue()}, autofluorescence={1: None}, boundary="mirror").with_fluorophore(qd, 1.0)
    exc = Excitation(pq.IsotropicPoint((1.5, 1.5, 1.5)), 808.0, 1.0, area_mm2=1.0)
    stage = s.excite(exc, camera(), photons=400, backend=backend)
    mua_f = float(qd.mua_per_uM([808.0])[0])
    mua_t = float(tissue().properties([808.0]).mua[0])
    expected = qd.quantum_yield * mua_f / (mua_f + mua_t) * (1 + stage.result.roulette)
    emitted = qd.quantum_yield * stage.result.fluorophore_absorbed.sum()
    assert emitted == pytest.approx(expected, rel=1e-5)


def test_point_emitter_escape_matches_diffusion_theory(fast_backend):
    """Isotropic point emitter at depth z0 in a semi-infinite, index-matched medium. Diffusion
    theory with the extrapolated boundary (zb = 2D; image source at -(z0 + 2 zb)) integrated over
    the surface gives the escaping fraction R = [exp(-mu_eff z0) + exp(-mu_eff (z0 + 2 zb))] / 2
    (Fick's law at z = 0; Farrell, Patterson & Wilson, Med. Phys. 19, 879 (1992) for the geometry).
    Valid for z0 of a few transport mean free paths and mu_a << mu_s'; here z0 = 2.9-7.9 transport
    mfp and mu_a/mu_s' = 0.05, where diffusion is accurate to a few per cent, and the 30 mm box
    loses ~0.5 % through its sides: tolerance 6 %. A 0.5 mm error in depth changes R by 18 %."""
    mua, mus, g, dz = 0.05, 2.0, 0.5, 0.5
    shape = (60, 60, 60)
    m = pq.Medium.uniform(shape, dz, mua, mus, g, 1.0)
    d = 1 / (3 * (mua + mus * (1 - g)))
    mu_eff, zb = math.sqrt(mua / d), 2 * d
    for k in (5, 15):
        density = np.zeros(shape)
        density[30, 30, k] = 1
        r = pq.Simulation(m, VoxelEmission(density=density, bin_weights=[1]), photons=100_000,
                          rng_stream=1).run(fast_backend)
        z = np.linspace(k * dz, (k + 1) * dz, 101)  # uniform start within the voxel
        expected = np.mean(0.5 * (np.exp(-mu_eff * z) + np.exp(-mu_eff * (z + 2 * zb))))
        assert r.diffuse_reflectance == pytest.approx(expected, rel=0.06)


def test_numerical_aperture_acceptance_of_a_lambertian_source(backend, budget):
    """A thick, absorbing, clear, index-matched emitting layer radiates a Lambertian distribution:
    the fraction of its escaping light inside a cone of half-angle theta is sin^2 theta. The camera
    with NA 0.5 in air accepts theta = 30 deg: 25 %."""
    m = pq.Medium(np.ones((1, 1, 10), np.uint8), (200.0, 200.0, 0.5), [[0, 0, 0, 1], [4.0, 0.0, 0.0, 1.0]],
                  boundary={f: "mirror" for f in ("x-", "x+", "y-", "y+")})
    cam = camera(na=0.5, shape=(1, 1), fov=200.0)
    exit_map = cam.exit_map(m)
    assert exit_map.half_angle_deg == pytest.approx(30.0)
    n = budget(kernel=100_000)
    r = pq.Simulation(m, VoxelEmission(density=np.ones((1, 1, 10)), bin_weights=[1]), photons=n,
                      exit_map=exit_map, rng_stream=1).run(backend)
    fraction = r.exit_map.sum() / r.diffuse_reflectance
    # photons that escape are a binomial sample; p(1-p)/n_escaped bounds the variance
    n_escaped = r.diffuse_reflectance * n
    assert abs(zscore(fraction, math.sqrt(0.25 * 0.75 / n_escaped), 0.25)) < 4


def test_excitation_stage_is_reused_by_new_cameras_and_fluorophores(backend):
    s = scene()
    stage = s.excite(EXCITATION, camera(), photons=2000, backend=backend)
    nir2 = s.image(stage, camera(), photons=1000, backend=backend)
    narrow = s.image(stage, camera(band=(1280, 1320)), photons=1000, backend=backend)
    assert narrow.stage is nir2.stage is stage
    assert narrow.band_fraction[0] < nir2.band_fraction[0]
    # a fluorophore added after the excitation stage is excited through the stored fluence
    s = s.with_fluorophore(qd_preset("pbs_cds_1550"), s.fluorophores[0].concentration_uM)
    late = s.image(stage, camera(band=(1500, 1650)), photons=1000, backend=backend)
    assert any("stored fluence" in note for note in late.notes)
    assert late.emitted[1] > 0


def test_leakage_through_filter_optical_density(backend):
    """Excitation light reaching the sensor through a filter of OD 3 is 1e-3 of the unfiltered
    escaping excitation inside the acceptance cone."""
    cam = camera(band=(1250, 1400), blocking_od=3.0)
    res = scene().run(EXCITATION, cam, photons=1000, backend=backend)
    unfiltered = pq.Simulation(scene().medium([808.0])[0], dataclasses.replace(EXCITATION.source),
                               photons=1000, exit_map=cam.exit_map(scene().medium([808.0])[0])).run(backend)
    assert res.leakage_per_photon.sum() == pytest.approx(1e-3 * unfiltered.exit_map.sum(), rel=1e-4)


def test_cross_backend_fluorescence(fast_backend, budget):
    """Small fluorescence phantom: excitation absorption by the QD and the emission image total
    agree between NumPy and the kernel backend within batch-means statistics."""
    totals = {}
    for name, n in (("numpy", 20_000), (fast_backend, budget(kernel=200_000))):
        res = scene().run(EXCITATION, camera(), photons=n, backend=name, seed=3 if name == "numpy" else 4)
        totals[name] = (res.stage.result.mean_and_error("fluorophore 0"),
                        res.emission["species 0"].mean_and_error("exit_map"))
    for (a, sa), (b, sb) in zip(totals["numpy"], totals[fast_backend]):
        assert abs(zscore(a, sa, b, sb)) < 4


def test_photon_budget_and_noise_realisation():
    res = scene().run(EXCITATION, camera(), photons=2000, backend="numpy")
    assert EXCITATION.area_mm2 == pytest.approx(math.pi * 1.5**2)
    rate = EXCITATION.photons_per_s
    assert res.signal_e.sum() == pytest.approx(res.signal_per_photon.sum() * rate * 1.0)
    noisy = np.array([res.noisy_image(seed) for seed in range(200)])
    expected = res.signal_e + res.background_e
    assert np.allclose(noisy.mean(axis=0), expected, rtol=0.01, atol=5 * np.sqrt(expected.max() / 200))
    with pytest.raises(ValueError, match="area_mm2"):
        Excitation(pq.PencilBeam((1, 1, 0)), 808.0, 10.0)
