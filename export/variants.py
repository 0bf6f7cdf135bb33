"""The one table of choices: precisions, the deployable variants (what ``ndr-export`` writes,
``ndr-restore`` selects and ``ndr-report`` lists), file formats and suffixes, the backends
that run each, the INT8 calibration methods, and the defaults every command shares.

A new precision variant is one row of :data:`VARIANTS`; a new backend is one name in the
``backends`` of the formats it runs. Every CLI takes its ``click.Choice`` lists and defaults
from here. Torch-free and cheap to import (the torch-free runtime imports it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ndr_edge.errors import InputError

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    """A model file format: the suffixes it is recognised by, the backends that run it
    (preferred first)."""

    name: str
    suffixes: tuple[str, ...]
    backends: tuple[str, ...]


FORMATS: tuple[Format, ...] = (
    Format("onnx", (".onnx",), ("onnxruntime", "openvino")),
    Format("engine", (".engine", ".plan", ".trt"), ("tensorrt",)),
    Format("checkpoint", (".safetensors", ".pth", ".pt"), ("pytorch",)),
)
FORMAT_BY_NAME = {f.name: f for f in FORMATS}
ONNX_SUFFIXES = FORMAT_BY_NAME["onnx"].suffixes
ENGINE_SUFFIXES = FORMAT_BY_NAME["engine"].suffixes
SIDECAR_SUFFIX = ".json"  # an engine's sidecar: X.engine -> X.engine.json

# the backends of the torch-free runtime (the PyTorch reference lives in ndr_edge.torch_backend)
RUNTIME_BACKENDS = ("onnxruntime", "tensorrt", "openvino")
OPENVINO_DEVICES = ("CPU", "GPU", "NPU", "AUTO")  # OpenVINO's names (GPU.1: a second GPU)
OPENVINO_HINTS = ("f32", "bf16", "f16")  # INFERENCE_PRECISION_HINT values
BACKEND_CHOICES = ("auto", *RUNTIME_BACKENDS)


@dataclass(frozen=True)
class Variant:
    name: str
    format: str  # a Format name: onnx | engine | checkpoint
    precision: str  # fp32 | fp16 | int8
    filename: str
    source: str | None  # the variant it is made from
    summary: str
    #: the backends this variant is meant for (empty: every backend of its format). The
    #: runtime picks, for a backend and precision, the variant meant for that backend.
    serves: tuple[str, ...] = ()

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends that run this variant, preferred first."""
        return FORMAT_BY_NAME[self.format].backends

    def meant_for(self, backend: str) -> bool:
        """Whether the runtime should choose this variant for ``backend``."""
        return backend in (self.serves or self.backends)


VARIANTS: tuple[Variant, ...] = (
    Variant("onnx-fp32", "onnx", "fp32", "model-fp32.onnx", None,
            "traced restoration network, verified against PyTorch, simplified"),
    Variant("onnx-fp16", "onnx", "fp16", "model-fp16.onnx", "onnx-fp32",
            "mixed precision: FP16 weights/activations, sensitive ops in FP32, FP32 I/O"),
    Variant("onnx-int8", "onnx", "int8", "model-int8.onnx", "onnx-fp32",
            "explicit Q/DQ: per-channel weights, calibrated activations, FP32 elsewhere (CPU runtimes)",
            serves=("onnxruntime", "openvino")),
    Variant("onnx-int8-trt", "onnx", "int8", "model-int8-trt.onnx", "onnx-int8",
            "the INT8 graph's Q/DQ with FP16 compute elsewhere (sensitive ops FP32), opset 19: what "
            "strongly typed TensorRT builds INT8 engines from", serves=("tensorrt",)),
    Variant("engine-fp16", "engine", "fp16", "model-fp16.engine", "onnx-fp16", "TensorRT engine of the FP16 graph"),
    Variant("engine-int8", "engine", "int8", "model-int8.engine", "onnx-int8-trt",
            "TensorRT engine of the INT8 graph with FP16 compute"),
)
BY_NAME = {v.name: v for v in VARIANTS}
# what the report measures the others against (not an export artifact)
REFERENCE = Variant("pytorch-fp32", "checkpoint", "fp32", "", None, "the PyTorch checkpoint the export was made from")

# INT8 calibration (ndr_edge.calibration), FP16 conversion (ndr_edge.export.fp16), ONNX tracing
INT8_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_INT8_METHOD = "entropy"
INT8_ACTIVATIONS = ("int8", "uint8")  # symmetric (what TensorRT needs) / asymmetric (ONNX Runtime CPU only)
# Measured on the bundled ndr-edge-xs (README, INT8): quantising every op ONNX Runtime can
# (layer-norm arithmetic, GELU, softmax, the residual adds) loses up to 6 dB on rain; Q/DQ on
# Conv and MatMul only (depthwise in float) loses at most 0.6 dB before any layer search.
DEFAULT_INT8_OP_TYPES = ("Conv", "MatMul")
FP16_CONVERTERS = ("modelopt", "onnxconverter")  # tried in turn; the best PSNR against FP32 is kept
ONNX_EXPORTERS = ("auto", "torchscript", "dynamo")
DEFAULT_OPSET = 17

# defaults shared by the export, calibration, runtime and report commands
DEFAULT_BUDGET_DB = 0.3  # largest INT8 PSNR loss against FP32 on any degradation
DEFAULT_WORKSPACE_MB = 2048  # TensorRT builder workspace
DEFAULT_TILE = 512  # runtime tile side (px)
DEFAULT_OVERLAP = 32  # runtime tile overlap (px)


def backend_of_format(format_name: str) -> str | None:
    """The preferred backend for a format, or None for an unknown format."""
    fmt = FORMAT_BY_NAME.get(format_name)
    return fmt.backends[0] if fmt else None


def format_of_suffix(suffix: str) -> str | None:
    """``".engine"`` -> ``"engine"``; None for a suffix no format has."""
    return next((f.name for f in FORMATS if suffix.lower() in f.suffixes), None)


def parse_precisions(spec: str | Iterable[str]) -> tuple[str, ...]:
    """``"fp16,int8"`` -> ("fp32", "fp16", "int8"): FP32 is always made (the others come from it)."""
    items = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [s for s in items if s not in PRECISIONS]
    if unknown:
        raise InputError(f"--precision {','.join(unknown)}: unknown; choose from {','.join(PRECISIONS)}")
    chosen = {"fp32", *items}
    return tuple(p for p in PRECISIONS if p in chosen)


def parse_budget(text: str, option: str = "--budget") -> float | None:
    """An INT8 PSNR budget option: ``"0.3"`` -> 0.3 dB; ``"none"`` (or ``"off"``) -> None, quantise every layer."""
    if text.strip().lower() in ("none", "off"):
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{option} {text!r} is not a number of dB (e.g. {DEFAULT_BUDGET_DB}) or 'none'") from None


def selected(precisions: Iterable[str], engines: bool) -> list[Variant]:
    wanted = set(precisions)
    return [v for v in VARIANTS if v.precision in wanted and (v.format == "onnx" or engines)]
