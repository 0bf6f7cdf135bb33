"""Seeded synthesis of the degradations NDR-Restore learns to remove. Torch-free.

Every function takes a clean float32 HxWx3 RGB image on [0, 1] and a
``numpy.random.Generator`` and returns a float32 image of the same shape, clipped to [0, 1].
All randomness comes from the generator, so the same seed gives a bit-identical result.

Degradations (``NAMES``):

- ``noise15`` / ``noise25`` / ``noise50``: additive white Gaussian noise with sigma 15, 25, 50
  on the 0-255 scale (the CBSD68 protocol); ``noise``: sigma drawn uniformly from
  ``NoiseParams.sigma_range`` (1-60, training).
- ``rain``: streaks from light to heavy: drops, thickened, motion-blurred along one random
  angle and length, scaled to a random brightness and screen-blended onto the image.
- ``haze``: the atmospheric scattering model ``I = J t + A (1 - t)``, ``t = exp(-beta d)``,
  with a depth proxy ``d`` mixing a tilted top-to-bottom ramp (the sky is far), the blurred
  luminance (bright regions read as far) and a random smooth field; random ``beta`` (light
  to dense) and a grey or slightly tinted airlight ``A``.
- ``lowres2`` / ``lowres4``: bicubic down-sampling by 2 / 4 and bicubic up-sampling back to the
  original size (Pillow's antialiased bicubic, as MATLAB ``imresize``); ``lowres``: x2 or x4.
- ``clean``: the image unchanged. Trained on, it teaches the network to leave a frame alone
  when nothing degraded it (without it a model trained only on degraded crops reads brick
  mortar as rain streaks and a sharp photo as blurred); evaluated, its "gain" is how much
  the network changes a clean frame (0 dB at best).
- ``mix``: two (``mix_count``) different degradations from noise / rain / haze / lowres, applied in
  the physical order haze -> rain -> lowres -> noise (scene, weather, optics, sensor).

Parameters are frozen dataclasses with the defaults ``degrade`` uses; pass your own
``DegradationParams`` to ``degrade`` to change the ranges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve

from ndr_edge.errors import InputError

CLEAN = "clean"
NAMES: tuple[str, ...] = ("noise15", "noise25", "noise50", "noise", "rain", "haze", "lowres2", "lowres4", "lowres", "mix",
                          CLEAN)
EVAL_NAMES: tuple[str, ...] = ("noise15", "noise25", "noise50", "rain", "haze", "lowres4", "mix")
TRAIN_NAMES: tuple[str, ...] = ("noise", "rain", "haze", "lowres")

#: The components ``mix`` draws from, in the physical order they are applied.
MIX_ORDER: tuple[str, ...] = ("haze", "rain", "lowres", "noise")

Range = tuple[float, float]


@dataclass(frozen=True)
class NoiseParams:
    """Additive white Gaussian noise; sigma on the 0-255 scale, drawn uniformly from the range."""

    sigma_range: Range = (1.0, 60.0)


@dataclass(frozen=True)
class RainParams:
    """Rain streaks, one direction per image, from Rain100L-light (sparse, thin, faint) to
    Rain100H-heavy (dense, long, wide, bright). One value of each range is drawn per image;
    lengths and widths are in pixels, angles in degrees from vertical."""

    density: Range = (0.001, 0.012)  # fraction of pixels that seed a streak
    length: Range = (6.0, 40.0)
    angle: Range = (-30.0, 30.0)
    width: Range = (0.3, 1.1)  # Gaussian sigma that thickens a drop before the motion blur
    brightness: Range = (0.25, 0.8)  # peak streak intensity
    blend: str = "screen"  # "screen": 1 - (1 - I)(1 - S); "add": I + S

    def __post_init__(self) -> None:
        if self.blend not in ("screen", "add"):
            raise InputError(f"RainParams.blend must be 'screen' or 'add', got {self.blend!r}")


@dataclass(frozen=True)
class HazeParams:
    """Atmospheric scattering: ``I = J t + A (1 - t)``, ``t = exp(-beta d)``; ``d`` is a
    depth proxy rescaled to ``depth`` (near, far). With the defaults the transmission of the
    farthest pixel runs from about 0.9 (light haze) down to 0.3 (dense). The airlight is grey
    ``A`` times a per-channel tint drawn from ``1 +- tint`` (bluish or yellowish haze)."""

    beta: Range = (0.1, 1.2)
    airlight: Range = (0.6, 1.0)
    tint: float = 0.08
    depth: Range = (0.2, 1.0)
    tilt: float = 20.0  # the ramp's direction varies by up to this many degrees from vertical
    weights: tuple[float, float, float] = (0.55, 0.3, 0.15)  # ramp, blurred luminance, random field


@dataclass(frozen=True)
class LowResParams:
    """Bicubic down-sampling by one of ``scales`` (drawn uniformly) and back up."""

    scales: tuple[int, ...] = (2, 4)

    def __post_init__(self) -> None:
        if not self.scales or any(int(s) < 1 for s in self.scales):
            raise InputError(f"LowResParams.scales must be positive integers, got {self.scales}")


@dataclass(frozen=True)
class DegradationParams:
    """All ranges in one place; ``mix_count`` is the (min, max) number of components in ``mix``
    (two by default: three stacked degradations rarely meet in one real frame)."""

    noise: NoiseParams = field(default_factory=NoiseParams)
    rain: RainParams = field(default_factory=RainParams)
    haze: HazeParams = field(default_factory=HazeParams)
    lowres: LowResParams = field(default_factory=LowResParams)
    mix_count: tuple[int, int] = (2, 2)


DEFAULT_PARAMS = DegradationParams()


# -- names --------------------------------------------------------------------------------
def parse_names(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"noise,rain"`` or ``["noise", "rain"]`` -> validated names, order kept, duplicates dropped."""
    items = spec.split(",") if isinstance(spec, str) else [str(s) for s in spec]
    names = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise InputError(f"unknown degradation(s) {', '.join(unknown)}; valid names: {', '.join(NAMES)}")
    if not names:
        raise InputError(f"no degradation given; valid names: {', '.join(NAMES)}")
    return names


# -- the degradations ---------------------------------------------------------------------
def _check_image(clean: np.ndarray) -> np.ndarray:
    if not isinstance(clean, np.ndarray) or clean.ndim != 3 or clean.shape[2] != 3:
        shape = getattr(clean, "shape", type(clean).__name__)
        raise InputError(f"degradations need an HxWx3 RGB array, got {shape}")
    if clean.shape[0] == 0 or clean.shape[1] == 0:
        raise InputError(f"degradations need a non-empty image, got shape {clean.shape}")
    if clean.dtype == np.uint8:
        return clean.astype(np.float32) / 255.0
    if not np.issubdtype(clean.dtype, np.floating):
        raise InputError(f"degradations need float32 on [0, 1] (or uint8), got dtype {clean.dtype}")
    return np.clip(clean, 0.0, 1.0).astype(np.float32, copy=False)


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    low, high = bounds
    return float(rng.uniform(low, high)) if high > low else float(low)


def add_noise(clean: np.ndarray, rng: np.random.Generator, params: NoiseParams = NoiseParams()) -> np.ndarray:
    """Additive white Gaussian noise, independent per pixel and channel."""
    img = _check_image(clean)
    sigma = _uniform(rng, params.sigma_range) / 255.0
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(img + noise, 0.0, 1.0)


def _line_kernel(length: float, angle_deg: float) -> np.ndarray:
    """Normalised motion-blur kernel: a line of ``length`` pixels, ``angle_deg`` from vertical."""
    size = int(np.ceil(length)) | 1
    centre = size // 2
    theta = np.deg2rad(angle_deg)
    steps = np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2 * size, 2))
    rows = np.clip(np.rint(centre + steps * np.cos(theta)).astype(int), 0, size - 1)
    cols = np.clip(np.rint(centre + steps * np.sin(theta)).astype(int), 0, size - 1)
    kernel = np.zeros((size, size), np.float64)
    kernel[rows, cols] = 1.0
    return kernel / kernel.sum()


def rain_layer(shape: tuple[int, int], rng: np.random.Generator, params: RainParams = RainParams()) -> np.ndarray:
    """The streak layer alone: float32 HxW on [0, 1] (peak = the drawn brightness)."""
    h, w = shape
    density = _uniform(rng, params.density)
    length = _uniform(rng, params.length)
    angle = _uniform(rng, params.angle)
    width = _uniform(rng, params.width)
    brightness = _uniform(rng, params.brightness)
    seeds = rng.random((h, w)) < density
    drops = np.where(seeds, rng.uniform(0.6, 1.0, (h, w)), 0.0)
    # thicken each drop, keeping its peak: divide by the peak of the Gaussian kernel
    drops = gaussian_filter(drops, width, mode="constant") / gaussian_filter(_delta(width), width, mode="constant").max()
    kernel = _line_kernel(length, angle)
    streaks = fftconvolve(drops, kernel, mode="same") / kernel.max()  # a lone drop keeps its intensity
    return (np.clip(streaks, 0.0, 1.0) * brightness).astype(np.float32)


def _delta(sigma: float) -> np.ndarray:
    size = 2 * int(np.ceil(4 * sigma)) + 1
    d = np.zeros((size, size))
    d[size // 2, size // 2] = 1.0
    return d


def add_rain(clean: np.ndarray, rng: np.random.Generator, params: RainParams = RainParams()) -> np.ndarray:
    """Rain streaks (white, one direction) blended onto the image."""
    img = _check_image(clean)
    streaks = rain_layer(img.shape[:2], rng, params)[..., None]
    out = 1.0 - (1.0 - img) * (1.0 - streaks) if params.blend == "screen" else img + streaks
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _resize(channel: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of one float32 HxW channel to ``size`` = (width, height) with Pillow."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32)).resize(size, Image.Resampling.BICUBIC))


def _smooth_field(h: int, w: int, rng: np.random.Generator, grid: int = 4) -> np.ndarray:
    coarse = rng.random((grid, grid)).astype(np.float32)
    return _resize(coarse, (w, h))


def _normalise(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 1e-8 else np.zeros_like(x)


def depth_proxy(img: np.ndarray, rng: np.random.Generator, params: HazeParams = HazeParams()) -> np.ndarray:
    """Relative depth on [0, 1] (1 = far): a tilted ramp (top far), the blurred luminance
    (bright = far, as sky) and a random smooth field, weighted by ``params.weights``."""
    h, w = img.shape[:2]
    theta = np.deg2rad(_uniform(rng, (-params.tilt, params.tilt)))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(h - 1, 1)
    xx = xx / max(w - 1, 1) - 0.5
    ramp = _normalise(1.0 - (yy * np.cos(theta) + xx * np.sin(theta)))
    lum = img @ np.array([0.299, 0.587, 0.114], np.float32)
    small = (max(1, round(w * 24 / max(h, w))), max(1, round(h * 24 / max(h, w))))
    lum_blur = _normalise(_resize(_resize(lum, small), (w, h)))
    field_ = _normalise(_smooth_field(h, w, rng))
    wr, wl, wf = params.weights
    return _normalise(wr * ramp + wl * lum_blur + wf * field_).astype(np.float32)


def add_haze(clean: np.ndarray, rng: np.random.Generator, params: HazeParams = HazeParams()) -> np.ndarray:
    """Homogeneous haze with the atmospheric scattering model and a depth proxy."""
    img = _check_image(clean)
    beta = _uniform(rng, params.beta)
    grey = _uniform(rng, params.airlight)
    near, far = params.depth
    depth = near + (far - near) * depth_proxy(img, rng, params)
    t = np.exp(-beta * depth)[..., None].astype(np.float32)
    tint = rng.uniform(-params.tint, params.tint, 3) if params.tint > 0 else np.zeros(3)
    airlight = np.clip(grey * (1.0 + tint), 0.0, 1.0).astype(np.float32)
    return np.clip(img * t + airlight * (1.0 - t), 0.0, 1.0).astype(np.float32)


def lower_resolution(clean: np.ndarray, rng: np.random.Generator, params: LowResParams = LowResParams()) -> np.ndarray:
    """Bicubic down by the drawn scale (to ``max(1, round(side / scale))``, so any size works)
    and bicubic back up to the original size."""
    img = _check_image(clean)
    scale = int(params.scales[int(rng.integers(len(params.scales)))])
    h, w = img.shape[:2]
    small = (max(1, round(w / scale)), max(1, round(h / scale)))
    out = np.stack([_resize(_resize(img[..., c], small), (w, h)) for c in range(3)], axis=-1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def mix(
    clean: np.ndarray, rng: np.random.Generator, params: DegradationParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Two or three different degradations in physical order; returns the image and the
    components applied (in order)."""
    img = _check_image(clean)
    low, high = params.mix_count
    count = int(rng.integers(low, high + 1))
    chosen = set(rng.choice(len(MIX_ORDER), size=min(count, len(MIX_ORDER)), replace=False).tolist())
    components = tuple(name for i, name in enumerate(MIX_ORDER) if i in chosen)
    for name in components:
        img = degrade(img, name, rng, params)
    return img, components


def _fixed(params: DegradationParams, name: str) -> DegradationParams:
    if name.startswith("noise") and name != "noise":
        sigma = float(name[len("noise"):])
        return replace(params, noise=replace(params.noise, sigma_range=(sigma, sigma)))
    if name.startswith("lowres") and name != "lowres":
        return replace(params, lowres=LowResParams(scales=(int(name[len("lowres"):]),)))
    return params


def degrade(
    clean: np.ndarray, name: str, rng: np.random.Generator, params: DegradationParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Apply degradation ``name`` (one of ``NAMES``) to a float32 HxWx3 RGB image on [0, 1]
    (uint8 is accepted and scaled); returns float32, same shape, clipped to [0, 1]."""
    if name not in NAMES:
        raise InputError(f"unknown degradation {name!r}; valid names: {', '.join(NAMES)}")
    if name == CLEAN:
        return _check_image(clean).copy()
    p = _fixed(params, name)
    if name.startswith("noise"):
        return add_noise(clean, rng, p.noise)
    if name == "rain":
        return add_rain(clean, rng, p.rain)
    if name == "haze":
        return add_haze(clean, rng, p.haze)
    if name.startswith("lowres"):
        return lower_resolution(clean, rng, p.lowres)
    return mix(clean, rng, p)[0]
