"""What machine a report was made on, and which library versions. Torch-free (versions are
read from the installed distributions, nothing heavy is imported)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

from ndr_edge.cpu import cpu_features, usable_cores

LIBRARIES = ("ndr-edge", "numpy", "onnxruntime", "onnxruntime-gpu", "onnx", "torch", "tensorrt", "pycuda", "opencv-python-headless")


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(float(line.split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


def versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def ort_providers() -> list[str]:
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def machine_info(device: int = 0) -> dict[str, Any]:
    from ndr_edge.runtime.tensorrt_env import tensorrt_unavailable_reason

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    trt_reason = tensorrt_unavailable_reason(device)
    return {
        "cpu": cpu_features().model,
        "cpu_cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_gb": _memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "onnxruntime_providers": ort_providers(),
        "tensorrt": "usable" if trt_reason is None else f"not usable: {trt_reason}",
        "gpu": _gpu_name(device) if trt_reason is None else None,
    }


def _gpu_name(device: int) -> str | None:
    try:
        import pycuda.driver as cuda

        cuda.init()
        return str(cuda.Device(device).name())
    except Exception:  # noqa: BLE001 - pycuda raises its own types; the name is then not reported
        return None
