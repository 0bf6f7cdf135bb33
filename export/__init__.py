"""``ndr_edge.export``: a checkpoint in, every deployable artifact out (ONNX FP32/FP16/INT8,
TensorRT engines), each verified, with a manifest. ``ndr-export`` is its command line.

Importing this package is cheap: the stages (and torch, ONNX, TensorRT) load when used.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Exporter": ".pipeline",
    "ExportConfig": ".pipeline",
    "export": ".pipeline",
    "Profile": ".profiles",
    "VARIANTS": ".variants",
    "check_model": ".opcheck",
    "build_verification_set": ".compare",
    "compare_outputs": ".compare",
    "build_engine": ".tensorrt_build",
    "tensorrt_status": ".tensorrt_build",
}

__all__ = [
    "VARIANTS",
    "ExportConfig",
    "Exporter",
    "Profile",
    "build_engine",
    "build_verification_set",
    "check_model",
    "compare_outputs",
    "export",
    "tensorrt_status",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
