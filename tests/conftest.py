"""Backends present on this machine become a fixture, so one test body runs on each of them;
``budget`` gives each test its photon count on the backend it runs on."""

import pytest

from photonqd.backends import available
from photonqd.testing import Budget

BACKENDS = available()
ACCELERATED = [b for b in BACKENDS if b != "numpy"]


def pytest_addoption(parser):
    parser.addoption("--update", action="store_true", default=False,
                     help="regenerate the stored truth of the regression studies (tests/regression/*/truth.npz) "
                          "instead of comparing against it")


@pytest.fixture
def update_truth(request):
    return request.config.getoption("--update")


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=ACCELERATED or [pytest.param("none", marks=pytest.mark.skip("no OpenCL/CUDA"))])
def fast_backend(request):
    """Kernel backends only (OpenCL, CUDA): for tests that need many photons."""
    return request.param


@pytest.fixture
def budget(request):
    """``budget(kernel=100_000)`` -> photons for this test's backend (photonqd.testing.photon_budget):
    the kernel figure on OpenCL, more on CUDA, a small share on NumPy. The test must use the
    ``backend`` or ``fast_backend`` fixture."""
    for name in ("backend", "fast_backend"):
        if name in request.fixturenames:
            return Budget(request.getfixturevalue(name))
    raise pytest.UsageError(f"{request.node.name}: the budget fixture needs the backend or fast_backend fixture")
