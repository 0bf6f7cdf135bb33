"""Per-degradation evaluation with the published protocol: reflect-pad right/bottom to a
multiple of 8, run, crop back; PSNR and SSIM on all channels on [0, 1] after clipping.

The model is any callable on float32 NCHW batches in the model's channel order, so the
same code measures PyTorch, ONNX Runtime and TensorRT (the report uses it for all).

A ``clean`` group (input = reference) has an infinite input PSNR and no gain: its PSNR out
says how much the network changes a frame nothing degraded. Tables print such values as
``-`` and JSON as null.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ndr_edge.artifact import atomic_write_json
from ndr_edge.frames import pad_to_multiple, reorder
from ndr_edge.metrics import psnr, ssim

BatchFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class DegradationScore:
    psnr: float
    ssim: float
    psnr_input: float
    ssim_input: float
    images: int
    seconds: float = 0.0  # restoration time summed over the images (metrics excluded)

    @property
    def gain_db(self) -> float:
        """PSNR out minus PSNR in; NaN for a ``clean`` group (infinite PSNR in)."""
        return self.psnr - self.psnr_input if math.isfinite(self.psnr_input) else math.nan

    @property
    def ms_per_image(self) -> float:
        return 1000.0 * self.seconds / self.images if self.images else 0.0


@dataclass
class EvalResult:
    scores: dict[str, DegradationScore] = field(default_factory=dict)

    def to_dict(self) -> dict[str, dict[str, float | None]]:
        return {name: {k: finite_or_none(v) for k, v in {**asdict(s), "gain_db": s.gain_db}.items()}
                for name, s in self.scores.items()}

    def table(self) -> str:
        lines = [
            f"{'degradation':<12} {'images':>6} {'PSNR in':>8} {'PSNR out':>9} {'gain dB':>8} {'SSIM in':>8} {'SSIM out':>9}"
        ]
        for name, s in self.scores.items():
            lines.append(
                f"{name:<12} {s.images:>6} {fmt_db(s.psnr_input):>8} {fmt_db(s.psnr):>9} {fmt_db(s.gain_db, '+'):>8} "
                f"{s.ssim_input:>8.4f} {s.ssim:>9.4f}"
            )
        return "\n".join(lines)

    def write_json(self, path: str | Path, extra: dict | None = None) -> None:
        atomic_write_json(path, {**(extra or {}), "scores": self.to_dict()})


def finite_or_none(value: float) -> float | None:
    """``value`` for JSON: None where it is infinite or NaN (a ``clean`` group's PSNR in and gain)."""
    return value if not isinstance(value, float) or math.isfinite(value) else None


def fmt_db(value: float, sign: str = "") -> str:
    """A dB value for a table, ``-`` where it is infinite or NaN."""
    return f"{value:{sign}.2f}" if math.isfinite(value) else "-"


def restore_image(run: BatchFn, lq_rgb: np.ndarray, channel_order: str, multiple: int = 8) -> np.ndarray:
    """Restore one float32 HxWx3 RGB image with the protocol's padding; returns RGB HxWx3."""
    batch = np.ascontiguousarray(reorder(lq_rgb, "RGB", channel_order).transpose(2, 0, 1)[None])
    padded, (h, w) = pad_to_multiple(batch, multiple)
    out = run(padded)[0, :, :h, :w].transpose(1, 2, 0)
    return np.ascontiguousarray(reorder(out, channel_order, "RGB"))


def evaluate(
    run: BatchFn, samples: Iterable, channel_order: str = "BGR", progress: bool = True, total: int | None = None
) -> EvalResult:
    """Score ``run`` on samples with ``degradation``, ``lq``, ``gt`` (float32 RGB HxWx3)."""
    return evaluate_images(lambda lq: restore_image(run, lq, channel_order), samples, progress, total)


def evaluate_images(
    restore: Callable[[np.ndarray], np.ndarray], samples: Iterable, progress: bool = True, total: int | None = None,
    desc: str = "evaluate",
) -> EvalResult:
    """Score any image-to-image ``restore`` (float32 HxWx3 RGB in and out), timing it per image."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0, 0.0])
    for sample in tqdm(samples, desc=desc, unit="img", disable=not progress, total=total, leave=False):
        started = time.perf_counter()
        out = restore(sample.lq)
        elapsed = time.perf_counter() - started
        acc = sums[sample.degradation]
        acc[0] += psnr(out, sample.gt)
        acc[1] += ssim(out, sample.gt)
        acc[2] += psnr(sample.lq, sample.gt)
        acc[3] += ssim(sample.lq, sample.gt)
        acc[4] += 1
        acc[5] += elapsed
    result = EvalResult()
    for name, (p, s, pi, si, n, sec) in sums.items():
        result.scores[name] = DegradationScore(psnr=p / n, ssim=s / n, psnr_input=pi / n, ssim_input=si / n,
                                               images=int(n), seconds=sec)
    return result


def torch_runner(model, threads: int | None = None, device=None) -> BatchFn:  # type: ignore[no-untyped-def]
    """Wrap a restoration network (returns image or (image, Ds)) as a numpy batch function;
    ``device``: where the model lives (default: the CPU)."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(torch.from_numpy(batch).to(device or "cpu"))
        out = out[0] if isinstance(out, (tuple, list)) else out
        return out.float().cpu().numpy()

    return run
