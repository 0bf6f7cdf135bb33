"""Open a calibration set and stream it from disk. Torch-free and ONNX-Runtime-free.

Shards are memory-mapped one at a time (``np.load(mmap_mode="r")``), so a set larger than
memory streams; each shard's SHA-256 is checked against the manifest the first time it
is read, and a corrupt or missing shard is an ``InputError`` naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ndr_edge.artifact import sha256_file
from ndr_edge.calibration.recipe import CalibrationRecipe
from ndr_edge.errors import InputError
from ndr_edge.frames import CHANNEL_ORDERS, check_channel_order

MANIFEST_NAME = "manifest.json"
SET_FORMAT = "ndr-edge-calibration-set"
SET_SCHEMA = 1


def shard_name(index: int) -> str:
    return f"shard-{index:05d}.npy"


@dataclass(frozen=True)
class Shard:
    file: str
    count: int
    sha256: str
    start: int  # index of its first sample in the set


class CalibrationSet:
    """A calibration set on disk: ``manifest.json`` plus uint8 RGB NHWC shards."""

    def __init__(self, path: Path, manifest: dict[str, Any], verify: bool = True) -> None:
        self.path = path
        self.manifest = manifest
        self.verify = verify
        self.recipe = CalibrationRecipe.from_dict(manifest["recipe"])
        self.labels: list[str] = list(manifest["labels"])
        self.shards: list[Shard] = []
        start = 0
        for entry in manifest["shards"]:
            self.shards.append(Shard(entry["file"], int(entry["count"]), entry["sha256"], start))
            start += int(entry["count"])
        self._verified: set[int] = set()
        self.shard_loads = 0  # how many times a shard was opened (streaming is visible in tests)

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike[str], verify: bool = True) -> CalibrationSet:
        """Open the set in ``path``; the manifest is checked now, each shard on first read."""
        folder = Path(path)
        manifest_path = folder / MANIFEST_NAME
        if not folder.is_dir():
            raise InputError(f"{folder}: no such calibration set; build one with ndr-calib build -o {folder}")
        if not manifest_path.is_file():
            raise InputError(f"{folder}: no {MANIFEST_NAME}; not a calibration set (build one with ndr-calib build)")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{manifest_path}: unreadable manifest ({exc}); rebuild the set with ndr-calib build") from exc
        _check_manifest(manifest, manifest_path)
        try:
            calib = cls(folder, manifest, verify=verify)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{manifest_path}: malformed manifest ({exc!r}); rebuild the set with ndr-calib build") from exc
        for shard in calib.shards:
            file = folder / shard.file
            if not file.is_file():
                raise InputError(f"{file}: shard listed in the manifest is missing; rebuild the set with ndr-calib build")
        return calib

    # -- what it holds -----------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.manifest["count"])

    @property
    def crop(self) -> tuple[int, int]:
        h, w = self.manifest["crop"]
        return int(h), int(w)

    @property
    def channel_order(self) -> str:
        return str(self.manifest["channel_order"])

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(self.manifest["label_counts"])

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "synthetic"))

    def fingerprint(self) -> str:
        """SHA-256 of the manifest: identifies the set in an export manifest."""
        return sha256_file(self.path / MANIFEST_NAME)

    def summary(self) -> dict[str, Any]:
        h, w = self.crop
        return {
            "path": str(self.path),
            "kind": self.kind,
            "count": len(self),
            "crop": f"{h}x{w}",
            "recipe": self.recipe.to_string(),
            "seed": self.recipe.seed,
            "label_counts": self.label_counts,
            "sources": len(self.manifest["sources"]),
            "manifest_sha256": self.fingerprint(),
        }

    def describe(self) -> str:
        s = self.summary()
        counts = ", ".join(f"{k}={v}" for k, v in s["label_counts"].items())
        return (
            f"{s['path']}: {s['count']} {s['kind']} crops of {s['crop']} from {s['sources']} images, "
            f"seed {s['seed']} ({counts})"
        )

    # -- reading -----------------------------------------------------------------------
    def load_shard(self, index: int) -> np.ndarray:
        """Memory-map shard ``index`` (uint8 RGB NHWC), verifying its hash the first time."""
        shard = self.shards[index]
        file = self.path / shard.file
        if not file.is_file():
            raise InputError(f"{file}: shard is missing; rebuild the set with ndr-calib build")
        if self.verify and index not in self._verified:
            if sha256_file(file) != shard.sha256:
                raise InputError(
                    f"{file}: shard is corrupt (its SHA-256 does not match the manifest); rebuild the set "
                    "with ndr-calib build"
                )
            self._verified.add(index)
        try:
            data = np.load(file, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: shard is corrupt ({exc}); rebuild the set with ndr-calib build") from exc
        h, w = self.crop
        if data.shape != (shard.count, h, w, 3) or data.dtype != np.uint8:
            raise InputError(
                f"{file}: shard holds {data.dtype} {data.shape}, the manifest says uint8 {(shard.count, h, w, 3)}; "
                "rebuild the set with ndr-calib build"
            )
        self.shard_loads += 1
        return data

    def verify_all(self) -> None:
        """Check every shard now (hash, shape, dtype) instead of on first read."""
        for index in range(len(self.shards)):
            self.load_shard(index)

    def iter_samples(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(label, uint8 RGB HxWx3)`` for samples ``start``..``stop``, one shard mapped at a time."""
        stop = len(self) if stop is None else min(stop, len(self))
        for index, shard in enumerate(self.shards):
            lo, hi = max(start, shard.start), min(stop, shard.start + shard.count)
            if lo >= hi:
                continue
            data = self.load_shard(index)
            for i in range(lo, hi):
                yield self.labels[i], np.asarray(data[i - shard.start])
            del data  # drop the mapping before the next shard is opened

    def iter_batches(
        self,
        batch_size: int = 1,
        channel_order: str = "BGR",
        start: int = 0,
        stop: int | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield float32 NCHW batches on [0, 1] in ``channel_order`` (the model's), streaming."""
        check_channel_order(channel_order)
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        batch: list[np.ndarray] = []
        for _, pixels in self.iter_samples(start, stop):
            batch.append(pixels)
            if len(batch) == batch_size:
                yield to_model_batch(batch, self.channel_order, channel_order)
                batch = []
        if batch:
            yield to_model_batch(batch, self.channel_order, channel_order)

    def check_input_size(
        self,
        model_shape: Sequence[int | str | None] | None = None,
        *,
        multiple: int = 8,
        profile: tuple[Sequence[int], Sequence[int]] | None = None,
        what: str = "model",
    ) -> None:
        """Raise ``InputError`` unless the set's crops fit the model.

        ``model_shape`` is the ONNX input shape (NCHW; ``None``/strings for dynamic axes),
        ``multiple`` the model's size multiple, ``profile`` an optional (min HxW, max HxW)
        range such as a TensorRT optimisation profile.
        """
        h, w = self.crop
        built = f"set {self.path} was built for {h}x{w}"
        if h % multiple or w % multiple:
            raise InputError(f"{built}, not a multiple of {multiple}; rebuild it with --crop a multiple of {multiple}")
        if model_shape is not None and len(model_shape) == 4:
            mh, mw = model_shape[2], model_shape[3]
            fixed_h, fixed_w = isinstance(mh, int) and mh > 0, isinstance(mw, int) and mw > 0
            if (fixed_h and mh != h) or (fixed_w and mw != w):
                raise InputError(f"{built}, {what} exported for {mh}x{mw}; rebuild the set with --crop {mh}")
        if profile is not None:
            (min_h, min_w), (max_h, max_w) = profile
            if not (min_h <= h <= max_h and min_w <= w <= max_w):
                raise InputError(
                    f"{built}, {what} profile allows {min_h}x{min_w} to {max_h}x{max_w}; rebuild the set with a "
                    "--crop inside that range"
                )


def to_model_batch(frames: Sequence[np.ndarray], source_order: str, model_order: str) -> np.ndarray:
    """uint8 HxWx3 crops -> float32 NCHW on [0, 1] in the model's channel order."""
    stacked = np.stack(frames).astype(np.float32) * np.float32(1.0 / 255.0)
    if source_order != model_order:
        stacked = stacked[..., ::-1]
    return np.ascontiguousarray(stacked.transpose(0, 3, 1, 2))


def _check_manifest(manifest: Any, path: Path) -> None:
    fix = "rebuild the set with ndr-calib build"
    if not isinstance(manifest, dict) or manifest.get("format") != SET_FORMAT:
        raise InputError(f"{path}: not an ndr-edge calibration set manifest; {fix}")
    if manifest.get("schema") != SET_SCHEMA:
        raise InputError(f"{path}: calibration set schema {manifest.get('schema')!r}, expected {SET_SCHEMA}; {fix}")
    required = ("recipe", "crop", "count", "labels", "shards", "sources", "label_counts", "channel_order")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise InputError(f"{path}: manifest lacks {', '.join(missing)}; {fix}")
    if manifest.get("layout") != "NHWC" or manifest.get("dtype") != "uint8":
        raise InputError(f"{path}: unsupported layout/dtype {manifest.get('layout')}/{manifest.get('dtype')}; {fix}")
    count = manifest["count"]
    if len(manifest["labels"]) != count or sum(int(s["count"]) for s in manifest["shards"]) != count:
        raise InputError(f"{path}: manifest counts disagree (labels, shards, count={count}); {fix}")
    if manifest["channel_order"] not in CHANNEL_ORDERS:
        raise InputError(f"{path}: unknown channel order {manifest['channel_order']!r}; {fix}")
