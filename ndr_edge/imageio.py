"""Reading and writing images as uint8 HxWx3 RGB arrays (Pillow + numpy; torch-free).

``read_image`` always returns ``uint8`` HxWx3 RGB, whatever the file holds:

- grayscale (``L``, ``1``) and grayscale + alpha (``LA``): the gray channel is replicated to
  three channels (alpha dropped);
- ``RGBA``: the alpha channel is **dropped**; the stored colour is kept as it is, not
  composited over any background (a restoration network should see the pixels as stored);
- palette (``P``, ``PA``): expanded to RGB through the palette (transparency dropped);
- 16-bit grayscale PNG/TIFF (``I;16``, ``I``): scaled to 8 bits with rounding, ``round(x / 257)``;
- 16-bit colour PNG/TIFF: Pillow can only decode these to 8 bits by truncation (``x >> 8``),
  so when OpenCV is installed they are decoded with it and scaled with rounding,
  ``round(x / 257)``; without OpenCV, Pillow's truncated values are used (at most one level lower);
- 32-bit float (``F``): taken as [0, 1], clipped and rounded;
- ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``: converted to RGB by Pillow;
- multi-frame files (GIF, TIFF): the first frame;
- EXIF orientation is applied, so the array is the image as viewers display it.

A missing, unreadable or corrupt file raises ``InputError`` naming the file and the reason.
``write_image`` takes uint8, uint16 or float on [0, 1], picks the format from the suffix and
writes atomically (encoded in memory, then a temporary file beside the target and
``os.replace``), so a failed write never leaves a partial file.
"""

from __future__ import annotations

import importlib.util
import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ndr_edge.artifact import atomic_write_bytes
from ndr_edge.errors import InputError
from ndr_edge.frames import to_uint8

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Natural colour photos shipped inside the scikit-image wheel (read straight from the
# installed package; nothing is downloaded). motorcycle_right is left out: a near-duplicate
# of motorcycle_left.
DEMO_FILES: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "motorcycle_left": "motorcycle_left.png",
    "retina": "retina.jpg",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    # greyscale photos (replicated to three channels), held out as well
    "camera": "camera.png",
    "coins": "coins.png",
    "moon": "moon.png",
    "brick": "brick.png",
    "grass": "grass.png",
    "gravel": "gravel.png",
}
DEMO_TRAIN: tuple[str, ...] = ("astronaut", "chelsea", "hubble_deep_field", "ihc", "motorcycle_left", "retina")
DEMO_HELDOUT: tuple[str, ...] = ("coffee", "rocket")
#: Greyscale photos no training run sees: with DEMO_HELDOUT, the evaluation set of ``ndr-eval``.
DEMO_HELDOUT_GREY: tuple[str, ...] = ("camera", "coins", "moon", "brick", "grass", "gravel")

_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95},
    "PNG": {"compress_level": 6},
}
_EXIF_ORIENTATION = 0x0112


# -- reading ------------------------------------------------------------------------------
def _rawmode(img: Image.Image) -> str:
    tile = getattr(img, "tile", None) or []
    if not tile:
        return ""
    args = tile[0].args if hasattr(tile[0], "args") else tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _scale16(values: np.ndarray) -> np.ndarray:
    """16-bit values -> uint8 with rounding: round(x / 257)."""
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def _read16_colour(path: Path) -> np.ndarray | None:
    """16-bit colour PNG/TIFF with OpenCV (exact rounding); None when OpenCV is absent."""
    try:
        import cv2
    except ImportError:
        return None
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3:
        return None
    return _scale16(data[..., 2::-1])  # BGR(A) -> RGB, alpha dropped


def _orient(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1-8) to an HxWxC array, as Pillow's ``exif_transpose``."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(rgb)) if op else rgb


def _to_rgb8(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        gray = _scale16(np.asarray(img))
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = to_uint8(np.asarray(img, dtype=np.float32))
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("L", "LA", "La", "1"):
        gray = np.asarray(img.convert("L"))
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("RGBA", "RGBa", "RGBX"):
        return np.asarray(img)[..., :3].copy()
    if mode == "RGB":
        return np.asarray(img).copy()
    if mode in ("P", "PA"):
        return np.asarray(img.convert("RGBA"))[..., :3].copy()
    return np.asarray(img.convert("RGB")).copy()  # CMYK, YCbCr, LAB, HSV


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as ``uint8`` HxWx3 RGB (conversions in the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: image not found; check the path")
    if not p.is_file():
        raise InputError(f"{p}: not a file; pass an image file (png, jpg, bmp, tif, webp)")
    try:
        with Image.open(p) as img:
            img.seek(0)
            deep_colour = img.mode in ("RGB", "RGBA") and ";16" in _rawmode(img)  # before anything loads
            orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
            rgb = _read16_colour(p) if deep_colour else None
            if rgb is None:
                img.load()
                rgb = _to_rgb8(img)
    except PermissionError as err:
        raise InputError(f"{p}: cannot read image (permission denied); check the file's permissions") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        reason = str(err).strip() or type(err).__name__
        raise InputError(f"{p}: cannot read image ({reason}); the file is corrupt or not an image") from err
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise InputError(f"{p}: decoded to an unusable array of shape {rgb.shape}")
    return _orient(rgb, orientation)


# -- writing ------------------------------------------------------------------------------
def _format_for(path: Path) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or path.suffix.lower() not in IMAGE_SUFFIXES:
        raise InputError(f"{path}: unsupported image suffix {path.suffix!r}; use one of {', '.join(IMAGE_SUFFIXES)}")
    return fmt


def write_image(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write HxWx3 RGB (uint8, uint16 scaled with rounding, or float on [0, 1] clipped and
    rounded) atomically; the format comes from the suffix; missing parent folders are created."""
    p = Path(path)
    fmt = _format_for(p)
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        raise InputError(f"{p}: write_image needs an HxWx3 RGB array, got {getattr(rgb, 'shape', type(rgb).__name__)}")
    if rgb.dtype == np.uint8:
        data = rgb
    elif rgb.dtype == np.uint16:
        data = _scale16(rgb)
    elif np.issubdtype(rgb.dtype, np.floating):
        data = to_uint8(rgb)
    else:
        raise InputError(f"{p}: unsupported dtype {rgb.dtype}; use uint8 or float on [0, 1]")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(data)).save(buffer, format=fmt, **_SAVE_OPTIONS.get(fmt, {}))  # type: ignore[arg-type]
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(p, buffer.getvalue())


# -- folders ------------------------------------------------------------------------------
def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive, hidden files skipped), sorted
    by name; ``InputError`` if the folder is missing, not a folder, or holds no images."""
    root = Path(folder)
    if not root.exists():
        raise InputError(f"{root}: folder not found; check the path")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder; pass a folder of images")
    files = sorted(
        (f for f in root.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".") and f.is_file()),
        key=lambda f: f.name,
    )
    if not files:
        raise InputError(f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    return files


# -- demo photos --------------------------------------------------------------------------
def demo_folder() -> Path:
    """The ``data/`` folder of the installed scikit-image (no import, no download)."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "demo images need scikit-image (its wheel ships the photos): pip install scikit-image, "
            "or pass a folder of your own images"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@lru_cache(maxsize=len(DEMO_FILES))
def _demo_image(name: str) -> np.ndarray:
    path = demo_folder() / DEMO_FILES[name]
    if not path.is_file():
        raise InputError(f"{path}: demo image missing from the installed scikit-image; reinstall scikit-image")
    image = read_image(path)
    image.setflags(write=False)
    return image


def demo_images(split: str = "all") -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB) for the scikit-image photos: ``train`` (6 colour), ``heldout`` (2 colour),
    ``heldout-grey`` (6 greyscale, as RGB), ``eval`` (both held-out sets) or ``all`` (the colour ones)."""
    splits = {"train": DEMO_TRAIN, "heldout": DEMO_HELDOUT, "heldout-grey": DEMO_HELDOUT_GREY,
              "eval": DEMO_HELDOUT + DEMO_HELDOUT_GREY, "all": DEMO_TRAIN + DEMO_HELDOUT}
    if split not in splits:
        raise InputError(f"unknown demo split {split!r}; use one of {', '.join(splits)}")
    return [(name, _demo_image(name).copy()) for name in splits[split]]
