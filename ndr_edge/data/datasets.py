"""PyTorch datasets: synthetic training pairs made on the fly, and real pairs from disk.

``SyntheticPairs`` item ``i`` depends only on ``(seed, offset + i)``: every DDP rank,
DataLoader worker and resumed run sees the same sample for the same global index (a resumed
run passes ``offset`` = samples already seen, so it continues the stream exactly). Per item
it draws an image (from the photos, or with probability ``procedural_fraction`` from the
procedural pool, or with probability ``structured_fraction`` from the structured pool) and a
degradation (``balanced``: index mod the number of degradations, so every batch holds each
in equal share; otherwise drawn), crops a ``crop.size`` square at a random position (images smaller than
the crop are first reflect-padded on the right/bottom), applies a random flip and 90-degree
rotation to the **clean** crop, then degrades it (so rain stays near-vertical and haze far at
the top, as in real photos). Tensors are float32 3xSxS on [0, 1] in ``channel_order``.

``PairedFolder`` items are numpy float32 HxWx3 **RGB** (full images, what evaluation uses);
``PairedFolder.tensors(i)`` gives 3xHxW tensors in ``channel_order`` for training on real pairs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ndr_edge.data.eval_set import EvalSample
from ndr_edge.data.folders import find_pairs, load_pair
from ndr_edge.degradations import degrade, parse_names
from ndr_edge.errors import InputError
from ndr_edge.frames import CHANNEL_ORDERS, check_frame, reorder, to_float

__all__ = ["CropConfig", "PairedFolder", "SyntheticPairs", "augment", "random_crop", "retone", "to_grey"]


@dataclass(frozen=True)
class CropConfig:
    """Training crop: ``size`` x ``size`` pixels, random flips, random 90-degree rotations,
    with probability ``grey`` the clean crop made greyscale, and with probability ``tone``
    its contrast and level changed (``retone``), both before it is degraded.

    ``grey`` exists because a network trained on colour photos only learns "no saturation"
    as a sign of haze: on greyscale photos it then darkens clean, noisy and low-resolution
    frames alike (the bundled model lost 5-11 dB on brick, grass and gravel at x2).
    ``tone`` exists for the same reason one step further: clean bright, low-contrast frames
    (brick, coins) were still taken for haze, and the six training photos are all
    high-contrast.
    """

    size: int = 128
    flips: bool = True
    rotations: bool = True
    grey: float = 0.0
    tone: float = 0.0
    #: contrast factor range of ``retone`` (1: unchanged)
    contrast: tuple[float, float] = (0.3, 1.0)

    def __post_init__(self) -> None:
        if self.size < 1:
            raise InputError(f"crop size must be positive, got {self.size}")
        for name in ("grey", "tone"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if not 0.0 < self.contrast[0] <= self.contrast[1] <= 1.0:
            raise InputError(f"contrast range must satisfy 0 < low <= high <= 1, got {self.contrast}")


def _check_order(channel_order: str) -> str:
    if channel_order not in CHANNEL_ORDERS:
        raise InputError(f"channel order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    return channel_order


def _to_tensor(rgb: np.ndarray, channel_order: str) -> torch.Tensor:
    chw = reorder(rgb, "RGB", channel_order).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(chw, dtype=np.float32))


def random_crop(image: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` square at a random position; smaller images are reflect-padded right/bottom."""
    h, w = image.shape[:2]
    if h < size or w < size:
        image = np.pad(image, ((0, max(size - h, 0)), (0, max(size - w, 0)), (0, 0)), mode="reflect")
        h, w = image.shape[:2]
    top = int(rng.integers(h - size + 1))
    left = int(rng.integers(w - size + 1))
    return image[top: top + size, left: left + size]


def augment(image: np.ndarray, crop: CropConfig, rng: np.random.Generator) -> np.ndarray:
    """Random horizontal/vertical flips and 90-degree rotations (the 8 symmetries of a square)."""
    hflip, vflip, turns = bool(rng.integers(2)), bool(rng.integers(2)), int(rng.integers(4))
    if crop.flips and hflip:
        image = image[:, ::-1]
    if crop.flips and vflip:
        image = image[::-1]
    if crop.rotations and turns:
        image = np.rot90(image, turns)
    return image


def to_grey(image: np.ndarray) -> np.ndarray:
    """Float RGB -> the same luma (ITU-R BT.601 weights) in all three channels."""
    luma = image @ np.array([0.299, 0.587, 0.114], dtype=image.dtype)
    return np.repeat(luma[..., None], 3, axis=-1)


def flat_grey(image: np.ndarray, sigma: float = 1.0, contrast: float = 0.7) -> np.ndarray:
    """Float RGB on [0, 1] -> a smooth, low-contrast grey copy: luma, Gaussian-blurred by
    ``sigma`` px, contrast about the mean scaled by ``contrast`` (a frame like the moon photo)."""
    from scipy.ndimage import gaussian_filter

    luma = gaussian_filter(to_grey(image)[..., 0], sigma)
    flat = np.clip(contrast * (luma - luma.mean()) + luma.mean(), 0.0, 1.0)
    return np.repeat(flat[..., None], 3, axis=-1).astype(image.dtype)


def retone(image: np.ndarray, rng: np.random.Generator, contrast: tuple[float, float] = (0.3, 1.0)) -> np.ndarray:
    """Float RGB on [0, 1] -> the same image with its contrast about the mean scaled by a
    factor drawn from ``contrast`` and its mean moved to a random level, chosen so that no
    pixel clips (the result is still a clean image, only flatter and brighter or darker)."""
    c = float(rng.uniform(*contrast))
    mean = float(image.mean())
    low, high = c * (mean - float(image.min())), 1.0 - c * (float(image.max()) - mean)
    level = float(rng.uniform(low, high)) if high > low else mean
    return np.clip(c * (image - mean) + level, 0.0, 1.0).astype(image.dtype)


class SyntheticPairs(Dataset):
    """Clean images with degradations synthesised on the fly; ``samples`` items, each
    ``dict(lq=Tensor 3xSxS, gt=Tensor 3xSxS, degradation=str)``, deterministic per (seed, i)."""

    def __init__(
        self,
        images: Sequence[np.ndarray],
        degradations: Sequence[str],
        crop: CropConfig,
        samples: int,
        seed: int,
        channel_order: str = "BGR",
        procedural: Sequence[np.ndarray] = (),
        procedural_fraction: float = 0.0,
        balanced: bool = False,
        offset: int = 0,
        structured: Sequence[np.ndarray] = (),
        structured_fraction: float = 0.0,
        objects: Sequence[np.ndarray] = (),
        objects_fraction: float = 0.0,
    ) -> None:
        if not images:
            raise InputError("SyntheticPairs: no clean images given")
        if samples < 0:
            raise InputError(f"SyntheticPairs: samples must be non-negative, got {samples}")
        if seed < 0:
            raise InputError(f"SyntheticPairs: seed must be non-negative, got {seed}")
        self.images = [check_frame(img, f"training image {k}") for k, img in enumerate(images)]
        self.degradations = parse_names(list(degradations))
        self.crop = crop
        self.samples = int(samples)
        self.seed = int(seed)
        self.channel_order = _check_order(channel_order)
        self.procedural = [check_frame(img, f"procedural image {k}") for k, img in enumerate(procedural)]
        if not 0.0 <= procedural_fraction <= 1.0 or (procedural_fraction > 0 and not self.procedural):
            raise InputError(f"SyntheticPairs: procedural_fraction {procedural_fraction} needs a procedural pool and [0, 1]")
        self.procedural_fraction = float(procedural_fraction)
        self.structured = [check_frame(img, f"structured image {k}") for k, img in enumerate(structured)]
        if not 0.0 <= structured_fraction <= 1.0 - self.procedural_fraction or (structured_fraction > 0 and not self.structured):
            raise InputError(f"SyntheticPairs: structured_fraction {structured_fraction} needs a structured pool and "
                             f"[0, 1 - procedural_fraction]")
        self.structured_fraction = float(structured_fraction)
        self.objects = [check_frame(img, f"objects image {k}") for k, img in enumerate(objects)]
        if (not 0.0 <= objects_fraction <= 1.0 - self.procedural_fraction - self.structured_fraction + 1e-9
                or (objects_fraction > 0 and not self.objects)):
            raise InputError(f"SyntheticPairs: objects_fraction {objects_fraction} needs an objects pool and "
                             f"[0, 1 - procedural_fraction - structured_fraction]")
        self.objects_fraction = float(objects_fraction)
        self.balanced = bool(balanced)
        if offset < 0:
            raise InputError(f"SyntheticPairs: offset must be non-negative, got {offset}")
        self.offset = int(offset)

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.samples:
            raise IndexError(f"SyntheticPairs index {index} out of range [0, {self.samples})")
        global_index = self.offset + int(index)
        rng = np.random.default_rng([self.seed, global_index])
        pool = self.images
        shares = ((self.procedural_fraction, self.procedural), (self.structured_fraction, self.structured),
                  (self.objects_fraction, self.objects))
        if any(fraction for fraction, _ in shares):  # no draw when none: old streams stay
            draw, edge = rng.random(), 0.0
            for fraction, source in shares:
                edge += fraction
                if draw < edge:
                    pool = source
                    break
        image = pool[int(rng.integers(len(pool)))]
        if self.balanced:
            name = self.degradations[global_index % len(self.degradations)]
        else:
            name = self.degradations[int(rng.integers(len(self.degradations)))]
        clean = to_float(np.ascontiguousarray(augment(random_crop(image, self.crop.size, rng), self.crop, rng)))
        if self.crop.grey and rng.random() < self.crop.grey:
            clean = to_grey(clean)
        if self.crop.tone and rng.random() < self.crop.tone:
            clean = retone(clean, rng, self.crop.contrast)
        degraded = degrade(clean, name, rng)
        return {
            "lq": _to_tensor(degraded, self.channel_order),
            "gt": _to_tensor(clean, self.channel_order),
            "degradation": name,
        }


class PairedFolder(Dataset):
    """Real degraded/clean pairs (layouts in ``ndr_edge.data.folders``), loaded lazily, full
    size. Items: ``dict(lq=float32 HxWx3 RGB, gt=..., name=str)`` on [0, 1]."""

    def __init__(self, root: str | os.PathLike[str], layout: str = "auto", channel_order: str = "BGR") -> None:
        self.root = root
        self.layout, self.pairs = find_pairs(root, layout)
        self.channel_order = _check_order(channel_order)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < len(self.pairs):
            raise IndexError(f"PairedFolder index {index} out of range [0, {len(self.pairs)})")
        pair = self.pairs[index]
        lq, gt = load_pair(pair, self.layout)
        return {"lq": lq, "gt": gt, "name": pair.name}

    def tensors(self, index: int) -> dict[str, Any]:
        """The same pair as 3xHxW float32 tensors in ``channel_order``."""
        item = self[index]
        return {
            "lq": _to_tensor(item["lq"], self.channel_order),
            "gt": _to_tensor(item["gt"], self.channel_order),
            "name": item["name"],
        }

    def eval_samples(self, degradation: str = "real") -> list[EvalSample]:
        """Every pair as an ``EvalSample`` (loads all images)."""
        samples = []
        for i in range(len(self)):
            item = self[i]
            samples.append(EvalSample(degradation, item["name"], item["lq"], item["gt"]))
        return samples
