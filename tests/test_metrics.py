"""Image metrics (photonqd.metrics) and the max-depth rule (StudyResult.max_depth) on constructed
images and series whose answers are known in closed form."""

import math

import numpy as np
import pytest

from photonqd.camera import Camera, EmissionFilter, Sensor
from photonqd.metrics import pixel_radius, radial_fwhm_mm, regions, target_metrics
from photonqd.noise import region_snr
from photonqd.study import ProbeImage, StudyResult, default_config_text, parse_config

READ_E, DARK_E_PER_S, EXPOSURE_S = 5.0, 100.0, 0.1
FLOOR = DARK_E_PER_S * EXPOSURE_S + READ_E**2  # dark + read variance of one unbinned pixel, one read


def camera(fov=10.0, pixels=50, centre=(5.0, 5.0)):
    sensor = Sensor("flat", [400.0, 2000.0], [1.0, 1.0], READ_E, DARK_E_PER_S)
    return Camera((fov, fov), (pixels, pixels), centre, 0.5, EmissionFilter(1250, 1400), sensor, EXPOSURE_S)


def pixel_centres(cam):
    """(x, y) of every pixel centre, brute force from the camera's geometry."""
    (nx, ny), (fx, fy) = cam.binned_pixels, cam.field_of_view_mm
    x = cam.centre_mm[0] - fx / 2 + (np.arange(nx) + 0.5) * fx / nx
    y = cam.centre_mm[1] - fy / 2 + (np.arange(ny) + 0.5) * fy / ny
    return np.meshgrid(x, y, indexing="ij")


def gaussian(cam, centre, sigma, peak=1000.0):
    x, y = pixel_centres(cam)
    return peak * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))


# --- apparent size ------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.5, 0.8, 1.5])
@pytest.mark.parametrize("centre", [(5.0, 5.0), (5.1, 4.93)], ids=["on-edge", "off-grid"])
def test_gaussian_spot_fwhm_is_2_355_sigma(sigma, centre):
    """A Gaussian is separable, so any row through it has FWHM = 2 sqrt(2 ln 2) sigma, also the row
    nearest an off-grid centre; linear interpolation at the crossings (which reads a little wide) is
    good to a quarter pixel for spots of 2.5 pixels sigma and more."""
    cam = camera()
    pixel = 10.0 / 50
    spot = gaussian(cam, centre, sigma)
    m = target_metrics(spot, np.zeros_like(spot), cam, centre, 0.5, (3.0, 4.5))
    assert m.fwhm_mm == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma, abs=0.25 * pixel)
    # wider spots read wider; a spot twice as wide reads twice the width
    wide = target_metrics(gaussian(cam, centre, 2 * sigma), np.zeros_like(spot), cam, centre, 0.5, (3.0, 4.5))
    assert wide.fwhm_mm == pytest.approx(2 * m.fwhm_mm, abs=0.5 * pixel)


def test_fwhm_of_a_disk_and_undefined_cases():
    """A uniform disk of radius R reads 2R to a pixel; a flat or empty image, or a spot wider than
    the field, has no width."""
    cam = camera()
    x, y = pixel_centres(cam)
    disk = np.where(np.hypot(x - 5.0, y - 5.0) <= 1.0, 100.0, 0.0)
    zero = np.zeros_like(disk)
    assert target_metrics(disk, zero, cam, (5.0, 5.0), 0.5, (3.0, 4.5)).fwhm_mm == pytest.approx(2.0, abs=0.2)
    for image in (np.ones_like(disk), zero, gaussian(cam, (5.0, 5.0), 20.0)):
        assert math.isnan(target_metrics(image, zero, cam, (5.0, 5.0), 0.5, (3.0, 4.5)).fwhm_mm)
    r = pixel_radius(cam, (5.0, 5.0))
    assert math.isnan(radial_fwhm_mm(disk, r, 0.2, 0.3))        # reach of fewer than three rings


def test_fwhm_of_noisy_images_uses_every_pixel():
    """Poisson noise on a Gaussian spot of 100 counts at its peak: the radial profile averages
    rings of pixels, so over 40 realisations the width is unbiased (mean within 2 % of 2.355 sigma,
    about 4 standard errors; measured +-0.3 %) and spreads by under 6 % (measured 3.4 %)."""
    cam = camera()
    sigma = 0.8
    spot = gaussian(cam, (5.0, 5.0), sigma, peak=100.0)
    rng = np.random.default_rng(11)
    widths = np.array([target_metrics(rng.poisson(spot).astype(float), np.zeros_like(spot), cam, (5.0, 5.0), 0.5,
                                      (3.0, 4.5)).fwhm_mm for _ in range(40)])
    truth = 2 * math.sqrt(2 * math.log(2)) * sigma
    assert abs(widths.mean() / truth - 1) < 0.02
    assert widths.std() / truth < 0.06



# --- regions -----------------------------------------------------------------------------------

def test_target_disk_and_background_annulus_follow_pixel_centres():
    cam = camera(centre=(4.0, 6.0))
    centre = (4.03, 5.91)
    target, ring = regions(cam, centre, 1.0, (2.0, 3.5))
    x, y = pixel_centres(cam)
    r = np.hypot(x - centre[0], y - centre[1])
    assert np.array_equal(target, r <= 1.0)
    assert np.array_equal(ring, (r >= 2.0) & (r <= 3.5))
    assert np.array_equal(pixel_radius(cam, centre), r)
    assert not (target & ring).any()
    # areas: pi r^2 and the annulus, to the discretisation of 0.2 mm pixels
    area = 0.2**2
    assert target.sum() * area == pytest.approx(math.pi, rel=0.05)
    assert ring.sum() * area == pytest.approx(math.pi * (3.5**2 - 2.0**2), rel=0.03)


def test_target_and_background_are_disjoint_when_the_radii_touch():
    """A target radius equal to the annulus' inner radius (allowed) must not put the pixels at
    exactly that distance in both regions (4 such pixels on a 9 x 9 grid of 1 mm pixels)."""
    cam = camera(fov=9.0, pixels=9, centre=(4.5, 4.5))
    target, ring = regions(cam, (4.5, 4.5), 2.0, (2.0, 4.0))
    r = pixel_radius(cam, (4.5, 4.5))
    assert np.count_nonzero(r == 2.0) == 4
    assert not (target & ring).any() and target[r == 2.0].all()


@pytest.mark.parametrize("centre", [(5.05, 4.93), (5.199, 5.001), (4.5, 4.5)])
def test_sub_pixel_target_is_the_pixel_under_its_centre(centre):
    """A target smaller than a pixel, wherever it sits, is the one pixel containing its centre."""
    cam = camera(pixels=25)  # 0.4 mm pixels
    target, _ = regions(cam, centre, 0.05, (2.0, 3.0))
    assert target.sum() == 1
    i, j = np.argwhere(target)[0]
    assert i * 0.4 <= centre[0] < (i + 1) * 0.4 and j * 0.4 <= centre[1] < (j + 1) * 0.4


def test_regions_reject_bad_radii_and_an_annulus_outside_the_view():
    cam = camera()
    with pytest.raises(ValueError, match="target_radius_mm"):
        regions(cam, (5, 5), 2.0, (1.5, 3.0))
    with pytest.raises(ValueError, match="target_radius_mm"):
        regions(cam, (5, 5), 1.0, (3.0, 3.0))
    with pytest.raises(ValueError, match="background_annulus_mm"):
        regions(cam, (5, 5), 1.0, (20.0, 30.0))


# --- contrast, CNR, SNR ------------------------------------------------------------------------

def test_flat_image_has_no_contrast():
    cam = camera()
    signal, background = np.full((50, 50), 40.0), np.full((50, 50), 25.0)
    m = target_metrics(signal, background, cam, (5, 5), 1.0, (3.0, 4.5))
    assert m.cnr == 0 and m.contrast == 0 and m.sbr == pytest.approx(1.0)
    assert math.isnan(m.fwhm_mm)
    assert (m.signal_target_e, m.background_target_e) == (40.0, 25.0)


def test_disk_target_metrics_in_closed_form():
    """Signal S_t on the target disk, S_b elsewhere, background B everywhere: every metric by hand."""
    cam = camera()
    s_t, s_b, b = 900.0, 100.0, 400.0
    target, ring = regions(cam, (5, 5), 1.0, (3.0, 4.5))
    signal = np.where(target, s_t, s_b)
    background = np.full(signal.shape, b)
    m = target_metrics(signal, background, cam, (5, 5), 1.0, (3.0, 4.5))
    assert m.sbr == pytest.approx((s_t + b) / (s_b + b))
    assert m.contrast == pytest.approx((s_t - s_b) / (s_t + s_b + 2 * b))
    assert m.cnr == pytest.approx((s_t - s_b) / math.sqrt(s_b + b + FLOOR))
    n = target.sum()
    assert m.snr == pytest.approx(n * s_t / math.sqrt(n * (s_t + b) + n * FLOOR))
    assert m.snr == pytest.approx(region_snr(signal, background, target, cam))
    # the CNR counts the QD signal only: background shaped like a target does not pose as one
    bright_bg = np.where(target, 5 * b, b)
    assert target_metrics(np.full(signal.shape, s_b), bright_bg, cam, (5, 5), 1.0, (3.0, 4.5)).cnr == 0


def test_snr_matches_region_snr_on_a_noisy_spot():
    cam = camera()
    rng = np.random.default_rng(7)
    signal = gaussian(cam, (5.0, 5.0), 0.8) + rng.uniform(0, 5, (50, 50))
    background = rng.uniform(10, 30, (50, 50))
    m = target_metrics(signal, background, cam, (5.0, 5.0), 1.0, (3.0, 4.5))
    target, ring = regions(cam, (5.0, 5.0), 1.0, (3.0, 4.5))
    assert m.snr == pytest.approx(region_snr(signal, background, target, cam), rel=1e-12)
    assert m.cnr == pytest.approx((signal[target].mean() - signal[ring].mean())
                                  / math.sqrt((signal + background)[ring].mean() + FLOOR))


# --- max depth -----------------------------------------------------------------------------------

def series(cnrs, errors=None, probe="NIR-II", depths=None):
    """ProbeImages at depths 1, 2, ... mm with the given CNRs (other metrics irrelevant here)."""
    depths = depths or [float(d + 1) for d in range(len(cnrs))]
    errors = errors or [0.05] * len(cnrs)
    images = []
    for depth, cnr, err in zip(depths, cnrs, errors):
        m = target_metrics(np.ones((4, 4)), np.ones((4, 4)), camera(fov=4.0, pixels=4, centre=(2, 2)),
                           (2, 2), 0.5, (1.0, 2.0))
        m.cnr = cnr
        empty = np.zeros((4, 4))
        images.append(ProbeImage(depth_mm=depth, probe=probe, signal_e=empty, background_e=empty,
                                 signal_per_photon=empty, background_per_photon=empty, metrics=m,
                                 signal_rel_error=err, seconds=0.0, emission_photons=1000))
    return images


def study(images):
    cfg = parse_config(default_config_text())
    assert (cfg.criterion, cfg.threshold) == ("cnr", 3.0)
    return StudyResult(cfg, images=images)


def test_max_depth_is_the_interpolated_crossing_of_the_threshold():
    assert study(series([10, 6, 3.0, 2.9])).max_depth("NIR-II") == 3.0      # threshold is inclusive
    # the first fall below the threshold decides; later detections are not used
    assert study(series([10, 6, 2, 4, 5])).max_depth("NIR-II") == pytest.approx(2 + math.log(2) / math.log(3))
    assert study(series([10, 8, 6])).max_depth("NIR-II") == 3.0             # beyond the range: a bound
    assert study(series([10, 8, 6])).depth_limit("NIR-II").describe() == ">= 3"
    assert math.isnan(study(series([2, 8])).max_depth("NIR-II"))            # not even the shallowest
    # order of the images does not matter; probes are judged separately
    mixed = series([10, 6, 2], depths=[3.0, 1.0, 2.0]) + series([1, 1], probe="NIR-I")
    result = study(mixed)
    assert result.max_depth("NIR-II") == pytest.approx(1 + math.log(2) / math.log(3))
    assert math.isnan(result.max_depth("NIR-I"))


def test_decisions_keep_two_standard_errors_from_the_threshold():
    # forward images: the error is the value times the contrast's relative error
    result = study(series([10, 4, 2.5], errors=[0.05, 0.3, 0.05]))
    assert [result.verdict(i) for i in result.images] == ["yes", "undecided", "no"]
    limit = result.depth_limit("NIR-II")
    assert limit.status == "crossing" and limit.low < 2.0 and 2.0 < limit.estimate < 3.0
    unknown = study(series([10, 9, 8], errors=[0.05, float("nan"), 0.05]))
    assert unknown.verdict(unknown.images[1]) == "undecided"
    assert math.isnan(unknown.max_depth("NIR-II"))                          # unresolved, not a bound

# --- the "auto" background annulus --------------------------------------------------------------

@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_auto_annulus_starts_where_the_targets_own_light_falls_to_5_percent(sigma):
    """A Gaussian spot falls to 5 % of its level over the target disk near r = sigma sqrt(2 ln(20 c))
    (c: the disk's mean over the peak); the annulus starts within a pixel of there, is AUTO_WIDTH_MM
    wide, and holds a few per cent of the target's own light (background_spread)."""
    from photonqd.metrics import AUTO_SPREAD, AUTO_WIDTH_MM, auto_annulus

    cam = camera(fov=20.0, pixels=100)
    spot = gaussian(cam, (10.0, 10.0), sigma)
    target = pixel_radius(cam, (10.0, 10.0)) <= 0.5
    level = spot[target].mean() / spot.max()
    expected = sigma * math.sqrt(2 * math.log(level / AUTO_SPREAD))
    inner, outer = auto_annulus(spot, cam, (10.0, 10.0), 0.5)
    assert abs(inner - expected) <= 0.2 + 1e-9 and outer == pytest.approx(inner + AUTO_WIDTH_MM)
    m = target_metrics(spot, np.zeros_like(spot), cam, (10.0, 10.0), 0.5, (inner, outer))
    assert 0 < m.background_spread < AUTO_SPREAD


def test_auto_annulus_in_a_field_too_small_takes_its_edge_and_says_so():
    from photonqd.metrics import AUTO_SPREAD, AUTO_WIDTH_MM, auto_annulus

    cam = camera()                                  # 10 mm field: reach 5 mm about its centre
    spot = gaussian(cam, (5.0, 5.0), 3.0)           # still at 25 % of its peak 5 mm out
    inner, outer = auto_annulus(spot, cam, (5.0, 5.0), 0.5)
    assert (inner, outer) == pytest.approx((5.0 - AUTO_WIDTH_MM, 5.0))
    assert target_metrics(spot, np.zeros_like(spot), cam, (5.0, 5.0), 0.5, (inner, outer)).background_spread > AUTO_SPREAD


# --- line targets (a capillary crossing the field) ------------------------------------------------

@pytest.mark.parametrize("along", [0, 1])
def test_line_target_regions_and_width_are_taken_across_it(along):
    """A line along x (or y) through the field: distances are |y - y0| (or |x - x0|), the target
    is a band, the background two bands either side, and the FWHM of a Gaussian profile across
    the line is 2.355 sigma; a ring about the centre point would put line pixels in the background."""
    from photonqd.metrics import Footprint, field_reach_mm
    cam, sigma = camera(), 0.8
    footprint = Footprint(5.0, 5.1, along)
    x, y = pixel_centres(cam)
    across = (y - 5.1) if along == 0 else (x - 5.0)
    line = 1000.0 * np.exp(-across**2 / (2 * sigma**2))
    assert np.allclose(pixel_radius(cam, footprint), np.abs(across))
    assert field_reach_mm(cam, footprint) == pytest.approx(4.9 if along == 0 else 5.0)
    target, ring = regions(cam, footprint, 0.5, (2.0, 3.5))
    assert np.array_equal(target, np.abs(across) <= 0.5) and np.array_equal(ring, (np.abs(across) >= 2.0) & (np.abs(across) <= 3.5))
    m = target_metrics(line, np.full_like(line, 10.0), cam, footprint, 0.5, (2.0, 3.5))
    assert m.fwhm_mm == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma, abs=0.2 / 4)
    # the same image measured as a point: the ring holds line pixels, so the background is too high
    point = target_metrics(line, np.full_like(line, 10.0), cam, (5.0, 5.1), 0.5, (2.0, 3.5))
    assert point.signal_ring_e > 10 * m.signal_ring_e


def test_capillary_target_is_a_line_and_a_sphere_a_point():
    from photonqd.phantom import intralipid_capillary, skin_tumour
    from photonqd.study import target_centre
    assert target_centre(intralipid_capillary(depth_mm=1.0)).along == 0
    assert target_centre(skin_tumour(depth_mm=2.0)).along is None
