"""Synthetic evaluation sets: clean images, each degradation applied with its own seed.
Torch-free.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ndr_edge.degradations import degrade, parse_names
from ndr_edge.errors import InputError
from ndr_edge.frames import check_frame, to_float


@dataclass(frozen=True, eq=False)
class EvalSample:
    """One evaluation pair: float32 HxWx3 RGB on [0, 1]; ``degradation`` names the group
    it is scored in (``"real"`` for real pairs)."""

    degradation: str
    name: str
    lq: np.ndarray
    gt: np.ndarray


def centre_crop(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """Centre crop to at most ``max_side`` x ``max_side`` (no resize); None keeps the image."""
    if max_side is None:
        return image
    if max_side < 1:
        raise InputError(f"max_side must be positive or None, got {max_side}")
    h, w = image.shape[:2]
    ch, cw = min(h, max_side), min(w, max_side)
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top: top + ch, left: left + cw]


def spread_crops(
    images: Sequence[tuple[str, np.ndarray]], side: int, per_image: int
) -> list[tuple[str, np.ndarray]]:
    """``per_image`` square crops of ``side`` px from each image, centred on the cells of the
    most-square grid with that many cells (4: the quadrants, so none is the centre crop a report
    takes), clipped to the image; named ``name@top,left``. ``per_image=1`` is the centre crop."""
    if side < 1 or per_image < 1:
        raise InputError(f"spread_crops: side and per_image must be positive, got {side}, {per_image}")
    if per_image == 1:
        return [(name, centre_crop(image, side)) for name, image in images]
    rows = max(r for r in range(1, int(per_image**0.5) + 1) if per_image % r == 0)
    cols = per_image // rows
    crops = []
    for name, image in images:
        h, w = image.shape[:2]
        ch, cw = min(h, side), min(w, side)
        for r in range(rows):
            for c in range(cols):
                top = min(max(int((r + 0.5) * h / rows) - ch // 2, 0), h - ch)
                left = min(max(int((c + 0.5) * w / cols) - cw // 2, 0), w - cw)
                crops.append((f"{name}@{top},{left}", image[top: top + ch, left: left + cw]))
    return crops


def sample_seed(seed: int, degradation: str, name: str) -> list[int]:
    """Seed for one (degradation, image): stable across runs and independent of which other
    degradations or images are in the set."""
    if seed < 0:
        raise InputError(f"seed must be non-negative, got {seed}")
    return [seed, zlib.crc32(degradation.encode()), zlib.crc32(name.encode())]


def synthetic_eval_set(
    images: Sequence[tuple[str, np.ndarray]],
    degradations: Sequence[str],
    seed: int = 0,
    max_side: int | None = 256,
) -> list[EvalSample]:
    """Degrade every image with every degradation (degradation-major order). Images are
    uint8 or float RGB; each is centre-cropped to at most ``max_side`` square (evaluation pads
    to the model's multiple itself). Deterministic per (seed, degradation, image name)."""
    names = parse_names(list(degradations))
    if not images:
        raise InputError("synthetic_eval_set: no images given")
    clean = [(name, to_float(centre_crop(check_frame(img, name), max_side)).copy()) for name, img in images]
    samples = []
    for degradation in names:
        for name, gt in clean:
            rng = np.random.default_rng(sample_seed(seed, degradation, name))
            samples.append(EvalSample(degradation, name, degrade(gt, degradation, rng), gt))
    return samples
