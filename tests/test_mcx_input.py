"""from_mcx: MCX JSON inputs and pmcx dicts read as photonqd Benchmarks. The shipped inputs
(phantoms/mcx_inputs, MCX's --bench cases as --dumpjson writes them) give exactly photonqd's own
benchmarks; pmcx dicts (as benchmarks/bench_mcxcl.py builds them) give the same problems; the
shapes follow src/mcx_shapes.c (checked against loop-by-loop restatements of its rules); cube60
read from its JSON reproduces MCX's absorbed fraction; bad inputs name the file and the field."""

import copy
import importlib.resources
import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from photonqd.phantom import MCX_BENCHMARKS, benchmark, from_mcx
from photonqd.validation.cases import by_name
from photonqd.validation.comparison import Z_MAX

INPUTS = importlib.resources.files("photonqd.phantom.data") / "mcx_inputs"
BENCH_MCXCL = Path(__file__).parents[1] / "benchmarks" / "bench_mcxcl.py"


def shipped(name: str) -> dict:
    return json.loads((INPUTS / f"{name}.json").read_text())


def bench_mcxcl():
    spec = importlib.util.spec_from_file_location("bench_mcxcl", BENCH_MCXCL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_same_source(a, b):
    assert a.kind == b.kind and a.specular == b.specular
    np.testing.assert_allclose(a.position, b.position, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(a.direction, b.direction)
    np.testing.assert_allclose(a.size(), b.size(), rtol=1e-12)
    for ours, theirs in zip(a.edges(), b.edges()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)


def test_every_mcx_benchmark_is_shipped_as_an_mcx_input():
    assert sorted(p.name for p in INPUTS.iterdir() if p.name.endswith(".json")) == \
        sorted(f"{name}.json" for name in MCX_BENCHMARKS)


@pytest.mark.parametrize("name", sorted(MCX_BENCHMARKS))
def test_shipped_input_is_photonqds_benchmark(name):
    ours, theirs = from_mcx(INPUTS / f"{name}.json"), benchmark(name)
    assert ours.name == name and ours.reference_absorbed is None
    assert ours.scene.voxel_size == theirs.scene.voxel_size
    assert ours.scene.labels.dtype == theirs.scene.labels.dtype
    np.testing.assert_array_equal(ours.scene.labels, theirs.scene.labels)
    assert {k: t.row for k, t in ours.scene.tissues.items()} == {k: t.row for k, t in theirs.scene.tissues.items()}
    assert ours.scene.n_ambient == theirs.scene.n_ambient and ours.scene.boundary == theirs.scene.boundary
    assert_same_source(ours.source, theirs.source)
    assert ours.time_gate_ns == theirs.time_gate_ns


def assert_same_problem(a, b):
    """The engine's inputs agree: labels, float32 optics table, ambient index, source, gate."""
    np.testing.assert_array_equal(a.medium.labels, b.medium.labels)
    np.testing.assert_array_equal(a.medium.optics, b.medium.optics)
    assert a.medium.voxel_size == b.medium.voxel_size and a.medium.n_ambient == b.medium.n_ambient
    assert_same_source(a.source, b.source)
    assert a.time_gate_ns == pytest.approx(b.time_gate_ns, rel=1e-12)


@pytest.mark.parametrize("name, voxel_size", [("cube60", None), ("cube60planar", None), ("cubesph60b", None),
                                              ("sphshells", None), ("spherebox", None), ("tissue60", None),
                                              ("cube60planar", 0.5), ("cubesph60b", 0.5)])
def test_pmcx_dict_from_bench_mcxcl_is_the_same_problem(name, voxel_size):
    problem = benchmark(name, voxel_size=voxel_size)   # 0.5 mm: unitinmm scales every length
    assert_same_problem(from_mcx(bench_mcxcl().mcx_input(problem, 1000, 1)), problem)


def test_pmcx_dict_with_shapes_and_one_based_positions_is_cube60_and_cubesph60b():
    # pmcx's own form: a prop table with an unused row, MCX's default origin (first voxel is 1)
    cfg = {"vol": np.ones((60, 60, 60), np.uint8), "prop": [[0, 0, 1, 1], [0.005, 1, 0.01, 1.37], [0.002, 5, 0.9, 1]],
           "srcpos": [30, 30, 1], "srcdir": [0, 0, 1], "tstart": 0, "tend": 5e-9, "tstep": 5e-9, "isreflect": 0,
           "nphoton": 1000, "seed": 1648335518, "session": "cube60"}
    cube = from_mcx(cfg)
    assert cube.name == "cube60"
    assert_same_problem(cube, benchmark("cube60"))
    shapes = {"Shapes": [{"Sphere": {"Tag": 2, "O": [30, 30, 30], "R": 15}}]}   # Sphere ignores the origin
    sphere = {**cfg, "isreflect": 1, "shapes": json.dumps(shapes)}
    assert_same_problem(from_mcx(sphere), benchmark("cubesph60b"))
    assert np.all(cfg["vol"] == 1)   # painted on a copy
    # shapes alone, starting with a Grid (pmcx's json2mcx leaves a Shapes input so)
    grid_and_sphere = {k: v for k, v in sphere.items() if k != "vol"}
    grid_and_sphere["shapes"] = json.dumps({"Shapes": shipped("cubesph60b")["Shapes"]})
    assert_same_problem(from_mcx(grid_and_sphere), benchmark("cubesph60b"))
    # with OriginType 1 the same numbers are a voxel further on
    np.testing.assert_array_equal(from_mcx({**cfg, "issrcfrom0": 1}).source.position, [30, 30, 1])


def test_json_origin_type_zero_numbers_the_first_voxel_one():
    from_corner = shipped("cube60b")
    from_corner["Shapes"].append({"Box": {"Tag": 2, "O": [0, 0, 0], "Size": [10, 10, 10]}})
    from_one = copy.deepcopy(from_corner)
    del from_one["Domain"]["OriginType"]
    del from_one["Shapes"][1]   # the explicit Origin [0, 0, 0]
    from_one["Shapes"][-1]["Box"]["O"] = [1, 1, 1]
    from_one["Optode"]["Source"]["Pos"] = [30, 30, 1]
    assert np.count_nonzero(from_mcx(from_one).scene.labels == 2) == 1000
    assert_same_problem(from_mcx(from_one), from_mcx(from_corner))


def test_json_dict_and_file_agree_and_volume_files_are_read_x_fastest(tmp_path):
    rng = np.random.default_rng(1)
    labels = rng.integers(1, 3, size=(4, 5, 6)).astype(np.uint8)
    doc = shipped("cubesph60b")
    del doc["Shapes"]
    doc["Domain"].update(Dim=[4, 5, 6], VolumeFile="vol.bin")
    doc["Optode"]["Source"]["Pos"] = [2, 2, 0]
    labels.ravel(order="F").tofile(tmp_path / "vol.bin")   # MCX's raw volume: x fastest
    (tmp_path / "in.json").write_text(json.dumps(doc))
    np.testing.assert_array_equal(from_mcx(tmp_path / "in.json").scene.labels, labels)
    np.testing.assert_array_equal(from_mcx(doc, base_dir=tmp_path).scene.labels, labels)
    labels.astype("<u2").ravel(order="F").tofile(tmp_path / "vol16.bin")
    doc["Domain"].update(VolumeFile="vol16.bin", MediaFormat="short")
    np.testing.assert_array_equal(from_mcx(doc, base_dir=tmp_path).scene.labels, labels)
    np.save(tmp_path / "vol.npy", labels)   # .npy: indexed [x, y, z] like pmcx's vol
    doc["Domain"].update(VolumeFile="vol.npy")
    np.testing.assert_array_equal(from_mcx(doc, base_dir=tmp_path).scene.labels, labels)


# --- shapes against loop-by-loop restatements of src/mcx_shapes.c ------------------------------
N = (9, 10, 11)


def mcx_rule(inside) -> np.ndarray:
    """Label 2 where ``inside(i, j, k)`` holds for the voxel (0-based indices), else 1."""
    out = np.ones(N, np.uint8)
    for i, j, k in np.ndindex(*N):
        if inside(i, j, k):
            out[i, j, k] = 2
    return out


def cylinder_rule(c0, c1, r):
    c0, c1 = np.array(c0, float), np.array(c1, float)
    length = np.linalg.norm(c1 - c0)
    axis = (c1 - c0) / length

    def inside(i, j, k):
        d = np.array([i, j, k]) + 0.5 - c0
        along = d @ axis
        return 0 <= along <= length and d @ d - along**2 <= r * r
    return inside


SHAPES = {
    # Origin shifts a Box but not a Sphere
    "box": ([{"Origin": [1, 1, 1]}, {"Box": {"Tag": 2, "O": [2, 3, 1.5], "Size": [3, 2, 4]}}],
            lambda i, j, k: 1 <= i + 0.5 <= 4 and 2 <= j + 0.5 <= 4 and 0.5 <= k + 0.5 <= 4.5),
    "sphere": ([{"Origin": [1, 1, 1]}, {"Sphere": {"Tag": 2, "O": [4, 5, 5.5], "R": 3}}],
               lambda i, j, k: (i + 0.5 - 4) ** 2 + (j + 0.5 - 5) ** 2 + (k + 0.5 - 5.5) ** 2 <= 9),
    # 1-based O less the origin, Size + 1 voxels
    "subgrid": ([{"Origin": [0, 0, 0]}, {"Subgrid": {"Tag": 2, "O": [2, 3, 4], "Size": [2, 3, 1]}}],
                lambda i, j, k: 1 <= i <= 3 and 2 <= j <= 5 and 3 <= k <= 4),
    "cylinder along y": ([{"Cylinder": {"Tag": 2, "C0": [4.5, 2, 5], "C1": [4.5, 7, 5], "R": 2}}],
                         cylinder_rule([4.5, 2, 5], [4.5, 7, 5], 2)),
    "oblique cylinder": ([{"Cylinder": {"Tag": 2, "C0": [1, 2, 1], "C1": [8, 9, 10], "R": 1.5}}],
                         cylinder_rule([1, 2, 1], [8, 9, 10], 1.5)),
    "layers": ([{"YLayers": [[2, 3, 2], [9, 20, 2]]}], lambda i, j, k: j in (1, 2) or j == 8 or j == 9),
    "one layer": ([{"XLayers": [4, 4, 2]}], lambda i, j, k: i == 3),
    "slabs": ([{"ZSlabs": {"Tag": 2, "Bound": [[1, 3], [7.6, 9]]}}], lambda i, j, k: k in (0, 1, 2, 7, 8)),
    "upper space": ([{"UpperSpace": {"Tag": 2, "Coef": [1, -1, 0.5, 2]}}],
                    lambda i, j, k: (i + 0.5) - (j + 0.5) + 0.5 * (k + 0.5) > 2),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes_follow_mcx_rasterisation(shape):
    shapes, inside = SHAPES[shape]
    doc = shipped("cubesph60b")
    doc["Domain"]["OriginType"] = 1
    doc["Optode"]["Source"]["Pos"] = [0.5, 0.5, 0]
    doc["Shapes"] = [{"Grid": {"Tag": 1, "Size": list(N)}}, *shapes]
    expected = mcx_rule(inside)
    assert 0 < np.count_nonzero(expected == 2) < expected.size   # the case paints something, not all
    np.testing.assert_array_equal(from_mcx(doc).scene.labels, expected)


def test_media_rows_with_g_one_scatter_as_mus_zero():
    # skinvessel's label 1 [3.564e-5, 1, 1, 1.37] and sphshells' label 4 [0.05, 0, 1, 1.37]
    assert from_mcx(shipped("skinvessel")).scene.tissues[1].row == (3.564e-05, 0.0, 0.0, 1.37)
    assert from_mcx(shipped("sphshells")).scene.tissues[4].row == (0.05, 0.0, 0.0, 1.37)


def test_specular_loss_only_for_sources_starting_outside_the_tissue():
    doc = shipped("cube60planar")
    doc["Session"]["DoSpecular"] = True
    assert from_mcx(doc).source.specular   # launched 10 mm above the top face
    doc = shipped("cube60b")
    doc["Session"]["DoSpecular"] = 1
    assert not from_mcx(doc).source.specular   # (29, 29, 0) lies in a surface voxel: MCX skips it
    # a planar source on the top face whose corner hangs over the edge: most photons start in
    # surface voxels, judged by its centre
    doc = shipped("cube60planar")
    doc["Session"]["DoSpecular"] = True
    doc["Optode"]["Source"]["Pos"] = [-19, 10, 0]
    assert not from_mcx(doc).source.specular


# --- cube60 against MCX's own absorbed fraction -------------------------------------------------
def test_cube60_from_its_mcx_input_absorbs_mcx_s_fraction():
    photons = 40_000   # about 8 s on NumPy
    result = from_mcx(INPUTS / "cube60.json").simulation(photons, seed=1, fluence=False,
                                                          batch_photons=photons // 20).run("numpy")
    value, error = result.mean_and_error("absorbed")
    check, = by_name(["mcx_cube60"])[0].checks
    reference = benchmark("cube60").reference_absorbed
    assert check.reference == reference
    assert abs(value - reference) <= Z_MAX * math.hypot(error, check.tolerance)


# --- bad inputs ------------------------------------------------------------------------------------
def without_media(doc):
    del doc["Domain"]["Media"]


def bad_g(doc):
    doc["Domain"]["Media"][2]["g"] = 3


def unknown_shape(doc):
    doc["Shapes"].append({"Torus": {"Tag": 2}})


def cone_source(doc):
    doc["Optode"]["Source"]["Type"] = "cone"


def focused_beam(doc):
    doc["Optode"]["Source"]["Dir"] = [0, 0, 1, 20]


def mismatched_indices_without_reflection(doc):   # cube60's unused label 2 has n = 1
    doc["Shapes"].append({"Sphere": {"Tag": 2, "O": [30, 30, 30], "R": 15}})


def label_without_medium(doc):
    doc["Shapes"].append({"Sphere": {"Tag": 3, "O": [30, 30, 30], "R": 15}})


def short_volume_file(doc):
    del doc["Shapes"]
    doc["Domain"]["VolumeFile"] = "short.bin"


def missing_volume_file(doc):
    del doc["Shapes"]
    doc["Domain"]["VolumeFile"] = "absent.bin"


def nifti_volume_file(doc):
    del doc["Shapes"]
    doc["Domain"]["VolumeFile"] = "head.nii"


BAD = [
    (without_media, r"^bad\.json: Domain\.Media: missing"),
    (bad_g, r"^bad\.json: Domain\.Media\[2\]\.g: must be in \[-1, 1\], got 3$"),
    (unknown_shape, r"^bad\.json: Shapes\[3\]: unknown shape 'Torus'"),
    (cone_source, r"^bad\.json: Optode\.Source\.Type: 'cone' is not supported; photonqd reads pencil, disk, planar$"),
    (focused_beam, r"^bad\.json: Optode\.Source\.Dir: a focal length"),
    (mismatched_indices_without_reflection, r"^bad\.json: Session\.DoMismatch: 0 \(no reflection\) with tissues"),
    (label_without_medium, r"^bad\.json: Shapes: label 3 has no row in Domain\.Media \(rows 0\.\.2\)$"),
    (short_volume_file, r"^bad\.json: Domain\.VolumeFile: 'short\.bin' holds 215999 voxels of byte, "
                        r"Domain\.Dim \[60, 60, 60\] needs 216000$"),
    (missing_volume_file, r"^bad\.json: Domain\.VolumeFile: cannot read .*absent\.bin"),
    (nifti_volume_file, r"^bad\.json: Domain\.VolumeFile: 'head\.nii': unsupported format"),
]


@pytest.mark.parametrize("spoil, message", BAD, ids=[spoil.__name__ for spoil, _ in BAD])
def test_bad_input_names_the_file_and_the_field(tmp_path, spoil, message):
    doc = shipped("cube60")
    spoil(doc)
    np.ones(60 * 60 * 60 - 1, np.uint8).tofile(tmp_path / "short.bin")
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=message):
        from_mcx(tmp_path / "bad.json")


def test_missing_input_file_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"^absent\.json: file: cannot read .*absent\.json"):
        from_mcx(tmp_path / "absent.json")


def test_bad_pmcx_dicts_name_the_key():
    cfg = bench_mcxcl().mcx_input(benchmark("cube60"), 1000, 1)
    with pytest.raises(ValueError, match=r"^srctype: 'cone' is not supported; photonqd reads pencil, disk, planar$"):
        from_mcx({**cfg, "srctype": "cone"})
    with pytest.raises(ValueError, match=r"^prop\[1\]\.g: must be in \[-1, 1\], got 3$"):
        from_mcx({**cfg, "prop": [[0, 0, 1, 1.37], [0.005, 1, 3, 1.37]]})
    with pytest.raises(ValueError, match=r"^vol: expected a 3-D array of integer labels"):
        from_mcx({**cfg, "vol": np.ones((60, 60, 60), np.float32)})
    with pytest.raises(ValueError, match=r"^shapes\[0\]: unknown shape 'Torus'"):
        from_mcx({**cfg, "shapes": '{"Shapes": [{"Torus": {}}]}'})
    with pytest.raises(ValueError, match=r"^bc: 'c_c___': per-face boundary conditions are not supported$"):
        from_mcx({**cfg, "bc": "c_c___"})
    from_mcx({**cfg, "bc": "______001000"})   # detection flags only: the transport is MCX's default
