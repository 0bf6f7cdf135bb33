"""The one entry point: open an export folder, an ONNX file or a TensorRT engine and restore
frames with whichever backend fits, with the same call and the same results.

>>> from ndr_edge.runtime import Restorer
>>> with Restorer.open("export/") as restorer:                    # manifest, .onnx or .engine
...     clean = restorer.restore(frame, channel_order="BGR")        # uint8 HxWx3 in, uint8 out

Frames are numpy ``uint8`` / ``uint16`` / float (on [0, 1]) HxWx3 in a channel order the
caller states (``"RGB"`` or ``"BGR"``); the output has the input's dtype, shape and channel
order. The restorer converts to the model's channel order and value range (from the
artifact's metadata), reflect-pads to the model's size multiple, and crops back. Frames
larger than a tile are restored tile by tile (``tiling``; see :mod:`.tiling`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ndr_edge.artifact import MANIFEST_NAME, ArtifactMeta, Manifest
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.variants import BACKEND_CHOICES, BY_NAME, ENGINE_SUFFIXES, ONNX_SUFFIXES, PRECISIONS
from ndr_edge.frames import (
    CHANNEL_ORDERS,
    batch_to_frames,
    check_channel_order,
    check_finite,
    check_frame,
    frames_to_batch,
    pad_to_multiple,
)
from ndr_edge.runtime.backend import Backend, BackendClosedError, PendingBatch
from ndr_edge.runtime.backend_choice import auto_cpu_backend
from ndr_edge.runtime.backends import open_backend, settings_for
from ndr_edge.runtime.closing import Closing
from ndr_edge.runtime.prepared import Prepared
from ndr_edge.runtime.stream import StreamRestorer
from ndr_edge.runtime.tensorrt_env import require_tensorrt, tensorrt_unavailable_reason
from ndr_edge.runtime.tiling import TileConfig, restore_tiled

if TYPE_CHECKING:  # imported where used: engine_cache -> export.profiles -> runtime.backend
    from ndr_edge.runtime.engine_cache import EngineCacheConfig


# -- choosing the artifact and the backend -------------------------------------------------
@dataclass(frozen=True)
class Selection:
    """Which file to load with which backend, and why."""

    path: Path
    backend: str  # "onnxruntime" | "openvino" | "tensorrt"
    precision: str | None
    expected_sha256: str | None = None
    reason: str = ""  # why this backend, where "auto" chose it


def _check_choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
    return value


def select_artifact(path: str | Path, backend: str = "auto", precision: str = "fp32", device: int = 0,
                    engine_cache: EngineCacheConfig | None = None) -> Selection:
    """Resolve a manifest folder / manifest.json / .onnx / .engine to one file and a backend.

    From a manifest: the entry of ``precision``; an engine when ``backend`` is ``tensorrt``,
    or ``auto`` and TensorRT is usable here; the ONNX file otherwise. With ``backend``
    ``tensorrt`` and no engine in the manifest (an export folder copied from a workstation),
    or an ``.onnx`` file, the engine is built here on first use and cached
    (:mod:`ndr_edge.runtime.engine_cache`; ``engine_cache`` says where and with which profile)."""
    _check_choice(backend, BACKEND_CHOICES, "backend")
    _check_choice(precision, PRECISIONS, "precision")
    if backend == "tensorrt":  # asked for explicitly: say first whether it can run here at all
        require_tensorrt(device)
    path = Path(path)
    if path.is_dir() or path.name == MANIFEST_NAME:
        return _select_from_manifest(path, backend, precision, device, engine_cache)
    suffix = path.suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        if backend in ("onnxruntime", "openvino"):
            raise InputError(f"{path}: a TensorRT engine runs only on the tensorrt backend; pass the .onnx file instead")
        return Selection(path, "tensorrt", None)
    if suffix in ONNX_SUFFIXES:
        if backend == "tensorrt":
            from ndr_edge.runtime.engine_cache import EngineCacheConfig, ensure_engine, onnx_meta

            meta = onnx_meta(path)
            built = ensure_engine(path, meta.precision, meta, engine_cache or EngineCacheConfig(), device=device)
            return Selection(built.engine, "tensorrt", meta.precision)
        return Selection(path, "openvino" if backend == "openvino" else "onnxruntime", None)
    if not path.exists():
        raise ArtifactError(f"{path}: model not found; pass an export folder, an .onnx file or an .engine file")
    raise ArtifactError(f"{path}: unknown model type {suffix or '(no suffix)'!r}; pass an export folder, .onnx or .engine")


def _select_from_manifest(path: Path, backend: str, precision: str, device: int,
                          engine_cache: EngineCacheConfig | None = None) -> Selection:
    directory = path if path.is_dir() else path.parent
    manifest = Manifest.read(path)
    entries = [e for e in manifest.artifacts if e.precision == precision]
    if not entries:
        have = sorted({f"{e.precision} ({e.format})" for e in manifest.artifacts}) or ["nothing"]
        raise ArtifactError(
            f"{directory}: no {precision} artifact in the manifest (it lists {', '.join(have)}); "
            f"choose --precision from those or re-run ndr-export with {precision}"
        )
    engines = [e for e in entries if e.format == "engine"]
    onnx = [e for e in entries if e.format == "onnx"]
    if backend == "tensorrt":
        if not engines:  # copied from the machine that exported it: build the engine here, once
            from ndr_edge.runtime.engine_cache import EngineCacheConfig, engine_for_manifest

            if precision == "fp32":
                raise ArtifactError(f"{directory}: TensorRT engines are built from the FP16 or INT8 graph; use "
                                    "--precision fp16 or int8 (or --backend onnxruntime for FP32)")
            built = engine_for_manifest(directory, precision, engine_cache or EngineCacheConfig(), device=device)
            return Selection(built.engine, "tensorrt", precision)
        chosen, kind = engines[0], "tensorrt"
    elif backend == "auto" and engines and tensorrt_unavailable_reason(device) is None:
        chosen, kind = engines[0], "tensorrt"
    elif onnx:
        kind = "openvino" if backend == "openvino" else "onnxruntime"
        # of several graphs of one precision (INT8 for CPUs, INT8 for TensorRT), the one meant for it
        chosen = next((e for e in onnx if e.name not in BY_NAME or BY_NAME[e.name].meant_for(kind)), onnx[0])
        if backend == "auto":  # no GPU backend here: OpenVINO where the export's report measured it faster
            choice = auto_cpu_backend(directory, chosen)
            return Selection(manifest.resolve(directory, chosen), choice.backend, precision, chosen.sha256 or None,
                             choice.reason)
    else:
        raise ArtifactError(
            f"{directory}: the manifest has a {precision} engine but no ONNX file, and TensorRT is not usable here "
            f"({tensorrt_unavailable_reason(device)})"
        )
    return Selection(manifest.resolve(directory, chosen), kind, precision, chosen.sha256 or None)


# -- frames <-> model batches --------------------------------------------------------------
def from_unit(frame: np.ndarray, dtype: np.dtype[Any], in_place: bool = False) -> np.ndarray:
    """float32 on [0, 1] -> the caller's dtype (clipped; integers rounded). ``in_place``
    reuses ``frame`` (float32) as scratch instead of allocating temporaries."""
    work = frame if in_place and frame.dtype == np.float32 else frame.astype(np.float32)
    np.clip(work, 0.0, 1.0, out=work)
    if dtype in (np.uint8, np.uint16):
        work *= 255.0 if dtype == np.uint8 else 65535.0
        work += 0.5
        return work.astype(dtype)
    return work.astype(dtype, copy=False)


class Restorer(Closing):
    """Frames in, restored frames out, over any :class:`Backend`."""

    def __init__(self, backend: Backend, tiling: TileConfig | None = None, auto_tile: bool = True) -> None:
        self.backend = backend
        self.auto_tile = auto_tile
        self.meta: ArtifactMeta = backend.meta
        if self.meta.channel_order not in CHANNEL_ORDERS:
            raise ArtifactError(f"{backend.path}: metadata channel order {self.meta.channel_order!r} is not RGB/BGR")
        low, high = self.meta.value_range
        if not high > low:
            raise ArtifactError(f"{backend.path}: metadata value range {self.meta.value_range} is empty")
        self.tiling = self.check_tiling(tiling or self._default_tiling())

    # -- construction -----------------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | Path,
        backend: str = "auto",
        precision: str = "fp32",
        providers: list[str] | tuple[str, ...] | None = None,
        tiling: TileConfig | None = None,
        auto_tile: bool = True,
        device: int = 0,
        threads: int | None = None,
        ov_device: str = "CPU",
        ov_hint: str | None = None,
        engine_cache: EngineCacheConfig | None = None,
    ) -> Restorer:
        """Open an export folder (``manifest.json``), an ``.onnx`` file or an ``.engine``.

        ``backend``: ``auto`` (TensorRT engine when TensorRT and a GPU are usable and the
        manifest has one, else ONNX Runtime), ``onnxruntime``, ``tensorrt`` or ``openvino``
        (``ov_device``: CPU / GPU / NPU; ``ov_hint``: f32 / bf16 / f16 inference precision).
        ``precision`` picks the manifest entry (fp32 / fp16 / int8). ``providers``: ONNX
        Runtime execution providers (``cpu``, ``cuda``, ``tensorrt`` or full names;
        default CUDA when installed, then CPU). ``tiling``: tile size, overlap and batch
        (default: 512 px, 32 px overlap, or the engine profile's largest square);
        ``auto_tile=False``: ``restore(frame)`` never tiles unless asked per call.
        ``engine_cache``: where engines built here on first use are cached, with which
        optimisation profile and workspace (default: ``<export>/engines``, the default profile)."""
        selection = select_artifact(path, backend=backend, precision=precision, device=device,
                                    engine_cache=engine_cache)
        if backend == "auto" and providers and selection.backend == "openvino":  # ONNX Runtime providers asked for
            selection = replace(selection, backend="onnxruntime", reason="ONNX Runtime providers were given")
        settings = settings_for(selection.backend, providers, threads, device, ov_device, ov_hint)
        engine = open_backend(selection.path, selection.backend, settings, selection.expected_sha256)
        try:
            return cls(engine, tiling=tiling, auto_tile=auto_tile)
        except BaseException:
            engine.close()
            raise

    def _default_tiling(self) -> TileConfig:
        limits = self.backend.input_limits()
        if limits is None:
            return TileConfig()
        multiple = self.meta.size_multiple
        side = min(TileConfig().tile, limits.max[2], limits.max[3]) // multiple * multiple
        overlap = min(TileConfig().overlap, side // 4 // multiple * multiple)
        return TileConfig(tile=max(side, multiple), overlap=overlap, batch=1)

    def check_tiling(self, tiling: TileConfig) -> TileConfig:
        """Validate a tiling against the model's size multiple and the engine's profile."""
        tiling.validate(self.meta.size_multiple)
        limits = self.backend.input_limits()
        if limits is None:
            return tiling
        shape = (tiling.batch, 3, tiling.tile, tiling.tile)
        if any(s > hi for s, hi in zip(shape, limits.max)):
            raise InputError(
                f"{self.backend.path}: tiles of {tiling.batch}x3x{tiling.tile}x{tiling.tile} do not fit the engine's "
                f"profile ({limits.describe()}); choose a smaller --tile/--tile-batch or rebuild the engine"
            )
        return tiling

    # -- frames -----------------------------------------------------------------------
    def prepare(self, frame: np.ndarray, channel_order: str = "RGB") -> Prepared:
        """Check a frame and turn it into a padded model batch (float32 1x3xHpxWp)."""
        check_frame(frame)
        check_channel_order(channel_order, "channel_order")
        check_finite(frame)
        batch = self._to_batch([frame], channel_order)
        return Prepared(batch, frame.shape[0], frame.shape[1], frame.dtype, channel_order)

    def _to_batch(self, frames: list[np.ndarray], channel_order: str) -> np.ndarray:
        """Same-sized HxWx3 frames -> padded float32 NCHW in the model's order and value range."""
        batch = frames_to_batch(frames, channel_order, self.meta.channel_order)
        low, high = self.meta.value_range
        if (low, high) != (0.0, 1.0):
            batch *= np.float32(high - low)
            batch += np.float32(low)
        padded, _ = pad_to_multiple(batch, self.meta.size_multiple)
        return padded

    def _to_unit(self, output: np.ndarray, height: int, width: int, channel_order: str) -> list[np.ndarray]:
        """Model output NCHW -> float32 HxWx3 on [0, 1] (not clipped) in ``channel_order``, cropped."""
        cropped = output[:, :, :height, :width]
        low, high = self.meta.value_range
        if (low, high) != (0.0, 1.0):
            cropped = (cropped - np.float32(low)) / np.float32(high - low)
        return batch_to_frames(cropped, self.meta.channel_order, channel_order)

    def finish(self, prepared: Prepared, output: np.ndarray) -> np.ndarray:
        """Model output for a prepared frame -> a frame like the input (dtype, size, order)."""
        (unit,) = self._to_unit(output, prepared.height, prepared.width, prepared.channel_order)
        return from_unit(unit, prepared.dtype)

    def submit(self, prepared: Prepared) -> PendingBatch:
        """Start a prepared (whole) frame on the backend; overlapped on TensorRT."""
        return self.backend.submit(prepared.batch)

    def resolve_tiling(self, frame_shape: tuple[int, ...], tile: TileConfig | bool | None) -> TileConfig | None:
        """The tiling to use for a frame: ``None`` (the restorer's config, only for frames
        larger than a tile, unless ``auto_tile`` is off), ``False`` (whole frame), ``True`` or
        a TileConfig (always)."""
        if tile is False or (tile is None and not self.auto_tile):
            return None
        if tile is None or tile is True:
            config = self.tiling
            return config if (tile is True or config.needed(frame_shape[0], frame_shape[1])) else None
        return self.check_tiling(tile)

    def restore(self, frame: np.ndarray, channel_order: str = "RGB", tile: TileConfig | bool | None = None) -> np.ndarray:
        """Restore one HxWx3 frame; the result has the input's dtype, shape and channel order.

        ``tile``: ``None`` tiles frames larger than the restorer's tile, ``False`` never
        tiles, ``True`` always tiles, a :class:`TileConfig` tiles with that config."""
        self._check_open()
        check_frame(frame)
        check_channel_order(channel_order, "channel_order")
        config = self.resolve_tiling(frame.shape, tile)
        if config is None:
            prepared = self.prepare(frame, channel_order)
            return self.finish(prepared, self.backend.infer(prepared.batch))
        check_finite(frame)
        return restore_tiled(frame, lambda tiles: self._run_tiles(tiles, channel_order), config,
                             lambda rows: from_unit(rows, frame.dtype, in_place=True))

    def _run_tiles(self, tiles: list[np.ndarray], channel_order: str) -> list[np.ndarray]:
        height, width = tiles[0].shape[:2]
        batch = self._to_batch(tiles, channel_order)
        return self._to_unit(self.backend.infer(batch), height, width, channel_order)

    def stream(self, channel_order: str = "RGB", tile: TileConfig | bool | None = None, depth: int = 2) -> StreamRestorer:
        """A :class:`~.stream.StreamRestorer` over this restorer (push/pull or an iterator)."""
        return StreamRestorer(self, channel_order=channel_order, tile=tile, depth=depth)

    def warmup(self, height: int = 64, width: int = 64, runs: int = 1) -> float:
        """Run a few dummy frames (first runs allocate and pick kernels); returns seconds of the last."""
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        elapsed = 0.0
        for _ in range(runs):
            start = time.perf_counter()
            self.restore(frame, tile=False)
            elapsed = time.perf_counter() - start
        return elapsed

    # -- information and lifetime -------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "describe": self.backend.describe(),
            "path": str(self.backend.path),
            "precision": self.meta.precision,
            "preset": self.meta.preset,
            "model_channel_order": self.meta.channel_order,
            "value_range": list(self.meta.value_range),
            "size_multiple": self.meta.size_multiple,
            "tiling": {"tile": self.tiling.tile, "overlap": self.tiling.overlap, "batch": self.tiling.batch},
        }

    def __repr__(self) -> str:
        return f"Restorer({self.backend.describe()}, tiling={json.dumps(self.info()['tiling'])})"

    def with_tiling(self, **changes: int) -> Restorer:
        """The same backend with another default tiling (e.g. ``with_tiling(tile=256)``)."""
        return Restorer(self.backend, tiling=replace(self.tiling, **changes), auto_tile=self.auto_tile)

    def _check_open(self) -> None:
        if self.backend.closed:
            raise BackendClosedError(f"{self.backend.describe()}: restorer is closed; open the model again")

    @property
    def closed(self) -> bool:
        return self.backend.closed

    def close(self) -> None:
        self.backend.close()
