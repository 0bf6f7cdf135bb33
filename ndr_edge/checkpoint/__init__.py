"""Load any NDR-Restore checkpoint (this project's safetensors, or the authors' .pth)
into a model whose configuration is inferred from the tensors, strictly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from ndr_edge.artifact import sha256_file
from ndr_edge.checkpoint import native, official
from ndr_edge.checkpoint.infer import infer_config
from ndr_edge.checkpoint.native import CheckpointMeta, weights_sha256
from ndr_edge.errors import CheckpointError
from ndr_edge.model import NDRConfig, NDRRestore, preset_name
from ndr_edge.model.degradation_net import DegradationNet

__all__ = [
    "CheckpointMeta",
    "LoadedCheckpoint",
    "infer_config",
    "load_checkpoint",
    "load_state",
    "save_checkpoint",
    "weights_sha256",
]


@dataclass
class LoadedCheckpoint:
    path: Path
    sha256: str
    kind: str  # "ndr-edge" | "official"
    config: NDRConfig
    preset: str | None
    model: NDRRestore
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)
    meta: dict[str, Any] = field(default_factory=dict)


def load_state(path: str | Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta | None, str]:
    """Read tensors (top-level layout) and, for this project's files, the metadata."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if native.is_native(path):
        state, meta = native.load(path)
        return state, meta, "ndr-edge"
    return official.read_state_dict(path), None, "official"


def _strict_load(model: NDRRestore, state: dict[str, torch.Tensor], source: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if names:
                parts.append(f"{len(names)} {label} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})")
        raise CheckpointError(f"{source}: keys do not fit the inferred configuration: {'; '.join(parts)}")
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: non-finite values (NaN/inf) in {key!r}; the checkpoint is unusable")
    ndr, shared = state["degradation_representations"], state.get("restoration_net.dr")
    if shared is not None and not torch.equal(ndr, shared):
        raise CheckpointError(f"{source}: degradation_representations and restoration_net.dr differ; they must be one")
    model.load_state_dict(state, strict=True)


def load_checkpoint(path: str | Path, with_degradation_net: bool = False) -> LoadedCheckpoint:
    """Load a checkpoint of either layout; the model comes back in eval mode on the CPU.

    With ``with_degradation_net`` a restoration-only checkpoint gets a freshly initialised
    NDR-Degrad (to resume or fine-tune training); without it NDR-Degrad is dropped.
    """
    path = Path(path)
    state, meta, kind = load_state(path)
    config = infer_config(state, str(path))
    if meta is not None and meta.config:
        recorded = NDRConfig.from_dict(meta.config)
        # the tensors fix every field but the parameter-free global residual, which only our metadata records
        if replace(recorded, global_residual=False) != config:
            raise CheckpointError(f"{path}: recorded configuration disagrees with the tensors; the file is inconsistent")
        config = recorded
    has_degrad = any(k.startswith("degradation_net.") for k in state)
    model = NDRRestore(config, with_degradation_net=has_degrad)
    _strict_load(model, state, path)
    if with_degradation_net and not has_degrad:
        model.degradation_net = DegradationNet(config)
    elif not with_degradation_net:
        model.degradation_net = None
    model.eval()
    return LoadedCheckpoint(
        path=path,
        sha256=sha256_file(path),
        kind=kind,
        config=config,
        preset=meta.preset if meta else preset_name(config),
        model=model,
        channel_order=meta.channel_order if meta else "BGR",
        value_range=tuple(meta.value_range) if meta else (0.0, 1.0),  # type: ignore[arg-type]
        meta=asdict(meta) if meta else {"layout": "official"},
    )


def save_checkpoint(path: str | Path, model: NDRRestore, meta: CheckpointMeta) -> Path:
    """Save the model (with NDR-Degrad when it has one) in this project's format."""
    meta.config = model.config.to_dict()
    return native.save(path, model.state_dict(), meta)
