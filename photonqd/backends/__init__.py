"""Backend discovery and selection: argument > PHOTONQD_BACKEND > auto (CUDA, OpenCL GPU,
OpenCL CPU, NumPy). A backend or device that cannot build the kernel is skipped with a reason."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

log = logging.getLogger(__name__)

BACKENDS = ("cuda", "opencl", "numpy")


@dataclass
class DeviceInfo:
    backend: str
    device: str | None     # None: not usable
    reason: str = ""       # why it was skipped
    is_gpu: bool = False


@functools.lru_cache(maxsize=None)
def discover() -> tuple[DeviceInfo, ...]:
    """What each backend finds on this machine, with the reason for anything skipped."""
    found = []
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if n == 0:
            found.append(DeviceInfo("cuda", None, "CuPy is installed but sees no CUDA device"))
        for i in range(n):
            from .cuda import CudaBackend
            found.append(DeviceInfo("cuda", CudaBackend(i).device, is_gpu=True))
    except ImportError:
        found.append(DeviceInfo("cuda", None, "CuPy is not installed (pip install cupy-cuda12x "
                                              "or cupy-cuda13x to match your driver)"))
    except Exception as err:  # no driver, broken install
        found.append(DeviceInfo("cuda", None, f"CuPy cannot use CUDA: {err}"))
    try:
        import pyopencl as cl

        from .opencl import probe_devices
        devices = probe_devices()
        if not devices:
            found.append(DeviceInfo("opencl", None, "no OpenCL platform found (install an ICD, "
                                                    "e.g. Debian's pocl-opencl-icd)"))
        for dev, text in devices:
            if dev is None:
                found.append(DeviceInfo("opencl", None, text))
            else:
                found.append(DeviceInfo("opencl", text, is_gpu=bool(dev.type & cl.device_type.GPU)))
    except ImportError:
        found.append(DeviceInfo("opencl", None, "pyopencl is not installed (pip install photonqd[opencl])"))
    except Exception as err:
        found.append(DeviceInfo("opencl", None, f"OpenCL unavailable: {err}"))
    found.append(DeviceInfo("numpy", "CPU (NumPy reference)"))
    for info in found:
        if info.device is None:
            log.info("skipped %s: %s", info.backend, info.reason)
    return tuple(found)


def available() -> list[str]:
    """Names of the backends that can run here, in auto-selection order."""
    infos = discover()
    order = [("cuda", True), ("opencl", True), ("opencl", False), ("numpy", False)]
    names = []
    for name, gpu in order:
        if any(i.backend == name and i.device and i.is_gpu == gpu for i in infos) and name not in names:
            names.append(name)
    return names


def get_backend(name: str | None = None):
    """A backend instance: ``name`` if given, else $PHOTONQD_BACKEND, else the best available."""
    requested = name or os.environ.get("PHOTONQD_BACKEND") or None
    if requested is not None:
        requested = requested.lower()
        if requested not in BACKENDS:
            raise ValueError(f"backend: {requested!r} is not one of {BACKENDS}")
    else:
        requested = available()[0]
    return _instance(requested)


@functools.lru_cache(maxsize=None)
def _instance(name: str):
    if name == "numpy":
        from .reference import ReferenceBackend
        return ReferenceBackend()
    if name == "opencl":
        from .opencl import OpenCLBackend
        return OpenCLBackend()
    from .cuda import CudaBackend
    return CudaBackend()
