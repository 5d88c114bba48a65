"""Backends present on this machine become a fixture, so one test body runs on each of them."""

import pytest

from photonqd.backends import available

BACKENDS = available()
ACCELERATED = [b for b in BACKENDS if b != "numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture(params=ACCELERATED or [pytest.param("none", marks=pytest.mark.skip("no OpenCL/CUDA"))])
def fast_backend(request):
    """Kernel backends only (OpenCL, CUDA): for tests that need many photons."""
    return request.param
