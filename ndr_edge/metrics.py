"""Image-quality metrics with the published NDR-Restore protocol. Torch-free.

``psnr`` and ``ssim`` score a restored image against its clean reference: the whole image
(no border crop), all three channels (no Y channel), values clipped to [0, 1], peak 1.
SSIM is the mean over channels with an 11x11 Gaussian window (sigma 1.5), data range 1 and
population covariance (``skimage.metrics.structural_similarity(..., gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)``).

Inputs are HxWx3 arrays only (HWC, either channel order: the metrics are symmetric in the
channels), float on [0, 1]; ``uint8`` is accepted and divided by 255. Convert CHW tensors
with ``t.permute(1, 2, 0).numpy()`` first.

``psnr_between`` and ``max_abs`` compare two outputs of the same model (PyTorch vs ONNX,
FP32 vs INT8): any shape, no clipping.
"""

from __future__ import annotations

import math

import numpy as np

from ndr_edge.errors import InputError

SSIM_SIGMA = 1.5
SSIM_WINDOW = 11  # what skimage derives from sigma 1.5 with truncate 3.5


def _pair(restored: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for what, x in (("restored", restored), ("clean", clean)):
        if not isinstance(x, np.ndarray) or x.ndim != 3 or x.shape[2] != 3:
            shape = getattr(x, "shape", type(x).__name__)
            raise InputError(f"metrics: {what} must be an HxWx3 array (HWC), got {shape}")
        y = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
        arrays.append(np.clip(y, 0.0, 1.0))
    if arrays[0].shape != arrays[1].shape:
        raise InputError(f"metrics: shapes differ, restored {restored.shape} vs clean {clean.shape}")
    return arrays[0], arrays[1]


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB for a mean squared error (the one place it is computed); ``inf`` for 0."""
    return math.inf if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def json_float(value: float | None, digits: int | None = None) -> float | str | None:
    """A metric for JSON, which has no infinity: identical outputs say ``"inf"`` in words."""
    if value is None:
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return float(value) if digits is None else round(float(value), digits)


def psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB on all channels after clipping to [0, 1], peak 1; ``inf`` when identical."""
    a, b = _pair(restored, clean)
    return psnr_from_mse(float(np.mean((a - b) ** 2)))


def ssim(restored: np.ndarray, clean: np.ndarray) -> float:
    """SSIM, mean over the three channels (Gaussian window sigma 1.5, data range 1,
    population covariance); both sides need at least 11x11 pixels."""
    from skimage.metrics import structural_similarity

    a, b = _pair(restored, clean)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise InputError(f"metrics: SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {a.shape[:2]}")
    value = structural_similarity(
        a, b, gaussian_weights=True, sigma=SSIM_SIGMA, use_sample_covariance=False, data_range=1.0, channel_axis=-1
    )
    return float(value)


def _same_shape(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise InputError(f"metrics: shapes differ, {x.shape} vs {y.shape}")
    if x.size == 0:
        raise InputError("metrics: empty arrays")
    return x, y


def psnr_between(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (peak 1) between two outputs of any shape, without clipping; ``inf`` when identical."""
    x, y = _same_shape(a, b)
    return psnr_from_mse(float(np.mean((x - y) ** 2)))


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    """Largest absolute element-wise difference."""
    x, y = _same_shape(a, b)
    return float(np.max(np.abs(x - y)))
