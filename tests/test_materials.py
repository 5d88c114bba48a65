"""A study's own QDs, tissues and sensors ([quantum_dot.*], [tissue.*], [sensor.*]: photonqd.study.materials)."""

import dataclasses

import numpy as np
import pytest

from photonqd.camera import sensor_preset
from photonqd.io import load, save
from photonqd.optics import qd_preset, tissue_preset
from photonqd.study import ConfigError, parse_config, run_study
from photonqd.testing import SMALL_CAMERA_AND_PROBES, SMALL_PHANTOM, SMALL_STUDY

STUDY = "\n".join([SMALL_STUDY, SMALL_PHANTOM, SMALL_CAMERA_AND_PROBES])

#: pbs_cds_1300 and silicon_ccd_bidd written out as a user would (photonqd/optics/data/qd_presets.csv,
#: photonqd/data/sensors.csv)
SAME_AS_PRESETS = """
[quantum_dot.my_pbs]
emission_peak_nm = 1300
emission_fwhm_nm = 135
quantum_yield = 0.15
lifetime_ns = 1000
absorption = "moreels2009"
exciton_nm = 1250
exciton_fwhm_ev = 0.12

[tissue.my_dermis]
like = "dermis"

[sensor.my_ccd]
like = "silicon_ccd_bidd"
"""


def study_text(method="forward", extra="", replace=()):
    text = STUDY.replace('method = "adjoint"', f'method = "{method}"') + extra
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    return text


def arrays(result):
    return [(i.probe, i.depth_mm, i.signal_e, i.background_e, dataclasses.astuple(i.metrics)) for i in result.images]


def same(a, b):
    for x, y in zip(arrays(a), arrays(b), strict=True):
        assert x[:2] == y[:2]
        for u, v in zip(x[2:4], y[2:4]):
            assert np.array_equal(u, v)
        assert np.array_equal(np.array(x[4], dtype=float), np.array(y[4], dtype=float), equal_nan=True)


@pytest.mark.parametrize("method", ["forward", "adjoint"])
def test_own_qd_tissue_and_sensor_equal_to_presets_give_the_presets_results_exactly(fast_backend, method):
    preset = parse_config(study_text(method))
    own = parse_config(study_text(method, SAME_AS_PRESETS, [
        ('quantum_dot = "pbs_cds_1300"', 'quantum_dot = "my_pbs"'),
        ('sensor = "silicon_ccd_bidd"', 'sensor = "my_ccd"'),
        ("voxel_size = [0.5, 0.5, 0.25]", 'voxel_size = [0.5, 0.5, 0.25]\n'
                                           'layers = [["epidermis", 0.1], ["my_dermis", 1.4], ["subcutaneous_fat", 2.0]]')]))
    assert own.quantum_dot("my_pbs").absorption == dataclasses.replace(qd_preset("pbs_cds_1300").absorption,
                                                                       source="my_pbs")
    assert own.scene(1.0).tissues[2].name == "my_dermis"
    same(run_study(preset, fast_backend), run_study(own, fast_backend))


def test_a_changed_value_changes_the_result(fast_backend):
    """The equality above is not vacuous: the custom QD is what the study uses."""
    base = study_text("forward", SAME_AS_PRESETS, [('quantum_dot = "pbs_cds_1300"', 'quantum_dot = "my_pbs"')])
    brighter = parse_config(base.replace("quantum_yield = 0.15", "quantum_yield = 0.3"))
    a, b = run_study(parse_config(base), fast_backend), run_study(brighter, fast_backend)
    nir2 = [(x, y) for x, y in zip(a.images, b.images) if x.probe == "NIR-II"]
    assert all(np.allclose(y.signal_per_photon, 2 * x.signal_per_photon, rtol=1e-6) for x, y in nir2)


def test_own_tissue_takes_its_values_and_its_autofluorescence():
    cfg = parse_config(study_text(extra="""
[tissue.scar]
blood = 0.01
saturation = 0.7
water = 0.6
fat = 0.05
melanin = 0
g = 0.85
n = 1.41
scattering = "power"
scattering_a_per_mm = 3.0
scattering_b = 1.2
autofluorescence = "none"

[tissue.fatty_dermis]
like = "dermis"
fat = 0.2
""", replace=[("voxel_size = [0.5, 0.5, 0.25]", 'voxel_size = [0.5, 0.5, 0.25]\nlayers = [["scar", 0.5], '
                                                   '["fatty_dermis", 1.0]]')]))
    scene = cfg.scene(2.0)
    scar, fatty = scene.tissues[1], scene.tissues[2]
    assert scar.properties([500.0]).mus_reduced[0] == pytest.approx(3.0)
    assert scar.properties([1000.0]).mus_reduced[0] == pytest.approx(3.0 * 2**-1.2)
    assert fatty.fat == 0.2 and fatty.water == tissue_preset("dermis").water
    assert scene.autofluorescence_of(1) is None                        # "none"
    assert scene.autofluorescence_of(2) is not None                    # like dermis: dermis' default
    assert scene.autofluorescence_of(2).yield_per_absorbed == scene.autofluorescence_of(2).yield_per_absorbed
    assert "my" not in str(scar.sources) and "defined in the study configuration" in str(scar.sources)


def test_own_sensor_from_a_qe_file(tmp_path):
    (tmp_path / "qe.csv").write_text("# my camera's QE\nwavelength_nm,qe\n900,0.5\n1300,0.7\n1700,0.1\n")
    (tmp_path / "study.toml").write_text(study_text(extra="""
[sensor.my_ingaas]
like = "ingaas_standard"
qe_table = "qe.csv"
read_noise_e = 30
""", replace=[('sensor = "ingaas_standard"', 'sensor = "my_ingaas"')]))
    cfg = parse_config((tmp_path / "study.toml").read_text(), base_dir=tmp_path)
    sensor = cfg.sensor("my_ingaas")
    assert sensor.read_noise_e == 30 and sensor.full_well_e == sensor_preset("ingaas_standard").full_well_e
    assert sensor.quantum_efficiency([1100.0])[0] == pytest.approx(0.6)
    camera = cfg.camera_for(cfg.probes[1], (0.0, 0.0))
    assert camera.sensor is sensor


def test_own_qd_from_tables_is_written_into_the_effective_configuration(tmp_path, fast_backend):
    """An emission table file and an ε table inline: the results file holds every number (the
    file's contents written in), and reads back to the same QD without the file."""
    grid = np.arange(1000.0, 1301.0, 10.0)
    emission = np.exp(-0.5 * ((grid - 1150.0) / 40.0) ** 2)
    (tmp_path / "emission_1150.txt").write_text("\n".join(f"{w:g} {v:.6g}" for w, v in zip(grid, emission)))
    (tmp_path / "study.toml").write_text(study_text(extra="""
[quantum_dot.qd1150]
emission_table = "emission_1150.txt"
quantum_yield = 0.2
absorption = "table"
absorption_table = [[400, 2.0e6], [800, 3.0e5], [1100, 8.0e4], [1200, 1.0e3]]
""", replace=[('quantum_dot = "pbs_cds_1300"', 'quantum_dot = "qd1150"'),
              ("window_nm = [1250, 1400]", "window_nm = [1100, 1250]")]))
    cfg = parse_config((tmp_path / "study.toml").read_text(), base_dir=tmp_path)
    qd = cfg.quantum_dot("qd1150")
    assert qd.epsilon([800.0])[0] == pytest.approx(3.0e5)
    assert qd.emission.band_fraction(1000, 1300) == pytest.approx(1.0, abs=1e-3)
    assert qd.emission.band_fraction(1150, 1300) == pytest.approx(0.5, abs=0.01)
    out = tmp_path / "r.h5"
    result = run_study(cfg, fast_backend)
    save(result, out, {"backend": fast_backend, "device": "test"})
    (tmp_path / "emission_1150.txt").unlink()
    loaded, _ = load(out)
    again = loaded.config.quantum_dot("qd1150")
    assert np.array_equal(again.emission.intensity, qd.emission.intensity)
    assert again.epsilon([1150.0])[0] == qd.epsilon([1150.0])[0]
    assert loaded.config.to_toml() == cfg.to_toml()


@pytest.mark.parametrize("extra,replace,match", [
    ('[quantum_dot.pbs_cds_1300]\nquantum_yield = 0.1', (), r"quantum_dot.pbs_cds_1300: .* a preset's name"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nabsorption = "moreels2009"\n'
     'exciton_nm = 1250\nexciton_fwhm_ev = 0.1', (), r"quantum_dot.q.quantum_yield: missing"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 1.5\n'
     'absorption = "moreels2009"\nexciton_nm = 1250\nexciton_fwhm_ev = 0.1', (),
     r"quantum_dot.q.quantum_yield: must be a number in \[1e-09, 1\], got 1.5"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\n'
     'absorption = "moreels2009"\nexciton_nm = 2500\nexciton_fwhm_ev = 0.1', (),
     r"quantum_dot.q.exciton_nm: must be a number in \[925.6, 1974.4\]"),          # Moreels' sizes: 3-9 nm
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\n'
     'absorption = "yu2003"\nmaterial = "CdTe"\nexciton_nm = 1100\nexciton_fwhm_ev = 0.1\nanchor_nm = 400\n'
     'anchor_epsilon = 1e6', (), r"quantum_dot.q.exciton_nm: must be a number in \[500, 710\]"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\n'
     'absorption = "guess"', (), r"quantum_dot.q.absorption: 'guess' is not one of"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\n'
     'absorption = "moreels2009"\nexciton_nm = 1250', (), r"quantum_dot.q.exciton_fwhm_ev: missing"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\n'
     'absorption = "yu2003"\nmaterial = "PbS"\nexciton_nm = 650\nexciton_fwhm_ev = 0.1\nanchor_nm = 400\n'
     'anchor_epsilon = 1e6', (), r"quantum_dot.q.material: must be one of"),
    ('[quantum_dot.q]\nemission_table = [[1200, 1.0], [1100, 2.0]]\nquantum_yield = 0.1\nabsorption = "table"\n'
     'absorption_table = [[400, 1e6], [900, 1e5]]', (), r"quantum_dot.q.emission_table: wavelengths must increase"),
    ('[quantum_dot.q]\nemission_table = "nowhere.csv"\nquantum_yield = 0.1\nabsorption = "table"\n'
     'absorption_table = [[400, 1e6], [900, 1e5]]', (), r"quantum_dot.q.emission_table \(.*nowhere.csv\): cannot read"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\nabsorption = "table"\n'
     'absorption_table = [[400, -1], [900, 1e5]]', (), r"quantum_dot.q.absorption_table: values must lie in"),
    ('[quantum_dot.q]\nemission_peak_nm = 1300\nemission_fwhm_nm = 100\nquantum_yield = 0.1\nzoom = 1\n'
     'absorption = "moreels2009"\nexciton_nm = 1250\nexciton_fwhm_ev = 0.1', (), r"quantum_dot.q: unknown key\(s\) \['zoom'\]"),
    ('[tissue.t]\nlike = "skin"', (), r"tissue.t.like: 'skin' is not a tissue preset"),
    ('[tissue.t]\nblood = 0.1\nsaturation = 0.7\nwater = 0.5\nfat = 0\nmelanin = 0\ng = 0.9\nn = 1.4', (),
     r"tissue.t.scattering: None is not one of"),
    ('[tissue.t]\nlike = "dermis"\nwater = 1.5', (), r"tissue.t.water: must be a number in \[0, 1\]"),
    ('[tissue.t]\nlike = "dermis"\nwater = 0.9\nfat = 0.5', (),
     r"tissue.t: blood\*.*sum to at most 1 \(with the values of dermis for those not set\)"),
    ('[tissue.t]\nlike = "dermis"\nscattering = "power"\nscattering_a_per_mm = 2\nscattering_b = 1\n'
     'scattering_valid_nm = [1700, 400]', (), r"tissue.t.scattering_valid_nm: low must be below high"),
    ('[sensor.s]\nlike = "ingaas_standard"\nbit_depth = 12.7', (), r"sensor.s.bit_depth: must be a whole number"),
    ('[sensor.s]\nlike = "ingaas_standard"\nqe_table = [[400, 0.5], [1000, 0.5]]',
     [('sensor = "ingaas_standard"', 'sensor = "s"')], r"probe\[1\].sensor: s has no quantum efficiency in the window"),
    ('[tissue.t]\nlike = "dermis"\nautofluorescence = "bone"', (), r"tissue.t.autofluorescence: \"none\" or"),
    ('', [("voxel_size = [0.5, 0.5, 0.25]", 'voxel_size = [0.5, 0.5, 0.25]\nlayers = [["skn", 1.0]]')],
     r"phantom.layers: 'skn' is neither a tissue preset nor a \[tissue.NAME\] table"),
    ('[sensor.s]\nread_noise_e = 3', (), r"sensor.s.qe_table: missing"),
    ('[sensor.s]\nlike = "ingaas_standard"\nqe_table = [[900, 0.5], [1700, 1.2]]', (),
     r"sensor.s.qe_table: values must lie in \[0, 1\]"),
    ('[sensor.s]\nlike = "ingaas_standard"\nbinning = "analog"', (), r"sensor.s.binning: must be one of"),
])
def test_bad_tables_are_refused_naming_the_key(extra, replace, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(study_text(extra="\n" + extra + "\n", replace=replace))


def test_a_bad_table_file_line_is_named(tmp_path):
    (tmp_path / "em.csv").write_text("wavelength,intensity\n1100,1\n1200,abc\n")
    text = study_text(extra='[quantum_dot.q]\nemission_table = "em.csv"\nquantum_yield = 0.1\n'
                            'absorption = "moreels2009"\nexciton_nm = 1250\nexciton_fwhm_ev = 0.1\n')
    with pytest.raises(ConfigError, match=r"quantum_dot.q.emission_table \(.*em.csv\): line 3: expected two numbers"):
        parse_config(text, base_dir=tmp_path)
