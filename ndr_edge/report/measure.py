"""Restoration quality and fidelity of one variant, in this process.

Quality: :func:`ndr_edge.evaluate.evaluate` (the published protocol: reflect-pad to a
multiple of 8, run, crop back, PSNR/SSIM on all channels on [0, 1]) for every variant, so
all are scored the same way on the same samples. Fidelity: each restored image against the
reference's restored image of the same sample (unclipped, whole image): PSNR over all
pixels of all samples, and the largest absolute difference.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ndr_edge.data import EvalSample
from ndr_edge.evaluate import evaluate
from ndr_edge.frames import reorder
from ndr_edge.metrics import psnr_from_mse
from ndr_edge.report.runners import BatchFn, unit_range_run
from ndr_edge.runtime.backend import Backend


@dataclass
class Fidelity:
    """Running squared error and max abs difference against the reference outputs."""

    squared: float = 0.0
    count: int = 0
    max_abs: float = 0.0
    per_degradation: dict[str, list[float]] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0.0]))

    def add(self, degradation: str, output: np.ndarray, reference: np.ndarray) -> None:
        diff = output.astype(np.float64) - reference.astype(np.float64)
        squared = float(np.sum(diff * diff))
        self.squared += squared
        self.count += diff.size
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        acc = self.per_degradation[degradation]
        acc[0] += squared
        acc[1] += diff.size

    @property
    def psnr_db(self) -> float:
        return psnr_from_mse(self.squared / max(self.count, 1))

    def psnr_by_degradation(self) -> dict[str, float]:
        return {name: psnr_from_mse(sq / max(n, 1)) for name, (sq, n) in self.per_degradation.items()}


@dataclass
class QualityResult:
    psnr: dict[str, float]
    ssim: dict[str, float]
    input_psnr: dict[str, float]
    input_ssim: dict[str, float]
    images: dict[str, int]
    outputs: list[np.ndarray] | None  # restored RGB HxWx3 per sample (kept for the reference only)
    kept: dict[int, np.ndarray]  # restored RGB of the samples shown in samples.png
    fidelity: Fidelity | None
    seconds: float


class _Recording:
    """Wraps a batch function for :func:`evaluate`: sees every output (one call per sample,
    in order), crops it back to the sample, compares it with the reference, keeps crops."""

    def __init__(self, run: BatchFn, samples: Sequence[EvalSample], channel_order: str,
                 reference: list[np.ndarray] | None, keep: set[int], collect: bool) -> None:
        self.run, self.samples, self.channel_order = run, samples, channel_order
        self.reference, self.keep = reference, keep
        self.outputs: list[np.ndarray] | None = [] if collect else None
        self.kept: dict[int, np.ndarray] = {}
        self.fidelity = Fidelity() if reference is not None else None
        self.index = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.run(batch)
        index = self.index
        self.index += 1
        sample = self.samples[index]
        h, w = sample.lq.shape[:2]
        rgb = np.ascontiguousarray(reorder(out[0, :, :h, :w].transpose(1, 2, 0), self.channel_order, "RGB"))
        if self.outputs is not None:
            self.outputs.append(rgb)
        if self.fidelity is not None and self.reference is not None:
            self.fidelity.add(sample.degradation, rgb, self.reference[index])
        if index in self.keep:
            self.kept[index] = rgb
        return out


def shown_samples(samples: Sequence[EvalSample]) -> list[int]:
    """Indices of the samples shown side by side: the first image of each degradation."""
    first: dict[str, int] = {}
    for index, sample in enumerate(samples):
        first.setdefault(sample.degradation, index)
    return list(first.values())


def measure_quality(variant: Backend, samples: Sequence[EvalSample], reference: list[np.ndarray] | None,
                    keep_outputs: bool = False, progress: bool = False) -> QualityResult:
    """Score ``variant`` on ``samples``; compare with ``reference`` outputs when given."""
    order = variant.meta.channel_order
    recorder = _Recording(unit_range_run(variant), samples, order, reference, set(shown_samples(samples)),
                          keep_outputs)
    start = time.perf_counter()
    result = evaluate(recorder, samples, order, progress=progress, total=len(samples))
    seconds = time.perf_counter() - start
    scores = result.scores
    return QualityResult(
        psnr={k: s.psnr for k, s in scores.items()}, ssim={k: s.ssim for k, s in scores.items()},
        input_psnr={k: s.psnr_input for k, s in scores.items()}, input_ssim={k: s.ssim_input for k, s in scores.items()},
        images={k: s.images for k, s in scores.items()}, outputs=recorder.outputs, kept=recorder.kept,
        fidelity=recorder.fidelity, seconds=seconds,
    )
