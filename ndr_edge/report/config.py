"""What a report measures and how: :class:`ReportConfig`. Torch-free."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.degradations import EVAL_NAMES, parse_names
from ndr_edge.errors import InputError

#: ``--layout``: ``clean`` synthesises the degradations on clean images; the others read real pairs.
LAYOUTS: tuple[str, ...] = ("clean", "auto", "rain100l", "sots", "pairs")


def parse_size(text: str) -> tuple[int, int]:
    """``"256x256"`` (HxW) or ``"256"`` (square) -> (256, 256)."""
    parts = text.strip().lower().split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise InputError(f"size {text!r}: write it as HxW (e.g. 256x256 or 720x1280) or one number for a square")
    return int(parts[0]), int(parts[1])


def parse_batches(text: str) -> tuple[int, ...]:
    """``"1,4"`` -> (1, 4)."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items or not all(s.isdigit() and int(s) > 0 for s in items):
        raise InputError(f"batch sizes {text!r}: give positive integers separated by commas, e.g. 1,4")
    return tuple(dict.fromkeys(int(s) for s in items))


@dataclass
class ReportConfig:
    """Everything ``ndr-report`` can be told. Defaults keep a CPU run to minutes with the
    tiny presets: 128 px crops of the two held-out demo photos, every standard degradation,
    latency at 256x256 with batch 1 and 4."""

    degradations: tuple[str, ...] = EVAL_NAMES
    data: Path | None = None  # None: the held-out demo photos
    layout: str = "clean"  # clean: synthesise degradations on the folder's images; else real pairs
    images: int | None = None  # use only the first N images (None: all)
    seed: int = 0
    max_side: int | None = 128  # centre-crop evaluation images (None: full size)
    sizes: tuple[tuple[int, int], ...] = ((256, 256),)  # latency input sizes (H, W)
    batches: tuple[int, ...] = (1, 4)
    warmup: int = 2
    repeats: int = 10
    budget_ms: float | None = None  # latency budget for the "best variant" marks (per frame, batch 1)
    stream_fps: float = 30.0  # a camera stream's frame rate: throughput / this = streams per machine
    threads: int | None = None  # intra-op threads for ONNX Runtime and PyTorch (None: their default)
    variants: tuple[str, ...] | None = None  # manifest names to measure (None: all)
    reference: bool = True  # measure the PyTorch FP32 checkpoint as the reference
    out: Path | None = None  # where to write (None: the export folder)
    crop: int = 96  # side of the sample crops in samples.png
    device: int = 0  # CUDA device for TensorRT engines
    worker_timeout_s: float = 1800.0  # a latency run that takes longer is reported as failed
    extra: dict[str, Any] = field(default_factory=dict)  # recorded in report.json as given (e.g. the command)

    def check(self) -> ReportConfig:
        self.degradations = parse_names(list(self.degradations))
        if self.layout not in LAYOUTS:
            raise InputError(f"layout {self.layout!r}: choose one of {', '.join(LAYOUTS)}")
        if self.layout != "clean" and self.data is None:
            raise InputError(f"layout {self.layout!r} reads real pairs: give the folder with --data")
        if self.data is not None and not Path(self.data).is_dir():
            raise InputError(f"{self.data}: evaluation folder not found (or not a folder); check --data")
        if self.images is not None and self.images < 1:
            raise InputError(f"images={self.images}: give a positive number of images, or none for all")
        if self.max_side is not None and self.max_side < 16:
            raise InputError(f"max_side={self.max_side}: crops under 16 px cannot be scored with SSIM; use >= 16")
        if not self.sizes:
            raise InputError("no latency size given; pass at least one --size HxW")
        for h, w in self.sizes:
            if h < 8 or w < 8 or h % 8 or w % 8:
                raise InputError(f"latency size {h}x{w}: H and W must be multiples of 8 (the model's size multiple)")
        if not self.batches or any(b < 1 for b in self.batches):
            raise InputError(f"batch sizes {self.batches}: give one or more positive integers")
        if self.warmup < 0 or self.repeats < 1:
            raise InputError(f"warmup={self.warmup}, repeats={self.repeats}: need warmup >= 0 and repeats >= 1")
        if self.budget_ms is not None and not (self.budget_ms > 0 and math.isfinite(self.budget_ms)):
            raise InputError(f"budget_ms={self.budget_ms}: give a positive number of milliseconds")
        if not (self.stream_fps > 0 and math.isfinite(self.stream_fps)):
            raise InputError(f"stream_fps={self.stream_fps}: give a positive frame rate (e.g. 30)")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads={self.threads}: give a positive number or leave it unset")
        if self.crop < 16:
            raise InputError(f"crop={self.crop}: sample crops need at least 16 px")
        return self

    @property
    def primary(self) -> tuple[tuple[int, int], int]:
        """The latency setting a variant's headline ``latency_ms`` comes from: the first size,
        the smallest batch."""
        return self.sizes[0], min(self.batches)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"] = str(self.data) if self.data is not None else None
        data["out"] = str(self.out) if self.out is not None else None
        data["sizes"] = [f"{h}x{w}" for h, w in self.sizes]
        data["degradations"] = list(self.degradations)
        data["batches"] = list(self.batches)
        data["variants"] = list(self.variants) if self.variants is not None else None
        return data
