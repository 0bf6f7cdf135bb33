"""Procedural clean images with natural-image statistics: the dead-leaves model. Torch-free.

Occluding discs are dropped front to back (each new disc only fills pixels no earlier disc
covered) until the image is covered. Radii follow the scale-invariant power law
``p(r) ~ r**-3`` between ``radius`` bounds, which gives the 1/f^2 power spectrum of natural
photos; each disc has a colour, a linear shading gradient and a sinusoidal or noise texture,
and the finished image gets a slight optical blur. Training on such images brings a denoiser
to within about a dB of one trained on photos (Achddou et al., "Synthetic images as a
regularity prior for image restoration neural networks", 2021).

Everything is drawn from the ``numpy.random.Generator`` passed in: the same seed gives a
bit-identical image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from ndr_edge.errors import InputError

__all__ = ["DeadLeavesParams", "dead_leaves", "dead_leaves_set"]


@dataclass(frozen=True)
class DeadLeavesParams:
    """Dead-leaves drawing; radii in pixels, ``texture`` the peak amplitude of a disc's texture."""

    radius: tuple[float, float] = (1.5, 120.0)
    max_discs: int = 40000
    texture: float = 0.12
    blur: tuple[float, float] = (0.0, 0.8)  # Gaussian sigma of the final optical blur

    def __post_init__(self) -> None:
        low, high = self.radius
        if not 0 < low <= high:
            raise InputError(f"DeadLeavesParams.radius must be 0 < min <= max, got {self.radius}")


def _radius(rng: np.random.Generator, low: float, high: float) -> float:
    """Inverse-CDF sample of ``p(r) ~ r**-3`` on [low, high]."""
    a, b = low**-2, high**-2
    return float((a - rng.random() * (a - b)) ** -0.5)


def _colour(rng: np.random.Generator) -> np.ndarray:
    """A random colour with correlated channels, as in photos (mostly desaturated)."""
    luma = rng.random()
    chroma = rng.normal(0.0, 0.18, 3)
    return np.clip(luma + chroma - chroma.mean(), 0.0, 1.0).astype(np.float32)


def dead_leaves(size: int, rng: np.random.Generator, params: DeadLeavesParams = DeadLeavesParams()) -> np.ndarray:
    """One ``size`` x ``size`` float32 RGB image on [0, 1]."""
    if size < 1:
        raise InputError(f"dead_leaves: size must be positive, got {size}")
    low, high = params.radius
    high = min(high, float(size))
    low = min(low, high)
    image = np.zeros((size, size, 3), np.float32)
    empty = np.ones((size, size), bool)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    remaining = size * size
    for _ in range(params.max_discs):
        if remaining == 0:
            break
        r = _radius(rng, low, high)
        cy, cx = rng.uniform(-r, size + r, 2)
        top, bottom = max(int(cy - r), 0), min(int(np.ceil(cy + r)) + 1, size)
        left, right = max(int(cx - r), 0), min(int(np.ceil(cx + r)) + 1, size)
        if top >= bottom or left >= right:
            continue
        dy, dx = yy[top:bottom, left:right] - cy, xx[top:bottom, left:right] - cx
        mask = (dy * dy + dx * dx <= r * r) & empty[top:bottom, left:right]
        count = int(mask.sum())
        if not count:
            continue
        colour = _colour(rng)
        # shading: a linear gradient across the disc; texture: a sinusoid or fine noise
        gy, gx = rng.normal(0.0, 0.08 / max(r, 1.0), 2)
        shade = gy * dy[mask] + gx * dx[mask]
        if rng.random() < 0.5:
            period = rng.uniform(2.0, max(3.0, r))
            theta = rng.uniform(0, np.pi)
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin(2 * np.pi * (dx[mask] * np.cos(theta) + dy[mask] * np.sin(theta)) / period + phase)
            texture = params.texture * rng.random() * wave
        else:
            texture = params.texture * rng.random() * rng.standard_normal(count)
        value = colour[None, :] * (1.0 + (shade + texture)[:, None])
        patch = image[top:bottom, left:right]
        patch[mask] = value.astype(np.float32)
        empty[top:bottom, left:right] &= ~mask
        remaining -= count
    if remaining:  # the disc budget ran out: fill the holes with the mean colour
        image[empty] = image[~empty].mean(axis=0) if (~empty).any() else 0.5
    sigma = float(rng.uniform(*params.blur))
    if sigma > 0:
        image = gaussian_filter(image, (sigma, sigma, 0), mode="reflect")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def dead_leaves_set(count: int, size: int, seed: int, params: DeadLeavesParams = DeadLeavesParams()) -> list[tuple[str, np.ndarray]]:
    """``count`` named uint8 RGB images (``deadleaves-<seed>-<k>``), image k drawn from
    ``default_rng([seed, k])``: the set for one seed is the same on every machine."""
    if count < 0:
        raise InputError(f"dead_leaves_set: count must be non-negative, got {count}")
    out = []
    for k in range(count):
        img = dead_leaves(size, np.random.default_rng([seed, k]), params)
        out.append((f"deadleaves-{seed}-{k}", (img * 255.0 + 0.5).astype(np.uint8)))
    return out
