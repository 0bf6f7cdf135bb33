"""Open a planned variant as a batch function (float32 NCHW in the model's channel order,
values on [0, 1] -> the same), so one evaluation and one timing loop serve PyTorch, ONNX
Runtime and TensorRT alike. Artifacts open through ``ndr_edge.runtime`` (ONNX Runtime on
the CPU provider, TensorRT engines on the GPU); the checkpoint through
``ndr_edge.checkpoint``. Heavy imports happen here, when a variant is opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ArtifactError
from .plan import VariantPlan

BatchFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class OpenedVariant:
    run: BatchFn
    channel_order: str
    describe: str
    close: Callable[[], None] = lambda: None
    handle: Any = None  # the runtime Backend (TensorRT: for its CUDA context), or the torch module
    info: dict[str, Any] = field(default_factory=dict)


def _in_range(run: BatchFn, value_range: tuple[float, float]) -> BatchFn:
    """Adapt a model whose values live on [low, high] to [0, 1] batches."""
    low, high = (float(v) for v in value_range)
    if (low, high) == (0.0, 1.0):
        return run
    scale = np.float32(high - low)

    def scaled(batch: np.ndarray) -> np.ndarray:
        return (run(batch * scale + np.float32(low)) - np.float32(low)) / scale

    return scaled


def open_variant(plan: VariantPlan, threads: int | None = None, device: int = 0) -> OpenedVariant:
    """Open one pending variant; raises an NDREdgeError (or the backend's own error) if it cannot."""
    if plan.path is None:
        raise ArtifactError(f"{plan.name}: no file to open ({plan.reason or 'not planned'})")
    if plan.backend == "pytorch":
        return _open_checkpoint(plan, threads)
    from ..runtime.restorer import Selection, open_backend

    selection = Selection(plan.path, plan.backend, plan.precision, plan.sha256 or None)
    providers = ["cpu"] if plan.backend == "onnxruntime" else None
    backend = open_backend(selection, providers=providers, device=device, threads=threads)
    info: dict[str, Any] = {"describe": backend.describe()}
    if hasattr(backend, "providers"):
        info["providers"] = list(backend.providers)
    if hasattr(backend, "gpu_name"):
        info["gpu"] = backend.gpu_name
    return OpenedVariant(_in_range(backend.infer, backend.meta.value_range), backend.meta.channel_order,
                         backend.describe(), backend.close, backend, info)


def _open_checkpoint(plan: VariantPlan, threads: int | None) -> OpenedVariant:
    import torch

    from ..checkpoint import load_checkpoint
    from ..evaluate import torch_runner

    assert plan.path is not None
    loaded = load_checkpoint(plan.path)
    if plan.sha256 and loaded.sha256 != plan.sha256:
        raise ArtifactError(
            f"{plan.path}: not the checkpoint this export was made from (sha256 {loaded.sha256[:12]} vs the "
            f"manifest's {plan.sha256[:12]}); point the manifest at the right file or re-export"
        )
    net = loaded.model.restoration_net.eval()
    run = torch_runner(net, threads=threads)
    describe = f"pytorch {torch.__version__} [cpu, {torch.get_num_threads()} threads] ({plan.path.name})"
    info: dict[str, Any] = {"describe": describe, "threads": torch.get_num_threads()}
    return OpenedVariant(_in_range(run, loaded.value_range), loaded.channel_order, describe, handle=net, info=info)
