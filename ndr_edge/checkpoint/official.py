"""Checkpoints in the authors' layout: a ``torch.save``-d state_dict, full (671 keys for
the published model) or restoration-only, with or without a ``module.`` prefix."""

from __future__ import annotations

from pathlib import Path

import torch

from ndr_edge.errors import CheckpointError, first_line

_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a .pth state_dict safely (``weights_only=True``) into the top-level layout."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first_line(exc)})") from exc
    if isinstance(obj, dict):
        for key in _WRAPPERS:
            if key in obj and isinstance(obj[key], dict) and not isinstance(obj.get(key), torch.Tensor):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state_dict of tensors (torch.save(model.state_dict()))")
    state = {(k.removeprefix("module.")): v for k, v in obj.items()}
    if "restoration_net.extractor.weight" not in state and "extractor.weight" in state and "dr" in state:
        # a bare restoration network: lift it into the top-level layout
        state = {f"restoration_net.{k}": v for k, v in state.items()}
        state["degradation_representations"] = state["restoration_net.dr"]
    return state
