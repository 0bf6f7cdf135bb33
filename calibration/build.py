"""Build a calibration set: degraded crops of clean images (or crops of real degraded
frames), stored as ``.npy`` shards plus a ``manifest.json``. Torch-free.

The same recipe, seed and source images give the same bytes: every sample draws from its
own generator seeded by ``(seed, index)``, and the manifest holds no time stamps. The set is
written into a temporary folder beside the target and renamed into place when complete,
so a failure never leaves a half-written set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ndr_edge.artifact import atomic_write_json, default_file_mode, sha256_file
from ndr_edge.calibration.reader import MANIFEST_NAME, SET_FORMAT, SET_SCHEMA, CalibrationSet, shard_name
from ndr_edge.calibration.recipe import CLEAN, REAL, CalibrationRecipe
from ndr_edge.errors import InputError


@dataclass(frozen=True)
class SourceImage:
    """One source image: a name for the manifest, the SHA-256 of its bytes, uint8 RGB pixels."""

    name: str
    sha256: str
    pixels: np.ndarray


def _array_sha256(pixels: np.ndarray) -> str:
    digest = hashlib.sha256(f"{pixels.shape}|{pixels.dtype}|".encode())
    digest.update(np.ascontiguousarray(pixels).tobytes())
    return digest.hexdigest()


def load_sources(folders: Sequence[str | os.PathLike[str]] | None) -> list[SourceImage]:
    """Read every image of ``folders`` (or the built-in demo training images when None or empty)."""
    from ndr_edge.imageio import demo_images, list_images, read_image

    if not folders:
        demo = demo_images("train")
        if not demo:
            raise InputError("built-in demo images: none found; reinstall ndr-edge or pass image folders")
        return [SourceImage(f"demo/{name}", _array_sha256(pixels), _as_rgb_uint8(pixels, name)) for name, pixels in demo]

    sources: list[SourceImage] = []
    for folder in (Path(f) for f in folders):
        if not folder.is_dir():
            raise InputError(f"{folder}: not a folder; pass folders of images (png, jpg, ...)")
        paths = list_images(folder)
        if not paths:
            raise InputError(f"{folder}: no images found; pass a folder that holds png/jpg/bmp/tif images")
        for path in paths:
            try:
                pixels = read_image(path)
            except InputError:
                raise
            except Exception as exc:  # a decoder's own error: name the file
                raise InputError(f"{path}: unreadable image ({exc}); remove or replace it") from exc
            rel = Path(path).relative_to(folder) if Path(path).is_relative_to(folder) else Path(path).name
            sources.append(SourceImage(f"{folder.name}/{rel}", sha256_file(path), _as_rgb_uint8(pixels, str(path))))
    return sources


def _as_rgb_uint8(pixels: np.ndarray, what: str) -> np.ndarray:
    from ndr_edge.frames import check_frame, to_float, to_uint8

    check_frame(pixels, what)
    return pixels if pixels.dtype == np.uint8 else to_uint8(to_float(pixels))


def _random_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` crop (images smaller than that are first enlarged), randomly flipped."""
    h, w = pixels.shape[:2]
    if min(h, w) < size:
        from PIL import Image

        scale = size / min(h, w)
        nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
        pixels = np.asarray(Image.fromarray(pixels).resize((nw, nh), Image.Resampling.BICUBIC))
        h, w = nh, nw
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    crop = pixels[top : top + size, left : left + size]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def make_sample(source: SourceImage, label: str, crop: int, rng: np.random.Generator) -> np.ndarray:
    """One uint8 RGB crop of ``source`` carrying ``label`` (``clean``/``real`` crops are left as they are)."""
    pixels = _random_crop(source.pixels, crop, rng)
    if label in (CLEAN, REAL):
        return pixels
    from ndr_edge.degradations import degrade
    from ndr_edge.frames import to_uint8

    degraded = degrade(pixels.astype(np.float32) / 255.0, label, rng)
    if degraded.shape != pixels.shape:
        raise InputError(f"degradation {label!r} changed the crop size {pixels.shape} -> {degraded.shape}")
    return to_uint8(degraded)


def sample_plan(recipe: CalibrationRecipe, sources: int) -> tuple[list[str], list[int]]:
    """The label and the source index of every sample, interleaved so that any prefix of the set
    already mixes the degradations."""
    labels = [name for name, n in recipe.counts().items() for _ in range(n)]
    rng = np.random.default_rng([recipe.seed, 0x5EED])
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]
    picks = rng.integers(0, sources, size=len(labels))
    return labels, [int(i) for i in picks]


def build_set(
    folders: Sequence[str | os.PathLike[str]] | None,
    recipe: CalibrationRecipe,
    out_dir: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> CalibrationSet:
    """Build a calibration set from ``folders`` (None: the built-in demo training images) into ``out_dir``.

    With ``recipe.is_real`` (``CalibrationRecipe.real()``) the folders hold real degraded frames
    and their crops are stored as they are, labelled ``real``.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise InputError(f"{out}: already exists; pass another output folder or overwrite=True (--overwrite)")
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; pass another output folder")
    if recipe.is_real and not folders:
        raise InputError("a set of real degraded frames needs the folders that hold them")
    sources = load_sources(folders)
    labels, picks = sample_plan(recipe, len(sources))

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".building", dir=out.parent))
    try:
        _chmod_default(tmp, 0o777)
        shards = _write_shards(tmp, sources, recipe, labels, picks, progress)
        manifest = {
            "format": SET_FORMAT,
            "schema": SET_SCHEMA,
            "recipe": recipe.to_dict(),
            "kind": "real" if recipe.is_real else "synthetic",
            "layout": "NHWC",
            "dtype": "uint8",
            "channel_order": "RGB",
            "value_range": [0, 255],
            "crop": [recipe.crop, recipe.crop],
            "count": len(labels),
            "label_counts": {name: n for name, n in recipe.counts().items() if n},
            "sources": [{"name": s.name, "sha256": s.sha256} for s in sources],
            "shards": shards,
            "labels": labels,
            "source_index": picks,
        }
        atomic_write_json(tmp / MANIFEST_NAME, manifest)
        _chmod_default(tmp / MANIFEST_NAME, 0o666)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return CalibrationSet.open(out)


def _write_shards(
    folder: Path,
    sources: list[SourceImage],
    recipe: CalibrationRecipe,
    labels: list[str],
    picks: list[int],
    progress: bool,
) -> list[dict[str, object]]:
    shards: list[dict[str, object]] = []
    buffer: list[np.ndarray] = []
    bar = tqdm(total=len(labels), desc="calibration set", unit="crop", disable=not progress, leave=False)
    with bar:
        for index, (label, pick) in enumerate(zip(labels, picks, strict=True)):
            rng = np.random.default_rng([recipe.seed, index])
            buffer.append(make_sample(sources[pick], label, recipe.crop, rng))
            bar.update()
            if len(buffer) == recipe.shard_size or index == len(labels) - 1:
                name = shard_name(len(shards))
                np.save(folder / name, np.stack(buffer), allow_pickle=False)
                shards.append({"file": name, "count": len(buffer), "sha256": sha256_file(folder / name)})
                buffer = []
    return shards


def _chmod_default(path: Path, mode: int) -> None:
    """Give a temporary file or folder the permissions a plain ``open``/``mkdir`` would have."""
    os.chmod(path, default_file_mode(mode))


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    os.replace(out, old / "set")
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / "set", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
