"""This project's checkpoints: safetensors weights with the metadata in the file's header.

The header's ``__metadata__`` holds one key, ``ndr_edge``, a JSON document
(:class:`CheckpointMeta`) that includes the SHA-256 of the weights; loading recomputes
and compares it, so a corrupt file never loads silently.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ndr_edge.artifact import atomic_output
from ndr_edge.errors import CheckpointError

META_KEY = "ndr_edge"
FORMAT_VERSION = 1


@dataclass
class CheckpointMeta:
    preset: str | None
    config: dict[str, Any]
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)
    degradations: list[str] = field(default_factory=list)
    step: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)  # command, seed, data, schedule
    weights_sha256: str = ""
    format_version: int = FORMAT_VERSION


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of names, dtypes, shapes and bytes, in sorted key order (independent of file layout)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def save(path: str | os.PathLike[str], state: dict[str, torch.Tensor], meta: CheckpointMeta) -> Path:
    """Write weights + metadata atomically (temp file beside ``path``, then rename)."""
    from safetensors.torch import save_file

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # canonical strides (a channels_last model's 1x1 weights count as contiguous with odd strides)
    tensors = {k: v.detach().cpu().clone(memory_format=torch.contiguous_format) for k, v in state.items()}
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{target}: refusing to save non-finite values in {key!r}")
    meta.weights_sha256 = weights_sha256(tensors)
    with atomic_output(target) as tmp:
        save_file(tensors, str(tmp), metadata={META_KEY: json.dumps(asdict(meta))})
    return target


def is_native(path: Path) -> bool:
    """A safetensors file starts with an 8-byte header length and a JSON object."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{"


def load(path: Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            raw_meta = (handle.metadata() or {}).get(META_KEY)
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)
    except Exception as exc:
        raise CheckpointError(f"{path}: corrupt or truncated safetensors file ({str(exc)[:160]})") from exc
    if raw_meta is None:
        raise CheckpointError(f"{path}: safetensors file without ndr_edge metadata; save it with ndr-train")
    try:
        data = json.loads(raw_meta)
        data["value_range"] = tuple(data.get("value_range", (0.0, 1.0)))
        meta = CheckpointMeta(**data)
    except (json.JSONDecodeError, TypeError) as exc:
        raise CheckpointError(f"{path}: unreadable ndr_edge metadata ({exc})") from exc
    actual = weights_sha256(state)
    if meta.weights_sha256 and actual != meta.weights_sha256:
        raise CheckpointError(f"{path}: weights do not match their recorded SHA-256 (file corrupted); re-export or re-train")
    return state, meta
