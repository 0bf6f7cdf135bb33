"""Frame conventions shared by training, evaluation, export and the runtime. Torch-free.

A *frame* is what a user holds: ``uint8`` HxWx3 (or float32 HxWx3 on [0, 1]) in a stated
channel order. A *batch* is what a network takes: float32 NCHW in the model's channel
order and value range, H and W multiples of the model's size multiple.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ndr_edge.errors import InputError

CHANNEL_ORDERS = ("RGB", "BGR")


def check_channel_order(channel_order: str, what: str = "channel order") -> str:
    """Return ``channel_order`` if it is RGB or BGR (said explicitly), else raise InputError."""
    if channel_order not in CHANNEL_ORDERS:
        raise InputError(f"{what} must be one of {CHANNEL_ORDERS} (said explicitly), got {channel_order!r}")
    return channel_order


def check_frame(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    """Validate an HxWx3 frame (uint8, uint16 or float); return it unchanged."""
    if not isinstance(frame, np.ndarray):
        raise InputError(f"{what}: expected a numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[2] != 3:
        hint = " (convert grayscale with np.repeat(f[..., None], 3, -1), drop alpha with f[..., :3])"
        raise InputError(f"{what}: expected shape HxWx3, got {frame.shape}{hint}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InputError(f"{what}: empty frame of shape {frame.shape}")
    if frame.dtype not in (np.uint8, np.uint16, np.float32, np.float64, np.float16):
        raise InputError(f"{what}: unsupported dtype {frame.dtype}; use uint8, uint16 or float32 on [0, 1]")
    return frame


def check_finite(frame: np.ndarray, what: str = "frame") -> np.ndarray:
    """Refuse a float frame holding NaN or infinity (InputError); return it unchanged."""
    if np.issubdtype(frame.dtype, np.floating) and not np.all(np.isfinite(frame)):
        raise InputError(f"{what}: contains NaN or infinite values; clean the float frame before restoring")
    return frame


def to_float(frame: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float frame -> float32 on [0, 1] (floats are taken as already on [0, 1])."""
    if frame.dtype == np.uint8:
        return frame.astype(np.float32) / 255.0
    if frame.dtype == np.uint16:
        return frame.astype(np.float32) / 65535.0
    return frame.astype(np.float32, copy=False)


def to_uint8(frame: np.ndarray) -> np.ndarray:
    """float frame on [0, 1] -> uint8, clipped and rounded."""
    return (np.clip(frame, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def reorder(frame: np.ndarray, source: str, target: str) -> np.ndarray:
    """Swap RGB <-> BGR on the last axis (HWC) when the orders differ."""
    check_channel_order(source)
    check_channel_order(target)
    return frame[..., ::-1] if source != target else frame


def pad_to_multiple(batch: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad an NCHW batch right/bottom to multiples of ``multiple`` (the published
    evaluation protocol). Returns the padded batch and the original (H, W) to crop back to.
    Frames smaller than the padding fall back to edge padding (reflection needs pad < size)."""
    h, w = batch.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return batch, (h, w)
    mode: Literal["reflect", "edge"] = "reflect" if ph < h and pw < w else "edge"
    padded = np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    return padded, (h, w)


def frames_to_batch(frames: list[np.ndarray], source_order: str, model_order: str) -> np.ndarray:
    """HxWx3 frames (same size) -> float32 NCHW in the model's channel order."""
    stacked = np.stack([reorder(to_float(check_frame(f)), source_order, model_order) for f in frames])
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def batch_to_frames(batch: np.ndarray, model_order: str, target_order: str) -> list[np.ndarray]:
    """float32 NCHW in the model's order -> float32 HxWx3 frames in ``target_order``."""
    return [np.ascontiguousarray(reorder(b.transpose(1, 2, 0), model_order, target_order)) for b in batch]
