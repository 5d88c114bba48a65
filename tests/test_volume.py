"""Label volumes from files as a study's phantom (photonqd.phantom.volume, study.phantom = "volume")."""

import h5py
import numpy as np
import pytest

from photonqd import phantom
from photonqd.cli import main
from photonqd.io import load, save
from photonqd.phantom.volume import LabelVolume, VolumeError, array_header, read_array
from photonqd.study import ConfigError, parse_config, run_study
from photonqd.testing import SMALL_CAMERA_AND_PROBES, SMALL_PHANTOM, SMALL_STUDY

GRID = dict(radius_mm=0.5, size_mm=(10.0, 10.0, 4.0), voxel_size=(0.5, 0.5, 0.25))
HEAD = SMALL_STUDY.replace('phantom = "skin_tumour"', 'phantom = "PHANTOM"').replace(
    "depths_mm = [1.0, 2.0]", "depths_mm = [1.5, 2.0]")
BUILT_IN = "\n".join([HEAD.replace("PHANTOM", "skin_tumour"), SMALL_PHANTOM, SMALL_CAMERA_AND_PROBES])
FROM_FILE = HEAD.replace("PHANTOM", "volume") + """
[phantom]
file = "FILE"
voxel_size = [0.5, 0.5, 0.25]
tissues = {1 = "epidermis", 2 = "dermis", 3 = "subcutaneous_fat", 4 = "skeletal_muscle", 5 = "tumour_generic"}
target_label = 5

""" + SMALL_CAMERA_AND_PROBES


def skin_file(tmp_path, name="skin.npz", depth=2.0):
    """The built-in skin tumour (its tumour at ``depth``) written as a label volume."""
    scene = phantom.skin_tumour(depth_mm=depth, **GRID)
    path = tmp_path / name
    if path.suffix == ".npz":
        np.savez_compressed(path, labels=scene.labels)
    elif path.suffix == ".npy":
        np.save(path, scene.labels)
    else:
        with h5py.File(path, "w") as f:
            f["anatomy/labels"] = scene.labels
    return path


def from_file(path, method="forward", replace=()):
    text = FROM_FILE.replace('method = "adjoint"', f'method = "{method}"').replace("FILE", str(path))
    for old, new in replace:
        assert old in text
        text = text.replace(old, new)
    return text


def test_every_format_reads_the_same_labels_and_headers_come_first(tmp_path):
    labels = phantom.skin_tumour(depth_mm=2.0, **GRID).labels
    for name in ("a.npy", "b.npz", "c.h5"):
        path = skin_file(tmp_path, name)
        dataset = "anatomy/labels" if name.endswith(".h5") else None
        assert array_header(path, dataset) == (labels.shape, labels.dtype)
        assert np.array_equal(read_array(path, dataset), labels)


@pytest.mark.parametrize("method", ["forward", "adjoint"])
def test_a_built_in_phantom_written_to_a_file_and_read_back_gives_the_same_study(tmp_path, fast_backend, method):
    """The file holds the tumour at 1.5 mm, across the dermis-fat boundary; the study moves it to
    2 mm by whole voxels, putting both layers back where it was: the same scenes, so the same
    results, bit for bit."""
    built_in = parse_config(BUILT_IN.replace('method = "adjoint"', f'method = "{method}"'))
    read = parse_config(from_file(skin_file(tmp_path, depth=1.5), method))
    assert len(np.unique(built_in.scene(1.5).without_target().labels[built_in.scene(1.5).target])) == 2
    for depth in built_in.depths_mm:
        a, b = built_in.scene(depth), read.scene(depth)
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.target, b.target)
        assert [t.name for t in a.tissues.values()] == [t.name for t in b.tissues.values()]
    x, y = run_study(built_in, fast_backend), run_study(read, fast_backend)
    for p, q in zip(x.images, y.images, strict=True):
        assert (p.probe, p.depth_mm) == (q.probe, q.depth_mm)
        assert np.array_equal(p.signal_e, q.signal_e) and np.array_equal(p.background_e, q.background_e)


def test_depths_are_reached_by_whole_voxels_inside_the_body(tmp_path):
    path = skin_file(tmp_path)
    with pytest.raises(ConfigError, match=r"study.depths_mm: depth_mm: 1.6 mm is not reachable .* \("
                                          r"its depth in the file is 2 mm; reachable: 0.25 to 3.75 mm in steps of 0.25"):
        parse_config(from_file(path, replace=[("depths_mm = [1.5, 2.0]", "depths_mm = [1.6]")]))
    with pytest.raises(ConfigError, match=r"study.depths_mm: depth_mm: 4 mm is not reachable"):
        parse_config(from_file(path, replace=[("depths_mm = [1.5, 2.0]", "depths_mm = [4.0]")]))


def test_vacated_voxels_take_the_surrounding_tissue_where_the_volume_is_not_layered():
    labels = np.ones((8, 8, 10), np.uint8)
    labels[:, :, 6:] = 2
    labels[0:2, 0:2, 2:4] = 3               # an inclusion: not a stack of layers any more
    labels[3:5, 3:5, 2:4] = 4               # the target, in label 1
    tissues = {1: "dermis", 2: "skeletal_muscle", 3: "whole_blood", 4: "tumour_generic"}
    volume = LabelVolume(labels, 0.1, tissues, labels == 4)
    moved = volume.scene(0.6)              # two voxels down
    assert moved.labels[3, 3, 2] == 1 and moved.labels[3, 3, 5] == 4 and moved.labels[0, 0, 2] == 3
    assert np.count_nonzero(moved.target) == 8
    chosen = LabelVolume(labels, 0.1, tissues, labels == 4, vacated_label=2).scene(0.6)
    assert chosen.labels[3, 3, 2] == 2
    with pytest.raises(VolumeError, match="depth_mm: 1.1 mm is not reachable"):
        volume.scene(1.1)                   # z = 10, 11: outside the volume


def test_the_camera_must_see_only_the_volume_over_an_off_centre_target(tmp_path):
    labels = phantom.skin_tumour(depth_mm=2.0, **GRID).labels
    np.save(tmp_path / "shifted.npy", np.roll(labels, -6, axis=0))            # the target 3 mm off centre
    with pytest.raises(ConfigError, match=r"camera.field_of_view_mm: 6 mm centred over the target at \(2.*"
                                          r"reaches beyond the volume's 10 x 10 mm face"):
        parse_config(from_file("shifted.npy"), base_dir=tmp_path)


def test_a_target_mask_file_and_an_hdf5_dataset(tmp_path):
    path = skin_file(tmp_path, "skin.h5")
    mask = phantom.skin_tumour(depth_mm=2.0, **GRID).target
    np.save(tmp_path / "mask.npy", mask.astype(np.uint8))
    cfg = parse_config(from_file("skin.h5", replace=[("target_label = 5", 'target_mask = "mask.npy"\n'
                                                                         'dataset = "anatomy/labels"')]),
                       base_dir=tmp_path)
    assert np.array_equal(cfg.scene(2.0).target, mask)
    assert cfg.phantom_options["file"] == str(path.resolve())


def test_the_effective_configuration_records_the_file_and_its_checksum(tmp_path, fast_backend):
    path = skin_file(tmp_path)
    cfg = parse_config(from_file(path, replace=[("depths_mm = [1.5, 2.0]", "depths_mm = [2.0]")]))
    text = cfg.to_toml()
    assert f"sha256 = \"{cfg.phantom_options['sha256']}\"" in text and str(path) in text
    assert parse_config(text).to_toml() == text
    save(run_study(cfg, fast_backend), tmp_path / "r.h5", {"backend": fast_backend, "device": "test"})
    np.savez_compressed(path, labels=np.ones((2, 2, 2), np.uint8))       # the file changes ...
    with pytest.raises(ConfigError, match=r"phantom.sha256: .*skin.npz has changed"):
        parse_config(text)
    path.unlink()                                                        # ... or goes: results still load
    loaded, _ = load(tmp_path / "r.h5")
    assert loaded.config.volume is None and loaded.config.to_toml() == text
    with pytest.raises(ConfigError, match="phantom.file: the label volume was not read"):
        loaded.config.scene(2.0)


def header_only(path, shape):
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": shape})


@pytest.mark.parametrize("setup,replace,match", [
    (None, [("FILE", "nowhere.npz")], r"phantom.file: .*nowhere.npz: no such file"),
    (None, [("FILE", "skin.nii")], r"phantom.file: .*skin.nii: unknown file type '.nii'; read: .npy, .npz, .h5"),
    (lambda d: np.savez(d / "two.npz", a=np.ones((2, 2, 2)), b=np.ones((2, 2, 2))), [("FILE", "two.npz")],
     r"phantom.file: .*two.npz: holds 2 arrays \['a', 'b'\]; name one with dataset"),
    (lambda d: np.save(d / "flat.npy", np.ones((4, 4), np.uint8)), [("FILE", "flat.npy")],
     r"phantom.file: .*flat.npy holds an array of shape \(4, 4\); a label volume is 3-D"),
    (lambda d: np.save(d / "f.npy", np.ones((4, 4, 4))), [("FILE", "f.npy")],
     r"phantom.file: .*f.npy: labels must be integers, got float64"),
    (lambda d: header_only(d / "huge.npy", (5000, 5000, 5000)), [("FILE", "huge.npy")],
     r"phantom.file: .*huge.npy's 5000 x 5000 x 5000 voxels make 1.25e\+11 voxels"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ('4 = "skeletal_muscle", ', "")],
     r"phantom.tissues: labels \[4\] occur in the volume without a tissue"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ('4 = "skeletal_muscle"', '4 = "muscle"')],
     r"phantom.tissues.4: 'muscle' is neither a tissue preset nor"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ("target_label = 5", "target_label = 9")],
     r"phantom.target_label: 9 is not a label of the volume; it holds \[2, 3, 4, 5\]"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ("target_label = 5", "")],
     r"phantom.target_label: give the target as target_label"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ("voxel_size = [0.5, 0.5, 0.25]", "voxel_size = [0.5, 0.25]")],
     r"phantom.voxel_size: expected 3 numbers"),
    (lambda d: skin_file(d), [("FILE", "skin.npz"), ("target_label = 5", "target_label = 5\nvacated_label = 7")],
     r"phantom.vacated_label: \"auto\" or a label of phantom.tissues"),
])
def test_bad_volumes_are_refused_naming_the_file_and_field(tmp_path, setup, replace, match):
    if setup:
        setup(tmp_path)
    with pytest.raises(ConfigError, match=match):
        parse_config(from_file("FILE", replace=replace), base_dir=tmp_path)


def test_the_command_line_says_what_is_wrong_with_a_volume_in_one_line(tmp_path, capsys):
    (tmp_path / "study.toml").write_text(from_file("missing.npz"))
    assert main(["study", str(tmp_path / "study.toml"), "-o", str(tmp_path / "r.h5"), "--backend", "numpy"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "phantom.file" in err and "missing.npz: no such file" in err
