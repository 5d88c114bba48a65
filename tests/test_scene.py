"""The scene: one problem description for benchmarks, validation slabs and fluorescence scenes;
immutable, with fluorophores added by copy; wavelength-independent optics (FixedOptics)."""

import dataclasses

import numpy as np
import pytest

from photonqd.medium import Medium
from photonqd.optics import FixedOptics, qd_preset, tissue_preset
from photonqd.phantom import benchmark, skin_tumour
from photonqd.scene import Fluorophore, Scene
from photonqd.validation.cases import by_name, slab

QD = qd_preset("pbs_cds_1300")


def test_fixed_optics_are_the_same_at_every_wavelength_and_checked():
    optics = FixedOptics(0.01, 10.0, 0.9, 1.37, citation="a source")
    props = optics.properties([500.0, 1300.0])
    np.testing.assert_array_equal(props.mua, [0.01, 0.01])
    np.testing.assert_array_equal(props.mus_reduced, [10.0 * (1 - 0.9)] * 2)
    assert props.provenance.sources == {"fixed.optics": "a source"}
    assert optics.row == (0.01, 10.0, 0.9, 1.37)
    for kwargs, match in ((dict(mua=-1.0), "mua: must be >= 0"), (dict(mus=float("nan")), "mus"),
                          (dict(g=1.0), r"g: must be in \(-1, 1\)"), (dict(n=0.9), "n: must be >= 1"),
                          (dict(mua=True), "mua")):
        with pytest.raises(ValueError, match=match):
            FixedOptics(**{**dict(mua=0.0, mus=0.0, g=0.0, n=1.0), **kwargs})


def test_a_benchmark_scene_gives_the_medium_written_by_hand():
    """cube60 as MCX states it: label 1 everywhere, [0.005, 1, 0.01, 1.37], ambient index 1.37."""
    medium = benchmark("cube60").medium
    by_hand = Medium(np.ones((60, 60, 60), np.uint8), 1.0,
                     np.float32([[0, 0, 0, 1.37], [0.005, 1.0, 0.01, 1.37]]), n_ambient=float(np.float32(1.37)))
    assert np.array_equal(medium.labels, by_hand.labels)
    np.testing.assert_array_equal(medium.optics, by_hand.optics)
    assert (medium.n_ambient, medium.boundary, medium.voxel_size) == \
        (by_hand.n_ambient, by_hand.boundary, by_hand.voxel_size)


def test_validation_cases_and_benchmarks_are_scenes():
    assert by_name(["mcx_cube60"])[0].scene.tissues == benchmark("cube60").scene.tissues
    s = slab(0.1, 10.0, 0.9, 1.4, 2.0)
    assert isinstance(s, Scene) and s.boundary["x-"] == "mirror"


def test_wavelengths_are_needed_only_for_wavelength_dependent_tissues():
    labels = np.ones((2, 2, 2), np.uint8)
    labels[0] = 2
    scene = Scene(labels, 1.0, {1: FixedOptics(0.1, 1.0, 0.0, 1.4), 2: tissue_preset("dermis")})
    with pytest.raises(ValueError, match=r"wavelengths_nm: needed, the optics of labels \[2\]"):
        scene.medium()
    medium, table = scene.medium([800.0, 1300.0])
    assert medium.optics.shape == (2, 3, 4)
    np.testing.assert_allclose(medium.optics[:, 1], [[0.1, 1.0, 0.0, 1.4]] * 2, rtol=1e-7)


def test_scenes_are_immutable_and_fluorophores_are_added_by_copy():
    scene = skin_tumour(depth_mm=2.0, radius_mm=0.5, size_mm=(4.0, 4.0, 4.0), voxel_size=0.25)
    with pytest.raises(dataclasses.FrozenInstanceError):
        scene.fluorophores = ()
    labelled = scene.with_fluorophore(QD, np.where(scene.target, 0.1, 0.0))
    assert scene.fluorophores == () and len(labelled.fluorophores) == 1
    assert labelled.labels is scene.labels and labelled.target is scene.target
    both = labelled.with_fluorophore(qd_preset("pbs_cds_1550"), 0.2)   # one number: every tissue voxel
    assert np.all(both.fluorophores[1].concentration_uM[scene.labels > 0] == np.float32(0.2))
    assert both.with_fluorophores().fluorophores == ()
    medium, _ = both.medium([808.0])
    assert medium.fluorophore_concentration.shape == (2, *scene.labels.shape)
    tissue_only, _ = both.medium([808.0], fluorophores=[])
    assert tissue_only.fluorophore_concentration is None


def test_scene_inputs_are_checked():
    labels = np.ones((2, 2, 2), np.uint8)
    tissues = {1: FixedOptics(0.1, 1.0, 0.0, 1.4)}
    with pytest.raises(ValueError, match=r"tissues: labels \[2\] occur"):
        Scene(labels + 1, 1.0, tissues)
    with pytest.raises(TypeError, match=r"fluorophores\[0\]"):
        Scene(labels, 1.0, tissues, fluorophores=(QD,))
    with pytest.raises(ValueError, match=r"fluorophores\[0\].concentration_uM: shape"):
        Scene(labels, 1.0, tissues, fluorophores=(Fluorophore(QD, np.zeros((3, 3, 3))),))
    with pytest.raises(ValueError, match="concentration_uM: shape"):
        Scene(labels, 1.0, tissues).with_fluorophore(QD, np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="concentration_uM: need a 3-D array"):
        Fluorophore(QD, -np.ones((2, 2, 2)))
