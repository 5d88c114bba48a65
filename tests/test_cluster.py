"""Runs in chunks, their checkpoints, and runs and studies on a Dask cluster (photonqd.chunks,
photonqd.cluster): the same result, bit for bit, as one process running every launch."""

import dataclasses
import json
import os
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest

from photonqd import chunks as chunk_module
from photonqd.chunks import ChunkStore, split
from photonqd.cli import main
from photonqd.cluster import Cluster, connect
from photonqd.simulation import ExitMap, Simulation
from photonqd.sources import PencilBeam
from photonqd.tallies import ExactSum
from photonqd.testing import heterogeneous

SCALARS = ("specular", "missed", "alive", "roulette", "stopped", "interactions", "steps", "escaped",
           "escaped_ambient", "detected_overflow")


def small_run(photons=4000, batch=500, seed=11, record_capacity=4000, **options):
    """Three tissues with index mismatches: every output a run has (fluence, exit map, records,
    trace, kept batches) in eight launches."""
    return Simulation(heterogeneous(), PencilBeam((5.0, 5.0, 0.0)), photons=photons, seed=seed,
                      exit_map=ExitMap((10, 10), (1.0, 1.0), record_capacity=record_capacity),
                      trace_photons=(3, photons - 2), keep_batches=("exit_map",), batch_photons=batch,
                      **options)


def assert_same(a, b):
    """Every tally, batch row, record and trace of two Results equal bit for bit."""
    for name in ("absorbed", "fluence", "exit_map", "batch_photons", "batch_scalars"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    for name in SCALARS:
        assert getattr(a, name) == getattr(b, name), name
    # the kept records are the same set (all of them: no overflow); within a launch their order
    # follows the device's threads, in one process as on a cluster
    assert a.detected_overflow == 0 and np.array_equal(np.sort(a.detected), np.sort(b.detected))
    assert np.array_equal(a.trace, b.trace, equal_nan=True)
    assert len(a.batch_tallies) == len(b.batch_tallies)
    for x, y in zip(a.batch_tallies, b.batch_tallies):
        if isinstance(x, dict):
            assert x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x)
        else:
            assert np.array_equal(x, y)


def test_split_groups_whole_consecutive_launches():
    launches = [(0, 3), (3, 3), (6, 3), (9, 1)]
    assert split(launches, 5) == [[(0, 3), (3, 3)], [(6, 3), (9, 1)]]
    assert split(launches, 1) == [[x] for x in launches]
    assert split(launches, 10**9) == [launches]
    for bad in (0, -1, 2.5, "x"):
        with pytest.raises(ValueError, match="chunk_photons"):
            split(launches, bad)


def test_exact_sums_merge_and_travel_exactly():
    rng = np.random.default_rng(3)
    parts = [rng.integers(-2**61, 2**62, size=50) for _ in range(40)]
    whole, halves = ExactSum(50), [ExactSum(50), ExactSum(50)]
    for i, p in enumerate(parts):
        whole.add(p)
        halves[i % 2].add(p)
    merged = pickle.loads(pickle.dumps(halves[0]))
    merged.merge(pickle.loads(pickle.dumps(halves[1])))
    expected = [sum(int(p[j]) for p in parts) for j in range(50)]
    assert [merged.value(j) for j in range(50)] == expected == [whole.value(j) for j in range(50)]
    small = ExactSum(4)
    small.add(np.array([1, 2, 3, 2**31], np.int64))
    state = small.__getstate__()
    assert state["lo"].dtype == np.uint32 and state["hi"] == 4     # no high words: not sent
    small.add(np.array([2**40, 0, 0, 0], np.int64))
    assert small.__getstate__()["hi"].dtype == np.int32
    assert pickle.loads(pickle.dumps(small)).value(0) == 1 + 2**40
    small.add(np.array([2**61] * 4, np.int64))
    for _ in range(4):
        small.merge(pickle.loads(pickle.dumps(small)))             # hi beyond 32 bits: sent whole
    assert small.__getstate__()["hi"].dtype == np.int64
    assert small.value(1) == 16 * (2 + 2**61)


def test_chunked_runs_equal_one_chunk(backend):
    whole = small_run().run(backend)
    for size in (1, 1500):
        assert_same(whole, small_run().run(backend, chunk_photons=size))


class Stop(Exception):
    pass


def test_checkpoint_resumes_an_interrupted_run_without_rerunning_its_chunks(backend, tmp_path):
    folder = tmp_path / "chunks"
    calls = []

    def interrupt(done, total):
        calls.append(done)
        if len(calls) == 3:          # in the third launch's chunk: two chunks are saved
            raise Stop

    with pytest.raises(Stop):
        small_run().run(backend, progress=interrupt, checkpoint=folder, chunk_photons=500)
    files = sorted(folder.glob("*/*.chunk"))
    assert len(files) == 2
    seen = []
    resumed = small_run().run(backend, progress=lambda d, t: seen.append(d), checkpoint=folder, chunk_photons=1000)
    assert seen[0] == 1000 and len(seen) == 1 + 6     # the saved 1000 photons, then six launches
    assert_same(resumed, small_run().run(backend))
    whole, = folder.glob("*/*.chunk")                 # the finished run's chunks compacted into one
    assert whole.name.endswith("-00000000000000004000.chunk")
    seen.clear()
    assert_same(resumed, small_run().run(backend, progress=lambda d, t: seen.append(d), checkpoint=folder))
    assert seen == [4000]                              # nothing transported again
    # another seed is another run: nothing of the first is reused
    seen.clear()
    small_run(seed=12).run(backend, progress=lambda d, t: seen.append(d), checkpoint=folder)
    assert seen[0] == 500 and len(seen) == 8
    # a damaged chunk file is run again, not trusted
    whole.write_bytes(b"not a chunk")
    seen.clear()
    again = small_run().run(backend, progress=lambda d, t: seen.append(d), checkpoint=folder, chunk_photons=2000)
    assert seen[0] == 500 and len(seen) == 8
    assert_same(again, resumed)


def test_a_compacted_run_is_read_before_parts_left_beside_it(tmp_path):
    """Interrupted between writing a run's compacted file and deleting its parts: the whole is
    used, once, and the parts overlapping it are ignored."""
    from photonqd.chunks import ChunkMerge, run_key
    from photonqd.kernel_source import build_plan

    sim = small_run()
    result = sim.run("numpy", checkpoint=tmp_path, chunk_photons=1000)
    sim.check()
    plan = build_plan(sim)
    launches = sim.launches(10_000, 2_000, plan.max_launch_photons)
    store = ChunkStore(tmp_path, run_key(sim, plan, "numpy", launches))
    whole, = store.folder.glob("*.chunk")
    chunk = pickle.loads(whole.read_bytes())
    part = dataclasses.replace(chunk, launches=chunk.launches[:2], rows=chunk.rows[:2])
    store.save(part)                                  # a part named to sort before the whole by name
    merge = ChunkMerge(plan.layout.size, plan.record_capacity)
    assert store.resume(launches, merge) == [] and len(merge.parts) == 1 and merge.parts[0].photons == 4000
    assert_same(result, sim.run("numpy", checkpoint=tmp_path))


def test_checkpoint_folder_must_be_a_folder(tmp_path):
    sim = small_run()
    sim.check()
    (tmp_path / "x").mkdir()
    key = "a" * 64
    (tmp_path / "x" / key[:40]).write_text("")
    with pytest.raises(ValueError, match="checkpoint: .* is a file"):
        ChunkStore(tmp_path / "x", key)


@pytest.fixture(scope="module")
def client():
    """A local cluster of two worker processes for this module's tests."""
    with connect(workers=2) as c:
        yield c


def test_cluster_run_equals_the_single_process_run_for_two_chunkings(client, backend):
    cluster = Cluster(client, backend)
    assert cluster.name == backend and len(cluster.workers) == 2
    whole = small_run().run(backend)
    by_default = small_run().run(cluster)                    # about four chunks per worker
    one_launch_each = small_run().run(backend, client=client, chunk_photons=1)
    assert_same(whole, by_default)
    assert_same(whole, one_launch_each)
    info = one_launch_each.extra["cluster"]
    assert info["chunks"] == 8 and set(info["workers"]) == set(cluster.workers)
    assert by_default.backend == backend and by_default.device == cluster.device


def test_cluster_runs_a_batch_reducer_defined_here(client, fast_backend):
    """reduce_batch travels by value (a closure over a local array)."""
    weights = np.arange(100.0).reshape(10, 10)
    options = dict(reduce_batch=lambda b: float((b["exit_map"] * weights).sum()))
    whole = small_run(**options).run(fast_backend)
    assert_same(whole, small_run(**options).run(fast_backend, client=client, chunk_photons=1000))


def test_records_kept_up_to_capacity_are_the_first_launches_in_order(client):
    """On NumPy (one photon after another) the kept records are deterministic to the row: with
    an overflowing capacity a chunked run, local or on the cluster, keeps the same rows in the
    same order as one chunk (the earliest launches' first)."""
    overflowing = dict(record_capacity=450)
    whole = small_run(**overflowing).run("numpy")
    assert whole.detected_overflow > 0 and len(whole.detected) == 450
    for chunked in (small_run(**overflowing).run("numpy", chunk_photons=500),
                    small_run(**overflowing).run("numpy", client=client, chunk_photons=500)):
        assert np.array_equal(whole.detected, chunked.detected)
        assert chunked.detected_overflow == whole.detected_overflow


def _kill_once(flag):
    def reduce(batch):
        if not os.path.exists(flag):
            open(flag, "w").close()
            os._exit(1)                  # the worker process dies in the middle of its chunk
        return batch["exit_map"].sum()
    return reduce


def test_a_killed_worker_has_its_chunk_rerun_with_the_same_result(client, fast_backend, tmp_path):
    flag = str(tmp_path / "killed")
    before = set(client.run(os.getpid).values())
    on_cluster = small_run(reduce_batch=_kill_once(flag)).run(fast_backend, client=client, chunk_photons=1000)
    assert os.path.exists(flag)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != before       # one process was replaced
    assert_same(on_cluster, small_run(reduce_batch=_kill_once(flag)).run(fast_backend))


def test_cluster_picks_the_first_backend_every_worker_has(client):
    from photonqd.backends import available
    assert Cluster(client).name == available()[0]
    with pytest.raises(ValueError, match="backend"):
        Cluster(client, "metal")


class FakeClient:
    """What Cluster asks of a client before any run: the workers' reports."""

    def __init__(self, reports):
        self.reports = reports
        self.scheduler = type("Scheduler", (), {"address": "tcp://fake:8786"})()

    def run(self, function, *args):
        return self.reports


def test_workers_must_run_the_clients_code():
    from photonqd.cluster import code_fingerprint
    good = {"host": "h", "pid": 1, "available": ["numpy"], "code": code_fingerprint(), "device": "CPU",
            "default_batch": 10_000, "min_batch": 2_000}
    assert Cluster(FakeClient({"tcp://a:1": good}), "numpy").device == "CPU"
    other = dict(good, code="0.1.0+0000000000000000")
    with pytest.raises(RuntimeError, match="worker tcp://b:1 runs other photonqd code"):
        Cluster(FakeClient({"tcp://a:1": good, "tcp://b:1": other}), "numpy")
    with pytest.raises(RuntimeError, match="worker tcp://a:1 cannot run the numpy backend: no"):
        Cluster(FakeClient({"tcp://a:1": dict(good, error="no")}), "numpy")
    with pytest.raises(RuntimeError, match="disagree on the numpy backend's batch sizes"):
        Cluster(FakeClient({"tcp://a:1": good, "tcp://b:1": dict(good, min_batch=1)}), "numpy")


SKIPPED_ATTRIBUTES = {"created", "cluster"}     # when and where, not what


def file_contents(path) -> dict:
    """Every dataset and attribute of a study file, without timings and the cluster's address."""
    out = {}

    def untimed(value):
        if isinstance(value, dict):
            return {k: untimed(v) for k, v in value.items() if "seconds" not in k}
        return value

    def visit(name, obj):
        for key, value in obj.attrs.items():
            if key in SKIPPED_ATTRIBUTES or "seconds" in key:
                continue
            out[name, key] = untimed(json.loads(value)) if key == "json" else value
        if isinstance(obj, h5py.Dataset):
            out[name, "data"] = obj[()]

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return out


def assert_same_file(a, b):
    x, y = file_contents(a), file_contents(b)
    assert x.keys() == y.keys()
    for key in x:
        assert np.array_equal(x[key], y[key]) if isinstance(x[key], np.ndarray) else x[key] == y[key], key


def test_an_interrupted_cluster_study_resumes_from_its_checkpoints(fast_backend, tmp_path, monkeypatch, capsys):
    from tests.test_adjoint_study import SMALL
    config = tmp_path / "small.toml"
    config.write_text(SMALL)
    out, alone = tmp_path / "cluster.h5", tmp_path / "alone.h5"
    argv = ["study", str(config), "-o", str(out), "--backend", fast_backend, "--photons", "4000", "--workers", "2"]
    saved, found = [], []
    original_save, original_resume = ChunkStore.save, ChunkStore.resume

    def save_then_stop(store, chunk):
        path = original_save(store, chunk)
        saved.append(chunk.launches)
        if len(saved) == 12:
            raise KeyboardInterrupt
        return path

    def resume(store, launches, merge):
        before = len(merge.parts)
        todo = original_resume(store, launches, merge)
        found.extend((store.folder.name, c.launches) for c in merge.parts[before:])
        return todo

    monkeypatch.setattr(ChunkStore, "save", save_then_stop)
    assert main(argv) == 130
    kept = {(p.parent.name, pickle.loads(p.read_bytes()).launches)
            for p in (tmp_path / "cluster.h5.chunks").glob("*/*.chunk")}
    assert len(kept) >= 3
    monkeypatch.setattr(ChunkStore, "save", original_save)
    monkeypatch.setattr(ChunkStore, "resume", resume)
    assert main(argv) == 0
    # every saved launch was used, none rerun (an interruption inside a run's compaction leaves its
    # parts beside the whole: either covers the same launches)
    def covered(chunks):
        out = {}
        for folder, launches in chunks:
            out.setdefault(folder, set()).update(launches)
        return out
    assert covered(found) == covered(kept)
    assert sum(len(launches) for _, launches in found) == sum(map(len, covered(found).values()))  # none twice
    assert not (tmp_path / "cluster.h5.chunks").exists()  # removed once the study is complete
    assert main(["study", str(config), "-o", str(alone), "--backend", fast_backend, "--photons", "4000"]) == 0
    assert_same_file(out, alone)
    with h5py.File(out, "r") as f:
        cluster = json.loads(f.attrs["cluster"])
    assert len(cluster["workers"]) == 2 and cluster["backend"] == fast_backend
    assert "2 workers" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--cluster", "tcp://127.0.0.1:9"], "--cluster tcp://127.0.0.1:9: no Dask scheduler answered"),
    (["--cluster", "not an address"], "--cluster: expected a scheduler address"),
    (["--cluster", "tcp://127.0.0.1:9", "--workers", "2"], "--cluster, --workers: give one"),
    (["--workers", "0"], "--workers: a whole number of worker processes in [1, 1024]"),
])
def test_bad_cluster_options_give_one_line(argv, message, tmp_path):
    done = subprocess.run([sys.executable, "-m", "photonqd.cli", "study", "-o", str(tmp_path / "r.h5"), *argv],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert not (tmp_path / "r.h5").exists()


def test_without_distributed_the_cluster_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"photonqd\[cluster\]"):
        Cluster(object())
    assert main(["study", "--workers", "2"]) == 2
    assert "pip install 'photonqd[cluster]'" in capsys.readouterr().err


def test_checkpoint_keys_tell_runs_apart():
    sim, other = small_run(), small_run(seed=12)
    sim.check()
    other.check()
    from photonqd.kernel_source import build_plan
    plan = build_plan(sim)
    launches = sim.launches(10_000, 2_000, plan.max_launch_photons)
    key = chunk_module.run_key(sim, plan, "numpy", launches)
    assert key == chunk_module.run_key(small_run(), plan, "numpy", launches)
    assert key != chunk_module.run_key(sim, plan, "opencl", launches)
    assert key != chunk_module.run_key(other, build_plan(other), "numpy", launches)
    assert key != chunk_module.run_key(sim, plan, "numpy", launches[:-1])
