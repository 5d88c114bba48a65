"""Backend selection (argument > PHOTONQD_BACKEND > auto) and the `photonqd devices` command."""

import photonqd as pq
from photonqd.backends import available, get_backend
from photonqd.cli import main


def test_auto_prefers_kernel_backends():
    names = available()
    assert names[-1] == "numpy"
    assert get_backend().name == names[0]


def test_environment_override(monkeypatch):
    monkeypatch.setenv("PHOTONQD_BACKEND", "numpy")
    assert get_backend().name == "numpy"
    m = pq.Medium.uniform((2, 2, 2), 1.0, 0.1, 1.0, 0.0, 1.0)
    assert pq.Simulation(m, pq.PencilBeam((1, 1, 0)), photons=5).run().backend == "numpy"


def test_argument_beats_environment(monkeypatch):
    monkeypatch.setenv("PHOTONQD_BACKEND", "cuda")
    assert get_backend("numpy").name == "numpy"


def test_devices_command_lists_every_backend(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in ("cuda", "opencl", "numpy"):
        assert name in out
    assert "skipped" in out or "GPU" in out  # CuPy absent (CI) or present


def test_unknown_backend_in_environment_is_an_error(monkeypatch, capsys):
    monkeypatch.setenv("PHOTONQD_BACKEND", "metal")
    try:
        get_backend()
    except ValueError as err:
        assert "metal" in str(err)
    else:
        raise AssertionError("no error for an unknown backend")


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    """`photonqd devices | head -0`-style use: the reader closes the pipe before the output is
    written; the command stops without an error message or a traceback (status 141, as SIGPIPE)."""
    import subprocess
    import sys
    code = ("import sys, photonqd.cli as c\n"
            "def f(args): raise BrokenPipeError(32, 'Broken pipe')\n"
            "c._devices = f\n"
            "sys.exit(c.main(['devices']))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 141 and run.stderr == ""
