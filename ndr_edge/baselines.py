"""Classical restoration methods to put beside the network, per degradation. Torch-free.

Every method takes a float32 HxWx3 RGB image on [0, 1] and returns one; none is told the
degradation's parameters (blind, like the network): the noise level is estimated from the
image (wavelet median absolute deviation, ``skimage.restoration.estimate_sigma``).

- ``nlm``: OpenCV's fast non-local means for colour images, ``h`` = the estimated sigma.
- ``bm3d``: BM3D (the ``bm3d`` package, ``bm3d_rgb``) at the estimated sigma.
- ``dcp``: the dark-channel prior (He, Sun, Tang, CVPR 2009): 15 px dark channel, airlight
  from its brightest 0.1 %, transmission ``1 - 0.95 dark(I / A)``, refined with a guided
  filter (radius 40, eps 1e-3), floored at 0.1.
- ``bicubic``: low resolution's classical answer. The degraded input already *is* the
  bicubic up-sampling of the low-resolution frame, so this row is the input (gain 0 by
  construction); it is listed so the table says so.
- ``median``: a 3x3 median filter (thin rain streaks are impulse-like across their width).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ndr_edge.errors import BackendUnavailableError

__all__ = ["BASELINES", "Baseline", "baselines_for", "dark_channel_prior", "require_baselines"]

Method = Callable[[np.ndarray], np.ndarray]


def _sigma(img: np.ndarray) -> float:
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(img, channel_axis=-1, average_sigmas=True))


def _to_u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def non_local_means(img: np.ndarray) -> np.ndarray:
    import cv2

    h = max(_sigma(img) * 255.0, 1.0)
    out = cv2.fastNlMeansDenoisingColored(_to_u8(img), None, h, h, 7, 21)
    return out.astype(np.float32) / 255.0


def bm3d_denoise(img: np.ndarray) -> np.ndarray:
    import bm3d

    sigma = max(_sigma(img), 1e-3)
    return np.clip(bm3d.bm3d_rgb(img.astype(np.float64), sigma), 0.0, 1.0).astype(np.float32)


def _guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    import cv2

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT)

    mean_g, mean_s = box(guide), box(src)
    a = (box(guide * src) - mean_g * mean_s) / (box(guide * guide) - mean_g * mean_g + eps)
    b = mean_s - a * mean_g
    return box(a) * guide + box(b)


def dark_channel_prior(img: np.ndarray, patch: int = 15, omega: float = 0.95, t_min: float = 0.1) -> np.ndarray:
    """He et al.'s single-image dehazing; see the module docstring for the constants."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    img = img.astype(np.float32)
    dark = cv2.erode(img.min(axis=2), kernel)
    count = max(1, dark.size // 1000)
    brightest = np.argsort(dark.ravel())[-count:]
    airlight = np.maximum(img.reshape(-1, 3)[brightest].max(axis=0), 1e-3)
    transmission = 1.0 - omega * cv2.erode((img / airlight).min(axis=2), kernel)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    transmission = np.maximum(_guided_filter(grey, transmission.astype(np.float32), 40, 1e-3), t_min)
    out = (img - airlight) / transmission[..., None] + airlight
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def bicubic(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32, copy=True)


def median_filter(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.medianBlur(_to_u8(img), 3).astype(np.float32) / 255.0


@dataclass(frozen=True)
class Baseline:
    name: str
    applies_to: tuple[str, ...]  # degradation name prefixes
    method: Method
    needs: tuple[str, ...]  # importable modules
    summary: str


BASELINES: tuple[Baseline, ...] = (
    Baseline("nlm", ("noise",), non_local_means, ("cv2", "skimage"), "OpenCV non-local means"),
    Baseline("bm3d", ("noise",), bm3d_denoise, ("bm3d", "skimage"), "BM3D"),
    Baseline("dcp", ("haze",), dark_channel_prior, ("cv2",), "dark-channel prior"),
    Baseline("bicubic", ("lowres",), bicubic, (), "bicubic (= the input)"),
    Baseline("median", ("rain",), median_filter, ("cv2",), "3x3 median filter"),
)

_INSTALL = {"cv2": "opencv-python-headless", "bm3d": "bm3d", "skimage": "scikit-image"}


def require_baselines() -> None:
    """Raise ``BackendUnavailableError`` naming each missing package and the install line."""
    missing = sorted({mod for b in BASELINES for mod in b.needs if importlib.util.find_spec(mod) is None})
    if missing:
        packages = " ".join(_INSTALL[m] for m in missing)
        raise BackendUnavailableError(
            f"--baselines needs {', '.join(missing)}: pip install {packages} (or pip install 'ndr-edge[baselines]')"
        )


def baselines_for(degradation: str) -> list[Baseline]:
    return [b for b in BASELINES if any(degradation.startswith(p) for p in b.applies_to)]
