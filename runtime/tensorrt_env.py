"""Whether TensorRT can run (or build) engines here: the one check the runtime, the export,
the report and the CLIs all ask. Torch-free; ``tensorrt`` and ``pycuda`` are imported only
when the check runs, and the GPU is named through the CUDA driver API (no toolkit needed)."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

from ndr_edge.errors import BackendUnavailableError

# what to do instead, by purpose
_FALLBACK = {False: "or use the ONNX Runtime backend (--backend onnxruntime)",
             True: "or skip engines (ndr-export --no-engine) and run the ONNX graphs (--backend onnxruntime)"}
# CUdevice_attribute values of the CUDA driver API (cuda.h)
_CC_MAJOR, _CC_MINOR = 75, 76


def require_tensorrt(device: int = 0, build: bool = False) -> Any:
    """The ``tensorrt`` module, or BackendUnavailableError saying what is missing of TensorRT
    (with its builder when ``build``), pycuda (engine buffers and streams) and CUDA GPU ``device``."""
    fallback = _FALLBACK[build]
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise BackendUnavailableError(
            f"TensorRT is not installed (import tensorrt failed: {exc}); install it (JetPack on Jetson, "
            f"pip install tensorrt on x86 with CUDA) {fallback}"
        ) from exc
    if not all(hasattr(trt, name) for name in (("Runtime", "Builder") if build else ("Runtime",))):
        raise BackendUnavailableError(
            "the 'tensorrt' package here is only type stubs, not the TensorRT library; install TensorRT "
            f"(JetPack on Jetson, pip install tensorrt on x86 with CUDA) {fallback}"
        )
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendUnavailableError(
            f"pycuda is not installed (needed for TensorRT buffers and streams); pip install pycuda {fallback}"
        ) from exc
    try:
        cuda.init()
        count = cuda.Device.count()
    except Exception as exc:  # pycuda raises its own error types (no driver, no device)
        raise BackendUnavailableError(f"no usable CUDA driver or GPU here ({exc}); {fallback}") from exc
    if count <= device:
        raise BackendUnavailableError(f"no CUDA GPU {device} here ({count} found); {fallback}")
    return trt


def tensorrt_unavailable_reason(device: int = 0, build: bool = False) -> str | None:
    """Why TensorRT cannot run (``build``: build) engines here, or None when it can."""
    try:
        require_tensorrt(device, build)
    except BackendUnavailableError as exc:
        return str(exc)
    return None


def _load_libcuda() -> Any:
    names = ["nvcuda.dll"] if sys.platform == "win32" else ["libcuda.so.1", "libcuda.so"]
    found = ctypes.util.find_library("cuda")
    for name in [*names, *([found] if found else [])]:
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


def gpu_info(device: int = 0) -> dict[str, str] | None:
    """Name and compute capability of a CUDA GPU through the driver API (no CUDA toolkit,
    no pycuda); None where there is no driver or no GPU."""
    lib = _load_libcuda()
    if lib is None or lib.cuInit(0) != 0:
        return None
    count = ctypes.c_int(0)
    if lib.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value <= device:
        return None
    handle = ctypes.c_int(0)
    if lib.cuDeviceGet(ctypes.byref(handle), device) != 0:
        return None
    name = ctypes.create_string_buffer(256)
    major, minor = ctypes.c_int(0), ctypes.c_int(0)
    lib.cuDeviceGetName(name, 256, handle)
    lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, handle)
    lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, handle)
    return {"gpu_name": name.value.decode(errors="replace"), "compute_capability": f"{major.value}.{minor.value}"}
