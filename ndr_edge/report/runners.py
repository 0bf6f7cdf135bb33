"""Open a planned variant as a backend, run on [0, 1] batches (float32 NCHW in the model's
channel order, :func:`unit_range_run`), so one evaluation and one timing loop serve PyTorch, ONNX
Runtime and TensorRT alike. Every variant opens through
:func:`ndr_edge.runtime.backends.open_backend` (ONNX Runtime on the CPU provider, TensorRT
engines on the GPU, the checkpoint on the PyTorch backend). Heavy imports happen there,
when a variant is opened; the report runs ONNX Runtime on the CPU provider only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ndr_edge.errors import ArtifactError
from ndr_edge.report.plan import VariantPlan
from ndr_edge.runtime.backend import Backend
from ndr_edge.runtime.backends import open_backend, settings_for

BatchFn = Callable[[np.ndarray], np.ndarray]


def unit_range_run(backend: Backend) -> BatchFn:
    """``backend.infer`` on [0, 1] batches, whatever value range the model works in."""
    run = backend.infer
    low, high = (float(v) for v in backend.meta.value_range)
    if (low, high) == (0.0, 1.0):
        return run
    scale = np.float32(high - low)

    def scaled(batch: np.ndarray) -> np.ndarray:
        return (run(batch * scale + np.float32(low)) - np.float32(low)) / scale

    return scaled


def open_variant(plan: VariantPlan, threads: int | None = None, device: int = 0) -> Backend:
    """Open one pending variant; raises an NDREdgeError (or the backend's own error) if it cannot."""
    if plan.path is None:
        raise ArtifactError(f"{plan.name}: no file to open ({plan.reason or 'not planned'})")
    settings = settings_for(plan.backend, ["cpu"], threads, device, ov_hint=plan.hint)
    return open_backend(plan.path, plan.backend, settings, plan.sha256 or None)


def backend_info(backend: Backend) -> dict[str, Any]:
    """What the report records about an opened backend."""
    info: dict[str, Any] = {"describe": backend.describe()}
    for key, attr in (("providers", "providers"), ("gpu", "gpu_name"), ("threads", "threads")):
        if hasattr(backend, attr):
            info[key] = getattr(backend, attr)
    return info
