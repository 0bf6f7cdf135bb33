"""The PyTorch reference as a backend: the same ``infer`` (float32 NCHW in the model's
channel order and value range, in and out) as the runtime's ONNX Runtime and TensorRT
backends, so export verification and the report run every model through one interface.
Outside ``runtime/``, which stays torch-free; torch is imported when a backend is made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.errors import ArtifactError
from ndr_edge.runtime.backend import Backend


@dataclass(frozen=True)
class TorchSettings:
    """``threads``: torch's intra-op CPU threads (None: torch's default)."""

    threads: int | None = None


class TorchBackend(Backend):
    """An ``nn.Module`` restoration network (returns the image, or ``(image, ...)``) on the CPU."""

    name = "pytorch"

    def __init__(self, module: Any, meta: ArtifactMeta, settings: TorchSettings | None = None,
                 path: str | Path = "module") -> None:
        import torch

        self.settings = settings = settings or TorchSettings()
        if settings.threads:
            torch.set_num_threads(settings.threads)
        super().__init__(Path(path), meta)
        self.module = module.eval()
        self._torch = torch

    @classmethod
    def from_checkpoint(cls, path: str | Path, settings: TorchSettings | None = None,
                        expected_sha256: str | None = None) -> TorchBackend:
        """The restoration network of a checkpoint (``ndr_edge.checkpoint``); with
        ``expected_sha256``, refuse a checkpoint other than the one an export was made from."""
        from ndr_edge.checkpoint import load_checkpoint

        path = Path(path)
        loaded = load_checkpoint(path)
        if expected_sha256 and loaded.sha256 != expected_sha256:
            raise ArtifactError(
                f"{path}: not the checkpoint this export was made from (sha256 {loaded.sha256[:12]} vs the "
                f"manifest's {expected_sha256[:12]}); point the manifest at the right file or re-export"
            )
        meta = ArtifactMeta(preset=loaded.preset, channel_order=loaded.channel_order,
                            value_range=tuple(loaded.value_range), source_sha256=loaded.sha256)  # type: ignore[arg-type]
        return cls(loaded.model.restoration_net, meta, settings, path)

    @property
    def threads(self) -> int:
        return int(self._torch.get_num_threads())

    def describe(self) -> str:
        return f"pytorch {self._torch.__version__} [cpu, {self.threads} threads] ({self.path.name})"

    def infer_impl(self, batch: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            out = self.module(self._torch.from_numpy(batch))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return np.asarray(out.float().numpy(), dtype=np.float32)

    def close_impl(self) -> None:
        self.module = None
