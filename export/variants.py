"""The one table of deployable variants: what ``ndr-export`` writes and ``ndr-report``
lists. Torch-free."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import InputError

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Variant:
    name: str
    format: str  # onnx | engine
    precision: str  # fp32 | fp16 | int8
    filename: str
    source: str | None  # the variant it is made from
    summary: str


VARIANTS: tuple[Variant, ...] = (
    Variant("onnx-fp32", "onnx", "fp32", "model-fp32.onnx", None,
            "traced restoration network, verified against PyTorch, simplified"),
    Variant("onnx-fp16", "onnx", "fp16", "model-fp16.onnx", "onnx-fp32",
            "mixed precision: FP16 weights/activations, sensitive ops in FP32, FP32 I/O"),
    Variant("onnx-int8", "onnx", "int8", "model-int8.onnx", "onnx-fp32",
            "explicit Q/DQ: per-channel weights, calibrated activations"),
    Variant("engine-fp16", "engine", "fp16", "model-fp16.engine", "onnx-fp16", "TensorRT engine of the FP16 graph"),
    Variant("engine-int8", "engine", "int8", "model-int8.engine", "onnx-int8", "TensorRT engine of the INT8 graph"),
)
BY_NAME = {v.name: v for v in VARIANTS}


def parse_precisions(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"fp16,int8"`` -> ("fp32", "fp16", "int8"): FP32 is always made (the others come from it)."""
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [s for s in items if s not in PRECISIONS]
    if unknown:
        raise InputError(f"--precision {','.join(unknown)}: unknown; choose from {','.join(PRECISIONS)}")
    chosen = {"fp32", *items}
    return tuple(p for p in PRECISIONS if p in chosen)


def selected(precisions: Iterable[str], engines: bool) -> list[Variant]:
    wanted = set(precisions)
    return [v for v in VARIANTS if v.precision in wanted and (v.format == "onnx" or engines)]
