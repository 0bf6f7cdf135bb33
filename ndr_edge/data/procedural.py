"""Procedural clean images: the dead-leaves model (natural-image statistics), structured
scenes (walls, tiles, wires: thin straight lines) and objects on flat backgrounds. Torch-free.

Occluding discs are dropped front to back (each new disc only fills pixels no earlier disc
covered) until the image is covered. Radii follow the scale-invariant power law
``p(r) ~ r**-3`` between ``radius`` bounds, which gives the 1/f^2 power spectrum of natural
photos; each disc has a colour, a linear shading gradient and a sinusoidal or noise texture,
and the finished image gets a slight optical blur. Training on such images brings a denoiser
to within about a dB of one trained on photos (Achddou et al., "Synthetic images as a
regularity prior for image restoration neural networks", 2021).

Dead leaves has no long straight thin lines, and photos of brick walls or tiled floors are
full of them: a network that has only seen thin bright lines as rain streaks removes the
mortar of a brick wall (the bundled model lost 15 dB on scikit-image's brick photo at x2).
``structured`` draws such scenes: a brick or tile wall (per-brick colour and texture,
mortar lighter or darker, 1-3 px), or a dead-leaves background crossed by straight lines and
circle outlines of random angle, width and brightness, all slightly rotated and blurred.
``objects`` draws textured discs and ellipses (coins, moons, pebbles) on a smooth, flat
background from dark to mid-grey: the bundled model read the grey background of
scikit-image's coins photo as airlight and lost 6 dB on it at x2.

Everything is drawn from the ``numpy.random.Generator`` passed in: the same seed gives a
bit-identical image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter

from ndr_edge.errors import InputError

__all__ = ["DeadLeavesParams", "dead_leaves", "dead_leaves_set", "objects", "objects_set", "structured", "structured_set"]


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


def _wall(size: int, rng: np.random.Generator) -> np.ndarray:
    """Bricks in running bond (or square tiles) with mortar lines, on a canvas 1.5x ``size``."""
    canvas = int(size * 1.5)
    height = float(rng.uniform(4.0, 28.0))
    tiles = rng.random() < 0.3
    width = height * (1.0 if tiles else float(rng.uniform(1.8, 4.0)))
    mortar = int(rng.integers(1, 4))
    base = _colour(rng)
    spread = float(rng.uniform(0.03, 0.25))
    grout = np.clip(base + rng.choice([-1.0, 1.0], p=[0.3, 0.7]) * rng.uniform(0.15, 0.5), 0.0, 1.0)
    image = np.empty((canvas, canvas, 3), np.float32)
    image[:] = grout
    rows = int(np.ceil(canvas / height)) + 1
    for row in range(rows):
        top = row * height
        shift = 0.0 if tiles else (row % 2) * width / 2 + float(rng.uniform(-0.1, 0.1)) * width
        for col in range(-1, int(np.ceil(canvas / width)) + 1):
            left = col * width + shift
            y0, y1 = int(round(top)) + mortar, int(round(top + height))
            x0, x1 = int(round(left)) + mortar, int(round(left + width))
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, canvas), min(x1, canvas)
            if y1 <= y0 or x1 <= x0:
                continue
            colour = np.clip(base * (1.0 + float(rng.normal(0.0, spread))) + rng.normal(0.0, spread / 4, 3), 0.0, 1.0)
            grain = rng.standard_normal((y1 - y0, x1 - x0, 1)).astype(np.float32) * float(rng.uniform(0.0, 0.06))
            image[y0:y1, x0:x1] = colour * (1.0 + grain)
    return image


def _lines(size: int, rng: np.random.Generator) -> np.ndarray:
    """A dead-leaves background crossed by straight lines and circle outlines, 1.5x ``size``."""
    canvas = int(size * 1.5)
    image = dead_leaves(canvas, rng, DeadLeavesParams(radius=(3.0, 200.0), max_discs=4000, blur=(0.0, 0.0)))
    image = np.ascontiguousarray(image)
    for _ in range(int(rng.integers(3, 30))):
        colour = tuple(float(c) for c in (np.ones(3) * rng.choice([0.05, 0.95]) * 0.5 + _colour(rng) * 0.5))
        thickness = int(rng.integers(1, 4))
        if rng.random() < 0.8:
            angle = float(rng.normal(np.pi / 2, 0.3)) if rng.random() < 0.4 else float(rng.uniform(0, np.pi))
            cy, cx = rng.uniform(0, canvas, 2)
            dy, dx = np.sin(angle) * 2 * canvas, np.cos(angle) * 2 * canvas
            p0 = (int((cx - dx) * 16), int((cy - dy) * 16))
            p1 = (int((cx + dx) * 16), int((cy + dy) * 16))
            cv2.line(image, p0, p1, colour, thickness, cv2.LINE_AA, shift=4)
        else:
            centre = tuple(int(v * 16) for v in rng.uniform(0, canvas, 2))
            radius = int(float(rng.uniform(4.0, canvas / 3)) * 16)
            cv2.circle(image, centre, radius, colour, thickness, cv2.LINE_AA, shift=4)
    return image


def structured(size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size`` x ``size`` float32 RGB image on [0, 1]: a wall or a scene with lines,
    rotated by up to 30 degrees, slightly blurred."""
    if size < 1:
        raise InputError(f"structured: size must be positive, got {size}")
    image = _wall(size, rng) if rng.random() < 0.5 else _lines(size, rng)
    canvas = image.shape[0]
    angle = float(rng.uniform(-30.0, 30.0))
    matrix = cv2.getRotationMatrix2D((canvas / 2, canvas / 2), angle, 1.0)
    matrix[:, 2] -= (canvas - size) / 2
    image = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    sigma = float(rng.uniform(0.0, 0.8))
    if sigma > 0:
        image = gaussian_filter(image, (sigma, sigma, 0), mode="reflect")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def objects(size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``size`` x ``size`` float32 RGB image on [0, 1]: textured discs and ellipses (coins,
    moons, pebbles) on a smooth, flat background whose level runs from dark to mid-grey, grey
    or faintly tinted. Clean targets like these tell the network that a low-contrast flat
    background is not airlight (it stretched the coins photo's grey background to black)."""
    if size < 1:
        raise InputError(f"objects: size must be positive, got {size}")
    level = float(rng.uniform(0.03, 0.7))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / max(size - 1, 1)
    angle = float(rng.uniform(0.0, 2.0 * np.pi))
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * float(rng.uniform(0.0, 0.15))
    smooth = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), size / 6.0, mode="reflect")
    smooth *= float(rng.uniform(0.0, 0.06)) / max(float(smooth.std()), 1e-6)
    grain = rng.standard_normal((size, size)).astype(np.float32) * float(rng.uniform(0.0, 0.015))
    tint = np.ones(3, np.float32) if rng.random() < 0.6 else (0.85 + 0.3 * _colour(rng)).astype(np.float32)
    image = np.clip(level + ramp + smooth + grain, 0.0, 1.0)[..., None] * tint
    for _ in range(int(rng.integers(1, 25))):
        radius = float(np.exp(rng.uniform(np.log(size / 40.0 + 1.0), np.log(size / 4.0 + 2.0))))
        axes = (radius, radius * float(rng.uniform(0.7, 1.0)))
        centre = rng.uniform(-0.1, 1.1, 2) * size
        mask = np.zeros((size, size), np.float32)
        cv2.ellipse(mask, (int(centre[0] * 16), int(centre[1] * 16)), (int(axes[0] * 16), int(axes[1] * 16)),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1, cv2.LINE_AA, shift=4)
        if not mask.any():
            continue
        brighter = rng.random() < 0.75
        shade = float(np.clip(level + (1 if brighter else -1) * rng.uniform(0.1, 0.45), 0.02, 0.85))
        relief = gaussian_filter(rng.standard_normal((size, size)).astype(np.float32), float(rng.uniform(0.7, 4.0)))
        relief *= float(rng.uniform(0.01, 0.12)) / max(float(relief.std()), 1e-6)
        dist = np.hypot(xx * (size - 1) - centre[0], yy * (size - 1) - centre[1]) / max(axes[0], 1.0)
        rim = float(rng.uniform(-0.15, 0.25)) * np.clip(dist, 0.0, 1.0) ** 4
        body = np.clip(shade * (1.0 + relief + rim), 0.0, 1.0)[..., None] * tint
        image = image * (1.0 - mask[..., None]) + body * mask[..., None]
    sigma = float(rng.uniform(0.0, 1.0))
    if sigma > 0:
        image = gaussian_filter(image, (sigma, sigma, 0), mode="reflect")
    return np.clip(image, 0.0, 1.0).astype(np.float32)


def _named_set(kind: str, draw: Callable[[int, np.random.Generator], np.ndarray], count: int, size: int,
               seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` named uint8 RGB images (``<kind>-<seed>-<k>``), image k drawn from ``default_rng([seed, k])``."""
    if count < 0:
        raise InputError(f"{kind}_set: count must be non-negative, got {count}")
    return [(f"{kind}-{seed}-{k}", (draw(size, np.random.default_rng([seed, k])) * 255.0 + 0.5).astype(np.uint8))
            for k in range(count)]


def structured_set(count: int, size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` named uint8 RGB images (``structured-<seed>-<k>``), image k drawn from
    ``default_rng([seed, k])``."""
    return _named_set("structured", structured, count, size, seed)


def objects_set(count: int, size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``count`` named uint8 RGB images (``objects-<seed>-<k>``), image k drawn from
    ``default_rng([seed, k])``."""
    return _named_set("objects", objects, count, size, seed)
