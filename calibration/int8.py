"""``quantize_int8``: the INT8 model ``ndr-export`` ships, with the choices that made it.

Calibrate on a calibration set (the default recipe when none is given), quantise, measure
the restored PSNR per degradation against FP32 on held-out images, keep the most sensitive
layers in float until the loss is within the budget on every degradation, and measure what
that costs on the CPU. Everything chosen and measured goes into :class:`Int8Result`, which
the export writes into its manifest.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.calibration.evaluate import compare_latency, default_eval_set
from ndr_edge.calibration.quantize import DEFAULT_OP_TYPES, METHODS, SETTINGS_REASON, Quantizer, QuantSettings
from ndr_edge.calibration.reader import CalibrationSet
from ndr_edge.calibration.recipe import CalibrationRecipe
from ndr_edge.calibration.sensitivity import SensitivityRunner, worst
from ndr_edge.errors import InputError
from ndr_edge.export.variants import DEFAULT_BUDGET_DB, DEFAULT_INT8_METHOD


@dataclass
class Int8Result:
    """What the INT8 export chose and measured.

    ``excluded``: nodes kept in float, each ``{"node", "op", "reason"}``; ``loss_db``: restored
    PSNR lost against FP32 per degradation on the evaluation set (positive = worse);
    ``latency``: FP32 and INT8 on the CPU on the same input in the same run; ``details``:
    settings, budget, calibration set, PSNRs, the sensitivity table.
    """

    method: str
    excluded: list[dict[str, str]]
    loss_db: dict[str, float]
    latency: dict[str, Any]
    details: dict[str, Any]
    path: Path | None = None
    within_budget: bool | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path else None
        return data

    def manifest_entry(self) -> dict[str, Any]:
        """The part the export manifest records (``ArtifactEntry.details["int8"]``)."""
        return {
            "method": self.method,
            "budget_db": self.details.get("budget_db"),
            "within_budget": self.within_budget,
            "excluded": self.excluded,
            "loss_db": self.loss_db,
            "latency": self.latency,
            "calibration": self.details.get("calibration"),
            "settings": self.details.get("settings"),
            "notes": self.notes,
        }

    def kept_by_settings(self) -> list[dict[str, str]]:
        """The excluded nodes the settings kept in float (``float_depthwise``, ``float_act_matmul``), not the search."""
        return [e for e in self.excluded if e["reason"].startswith(SETTINGS_REASON)]

    def table(self) -> str:
        """Loss per degradation, as a small text table."""
        lines = [f"{'degradation':<12} {'FP32 dB':>8} {'INT8 dB':>8} {'loss dB':>8}"]
        fp32 = self.details.get("psnr_fp32", {})
        int8 = self.details.get("psnr_int8", {})
        for name, loss in self.loss_db.items():
            lines.append(f"{name:<12} {fp32.get(name, float('nan')):>8.2f} {int8.get(name, float('nan')):>8.2f} "
                         f"{loss:>+8.3f}")
        return "\n".join(lines)


def open_or_build_set(
    calibration: str | os.PathLike[str] | CalibrationSet | None, workdir: Path, progress: bool
) -> CalibrationSet:
    """An existing set (a folder built by ``ndr-calib build``), or the default recipe built into ``workdir``."""
    if isinstance(calibration, CalibrationSet):
        return calibration
    if calibration is not None:
        return CalibrationSet.open(calibration)
    from ndr_edge.calibration.build import build_set

    return build_set(None, CalibrationRecipe(), workdir / "calibration-set", progress=progress)


def quantize_int8(
    fp32_onnx: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    calibration: str | os.PathLike[str] | CalibrationSet | None = None,
    method: str = DEFAULT_INT8_METHOD,
    budget_db: float | None = DEFAULT_BUDGET_DB,
    eval_set: Sequence[Any] | None = None,
    progress: bool = True,
    activations: str = "int8",
    per_channel: bool = True,
    op_types: Sequence[str] | None = DEFAULT_OP_TYPES,
    float_depthwise: bool = True,
    float_act_matmul: bool = True,
    float_after_concat: bool = True,
    float_side_inputs: bool = True,
    max_samples: int | None = None,
    max_groups: int = 32,
    min_gain_db: float = 0.005,
    evaluate: bool = True,
    latency_shape: tuple[int, int, int, int] | None = (1, 3, 256, 256),
    latency_repeats: int = 10,
    threads: int | None = None,
    workdir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Int8Result:
    """Quantise ``fp32_onnx`` to a QDQ INT8 model at ``out_path``.

    ``calibration``: a set folder (``ndr-calib build``) or None for the default recipe on the
    built-in demo training images. ``budget_db``: the largest PSNR loss against FP32 allowed on
    any degradation of ``eval_set`` (default: the demo held-out images under every evaluation
    degradation); layers are kept in float until it holds; None quantises everything.
    ``latency_shape`` None skips the latency measurement. ``cache_dir`` keeps calibration ranges
    between runs (keyed by model, set and settings). ``op_types`` None gives every op type
    ONNX Runtime can quantise Q/DQ; ``float_depthwise``, ``float_act_matmul``, ``float_after_concat``,
    ``float_side_inputs`` (see :class:`QuantSettings`).
    """
    if method not in METHODS:
        raise InputError(f"calibration method {method!r} is unknown; choose one of {', '.join(METHODS)}")
    if budget_db is not None and budget_db < 0:
        raise InputError(f"budget must be >= 0 dB, got {budget_db}")
    out = Path(out_path)
    settings = QuantSettings(
        method=method, activations=activations, per_channel=per_channel,
        op_types=tuple(op_types) if op_types else None, float_depthwise=float_depthwise,
        float_act_matmul=float_act_matmul, float_after_concat=float_after_concat,
        float_side_inputs=float_side_inputs, max_samples=max_samples,
    )
    log = (lambda msg: print(f"ndr-calib: {msg}", file=sys.stderr)) if progress else (lambda msg: None)
    with tempfile.TemporaryDirectory(prefix="ndr-int8-", dir=workdir) as tmp:
        work = Path(tmp)
        calib = open_or_build_set(calibration, work, progress)
        quantizer = Quantizer(fp32_onnx, calib, settings, work / "quant", progress=progress, cache_dir=cache_dir)
        quantizer.calibrate()
        if quantizer.calibration_s is not None:
            log(f"calibrated with {settings.method} on {len(calib) if max_samples is None else max_samples} crops "
                f"in {quantizer.calibration_s:.1f} s")

        details: dict[str, Any] = {
            "budget_db": budget_db,
            "settings": settings.to_dict(),
            "calibration": {**calib.summary(), "seconds": round(quantizer.calibration_s or 0.0, 2)},
        }
        if calibration is None:  # built in the temporary folder: say what it was, not where it was
            details["calibration"]["path"] = "default recipe on the built-in demo training images (not kept)"
        notes: list[str] = []
        excluded: list[dict[str, str]] = []
        loss: dict[str, float] = {}
        within: bool | None = None
        full_path = work / "int8-full.onnx"
        if evaluate or budget_db is not None:
            samples = list(eval_set) if eval_set is not None else default_eval_set()
            if not samples:
                raise InputError("evaluation set is empty; pass held-out samples or eval_set=None for the default")
            details["eval_set"] = _describe_samples(samples)
            runner = SensitivityRunner(quantizer, samples, max_groups=max_groups, threads=threads, progress=progress)
            if budget_db is not None:
                start = time.perf_counter()
                qa = runner.quality_aware(budget_db, min_gain_db=min_gain_db, log=log)
                details["quality_aware_s"] = round(time.perf_counter() - start, 1)
                details.update(qa.to_dict())
                excluded, loss, within = qa.excluded, qa.loss_db, qa.within_budget
                if not within:
                    notes.append(
                        f"the {budget_db} dB budget is not met: worst loss {worst(loss):.3f} dB after keeping "
                        f"{len(qa.excluded_groups)} layer groups in float"
                    )
            else:
                loss = runner.loss([])
                details["psnr_fp32"] = {k: round(v, 4) for k, v in runner.reference.psnr.items()}
                details["psnr_int8"] = {k: round(runner.reference.psnr[k] - v, 4) for k, v in loss.items()}
        searched = bool(excluded)  # layers the quality search kept in float
        excluded = [{"node": n, "op": op, "reason": why} for n, op, why in quantizer.forced_float()] + excluded
        quantizer.write(out, [e["node"] for e in excluded],
                        details={"method": method, "budget_db": budget_db, "loss_db": loss})
        latency: dict[str, Any] = {}
        if latency_shape is not None:
            models: dict[str, str | os.PathLike[str]] = {"fp32": quantizer.source, "int8": out}
            if searched:
                quantizer.write(full_path)
                models["int8_all_layers"] = full_path
            latency = compare_latency(models, shape=latency_shape, threads=threads, repeats=latency_repeats,
                                      progress=progress)
            log(f"CPU latency at {latency_shape[2]}x{latency_shape[3]}: "
                + ", ".join(f"{k} {v['median_ms']:.1f} ms" for k, v in latency["models"].items()))
    return Int8Result(method, excluded, loss, latency, details, path=out, within_budget=within, notes=notes)


def _describe_samples(samples: Sequence[Any]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for s in samples:
        counts[s.degradation] = counts.get(s.degradation, 0) + 1
    names = sorted({getattr(s, "name", "") for s in samples})
    return {"images": len(names), "per_degradation": counts, "names": names[:32]}


def check_calibration_for(calibration: str | os.PathLike[str], fp32_onnx: str | os.PathLike[str]) -> CalibrationSet:
    """Open a set and check it fits the model (size multiple, fixed input size); used by ``ndr-export``."""
    from ndr_edge.calibration.evaluate import input_shape
    from ndr_edge.export.onnx_export import read_meta

    calib = CalibrationSet.open(calibration)
    meta = read_meta(fp32_onnx)
    calib.check_input_size(input_shape(fp32_onnx), multiple=meta.size_multiple, what=Path(fp32_onnx).name)
    return calib
