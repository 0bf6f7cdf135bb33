"""Verification data and output comparison, shared by every export stage and the GPU smoke
script. Torch-free. Models run through the runtime's backends
(:func:`ndr_edge.runtime.backends.open_backend`); this module only feeds and compares them.

A :class:`VerificationSet` holds real photos (the scikit-image demo set), centre-cropped to
two or more sizes and degraded with the standard degradations, already laid out as the
model wants them (NCHW float32, the model's channel order and value range): one batch per
size, so every comparison also exercises the dynamic batch, height and width.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.errors import InputError
from ndr_edge.metrics import json_float, psnr_from_mse
from ndr_edge.runtime.backends import OnnxRuntimeSettings, open_backend

BatchFn = Callable[[np.ndarray], np.ndarray]

DEFAULT_SIZES: tuple[tuple[int, int], ...] = ((64, 96), (128, 128))
DEFAULT_PER_SIZE = 3


@dataclass(frozen=True)
class VerificationSet:
    """Degraded real crops, one NCHW float32 batch per (H, W); ``labels`` name each image."""

    batches: tuple[np.ndarray, ...]
    labels: tuple[tuple[str, ...], ...]
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        return [(int(b.shape[2]), int(b.shape[3])) for b in self.batches]

    def describe(self) -> dict[str, Any]:
        return {
            "sizes": [f"{h}x{w}" for h, w in self.sizes],
            "images": [list(labels) for labels in self.labels],
            "channel_order": self.channel_order,
        }


def _centre_crop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre crop; a photo smaller than the crop is first enlarged (bicubic, aspect kept)."""
    h, w = image.shape[:2]
    if h < height or w < width:
        from PIL import Image

        scale = max(height / h, width / w)
        size = (max(width, round(w * scale)), max(height, round(h * scale)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))
        h, w = image.shape[:2]
    top, left = (h - height) // 2, (w - width) // 2
    return image[top : top + height, left : left + width]


def build_verification_set(
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    per_size: int = DEFAULT_PER_SIZE,
    channel_order: str = "BGR",
    value_range: tuple[float, float] = (0.0, 1.0),
    size_multiple: int = 8,
    seed: int = 0,
    images: Sequence[tuple[str, np.ndarray]] | None = None,
) -> VerificationSet:
    """Crop ``per_size`` demo photos to each size and degrade each with the next standard
    degradation (noise, rain, haze, low resolution, mixtures), deterministically from ``seed``."""
    from ndr_edge.degradations import EVAL_NAMES, degrade
    from ndr_edge.frames import reorder, to_float
    from ndr_edge.imageio import demo_images

    if len(sizes) < 1 or per_size < 1:
        raise InputError("verification: need at least one size and one image per size")
    for height, width in sizes:
        if height <= 0 or width <= 0 or height % size_multiple or width % size_multiple:
            raise InputError(
                f"verification size {height}x{width}: H and W must be positive multiples of {size_multiple}"
            )
    photos = list(images) if images is not None else demo_images("all")
    rng = np.random.default_rng(seed)
    lo, hi = value_range
    batches, labels = [], []
    counter = 0
    for height, width in sizes:
        frames, names = [], []
        for _ in range(per_size):
            name, photo = photos[counter % len(photos)]
            degradation = EVAL_NAMES[counter % len(EVAL_NAMES)]
            counter += 1
            clean = to_float(_centre_crop(photo, height, width))
            degraded = degrade(clean, degradation, rng)
            frames.append(reorder(degraded, "RGB", channel_order))
            names.append(f"{name}/{degradation}")
        batch = np.ascontiguousarray(np.stack(frames).transpose(0, 3, 1, 2), dtype=np.float32)
        batches.append((batch * (hi - lo) + lo).astype(np.float32))
        labels.append(tuple(names))
    return VerificationSet(tuple(batches), tuple(labels), channel_order, (float(lo), float(hi)))


@dataclass
class OutputComparison:
    """How far a candidate's outputs are from a reference's, overall and per size."""

    max_abs: float
    psnr_db: float
    per_size: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self, prefix: str = "") -> dict[str, Any]:
        return {
            f"{prefix}max_abs": self.max_abs,
            f"{prefix}psnr_db": json_float(self.psnr_db),
            f"{prefix}per_size": {k: {n: json_float(v) for n, v in d.items()} for k, d in self.per_size.items()},
        }


def format_db(value: Any) -> str:
    """A PSNR for people: ``identical`` for infinity (``"inf"`` in JSON), ``n/a`` for None."""
    if value is None:
        return "n/a"
    return "identical" if value == "inf" or value == math.inf else f"{float(value):.2f} dB"


def compare_outputs(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> OutputComparison:
    """Max abs error and PSNR (peak 1, no clipping) of ``candidate`` against ``reference``."""
    if len(reference) != len(candidate):
        raise InputError(f"compare: {len(reference)} reference batches but {len(candidate)} candidate batches")
    per_size: dict[str, dict[str, float]] = {}
    squared, count, worst = 0.0, 0, 0.0
    for ref, out in zip(reference, candidate):
        if ref.shape != out.shape:
            raise InputError(f"compare: output shapes differ, {ref.shape} vs {out.shape}")
        diff = ref.astype(np.float64) - out.astype(np.float64)
        if not np.isfinite(diff).all():
            worst, squared = math.inf, math.inf
            per_size[f"{ref.shape[2]}x{ref.shape[3]}"] = {"max_abs": math.inf, "psnr_db": -math.inf}
            continue
        size_max = float(np.abs(diff).max())
        size_mse = float(np.mean(diff * diff))
        per_size[f"{ref.shape[2]}x{ref.shape[3]}"] = {"max_abs": size_max, "psnr_db": psnr_from_mse(size_mse)}
        worst = max(worst, size_max)
        squared += size_mse * diff.size
        count += diff.size
    mse = squared / max(count, 1) if math.isfinite(squared) else math.inf
    return OutputComparison(max_abs=worst, psnr_db=-math.inf if math.isinf(mse) else psnr_from_mse(mse), per_size=per_size)


def run_batches(run: BatchFn, data: VerificationSet) -> list[np.ndarray]:
    """Outputs of ``run`` (a backend's ``infer``) for every batch of ``data``, as float32."""
    return [np.asarray(run(batch), dtype=np.float32) for batch in data.batches]


def onnx_outputs(model: str | os.PathLike[str] | bytes, data: VerificationSet) -> list[np.ndarray]:
    """Outputs of an ONNX file (or serialized model) on ONNX Runtime's CPU provider, opened
    through the runtime's one backend layer."""
    source = model if isinstance(model, bytes) else Path(model)
    with open_backend(source, "onnxruntime", OnnxRuntimeSettings(providers=("cpu",))) as backend:
        return run_batches(backend.infer, data)
