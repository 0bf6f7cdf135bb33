"""Calibration methods compared by what they do to the restored image: PSNR lost against
FP32 per degradation on held-out images, and CPU latency on the same input in the same run."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ndr_edge.calibration.evaluate import compare_latency, default_eval_set, evaluate_onnx
from ndr_edge.calibration.quantize import DEFAULT_OP_TYPES, METHODS, Quantizer, QuantSettings
from ndr_edge.calibration.reader import CalibrationSet

# an extra quantiser (ModelOpt): (fp32 onnx, calibration set, out path, workdir, channel order, progress)
# -> calibration seconds
ExtraQuantizer = Callable[[Path, CalibrationSet, Path, Path, str, bool], float]


@dataclass
class MethodScore:
    method: str
    backend: str
    loss_db: dict[str, float]
    psnr_int8: dict[str, float]
    worst_db: float
    mean_db: float
    calibration_s: float
    latency_ms: float | None = None
    latency_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MethodComparison:
    psnr_fp32: dict[str, float]
    scores: list[MethodScore]
    latency: dict[str, Any]
    settings: dict[str, Any]

    @property
    def best(self) -> MethodScore:
        """Smallest worst-degradation loss; mean loss breaks ties."""
        return min(self.scores, key=lambda s: (round(s.worst_db, 3), s.mean_db))

    def to_dict(self) -> dict[str, Any]:
        return {
            "psnr_fp32": self.psnr_fp32,
            "scores": [s.to_dict() for s in self.scores],
            "best": self.best.method,
            "latency": self.latency,
            "settings": self.settings,
        }

    def table(self, markdown: bool = False) -> str:
        names = list(self.psnr_fp32)
        head = ["method", *[f"{n} dB" for n in names], "worst dB", "CPU ms", "vs FP32"]
        rows = [["FP32 (PSNR)", *[f"{self.psnr_fp32[n]:.2f}" for n in names], "", _ms(self.latency, "fp32"), "1.00x"]]
        for s in self.scores:
            rows.append([
                s.method, *[f"{s.loss_db[n]:+.3f}" for n in names], f"{s.worst_db:+.3f}",
                f"{s.latency_ms:.1f}" if s.latency_ms is not None else "-",
                f"{s.latency_ratio:.2f}x" if s.latency_ratio is not None else "-",
            ])
        return format_table(head, rows, markdown)


def _ms(latency: dict[str, Any], name: str) -> str:
    model = latency.get("models", {}).get(name)
    return f"{model['median_ms']:.1f}" if model else "-"


def format_table(head: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=False)]
    fmt = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([fmt(head), *(fmt(r) for r in rows)])


def compare_methods(
    fp32_onnx: str | os.PathLike[str],
    calib: CalibrationSet,
    *,
    methods: Sequence[str] = METHODS,
    eval_set: Sequence[Any] | None = None,
    activations: str = "int8",
    op_types: Sequence[str] | None = DEFAULT_OP_TYPES,
    float_depthwise: bool = True,
    max_samples: int | None = None,
    latency_shape: tuple[int, int, int, int] | None = (1, 3, 256, 256),
    latency_repeats: int = 10,
    threads: int | None = None,
    extra_backends: dict[str, ExtraQuantizer] | None = None,
    keep_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> MethodComparison:
    """Quantise with every method (no layer search: every ``op_types`` layer in INT8), score each
    by restored PSNR per degradation against FP32 on ``eval_set`` (default: held-out demo
    images), time all of them on the CPU."""
    samples = list(eval_set) if eval_set is not None else default_eval_set()
    with tempfile.TemporaryDirectory(prefix="ndr-calib-compare-") as tmp:
        work = Path(keep_dir) if keep_dir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        reference = evaluate_onnx(fp32_onnx, samples, threads=threads)
        scores: list[MethodScore] = []
        models: dict[str, str | os.PathLike[str]] = {"fp32": fp32_onnx}
        order = None
        for method in methods:
            settings = QuantSettings(method=method, activations=activations,
                                     op_types=tuple(op_types) if op_types else None,
                                     float_depthwise=float_depthwise, max_samples=max_samples)
            quantizer = Quantizer(fp32_onnx, calib, settings, work / f"work-{method}", progress=progress,
                                  cache_dir=cache_dir)
            order = quantizer.channel_order
            out = quantizer.write(work / f"int8-{method}.onnx")
            scores.append(_score(method, "onnxruntime", out, samples, reference, quantizer.calibration_s or 0.0,
                                 threads, order))
            models[method] = out
        for name, backend in (extra_backends or {}).items():
            out = work / f"int8-{name}.onnx"
            seconds = backend(Path(fp32_onnx), calib, out, work / f"work-{name}", order or "BGR", progress)
            scores.append(_score(name, name, out, samples, reference, seconds, threads, order))
            models[name] = out
        latency: dict[str, Any] = {}
        if latency_shape is not None:
            latency = compare_latency(models, shape=latency_shape, threads=threads, repeats=latency_repeats,
                                      progress=progress)
            for score in scores:
                score.latency_ms = latency["models"][score.method]["median_ms"]
                score.latency_ratio = latency["ratio"][score.method]
    return MethodComparison(
        psnr_fp32={k: round(v, 4) for k, v in reference.psnr.items()},
        scores=scores,
        latency=latency,
        settings={"activations": activations, "op_types": list(op_types) if op_types else "all",
                  "float_depthwise": float_depthwise,
                  "calibration": calib.summary(), "eval_images": reference.images},
    )


def _score(
    method: str, backend: str, path: Path, samples: Sequence[Any], reference: Any, seconds: float,
    threads: int | None, channel_order: str | None,
) -> MethodScore:
    result = evaluate_onnx(path, samples, threads=threads, channel_order=channel_order)
    loss = result.loss_against(reference)
    return MethodScore(
        method=method, backend=backend, loss_db=loss,
        psnr_int8={k: round(v, 4) for k, v in result.psnr.items()},
        worst_db=max(loss.values()), mean_db=round(sum(loss.values()) / len(loss), 4),
        calibration_s=round(seconds, 2),
    )
