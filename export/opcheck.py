"""A static check that TensorRT's ONNX parser can take a graph, run on the machine that
exports (no TensorRT needed), against the oldest TensorRT release the graph must build on.

Target release. Engines are built on the device, with the TensorRT it has: JetPack 6 ships
TensorRT 10.3, so :data:`DEFAULT_TARGET` is ``"10.3"``; :func:`check_model` takes another
``target`` where no device runs anything that old (or where one runs older). The report says
which release it checked against (``target``) and the opset limit of that release.

- Every operator is one the parser supports (the support matrix of onnx-tensorrt,
  ``docs/operators.md``, as of TensorRT 10.15) in the default ONNX domain, and one the
  target release already supports: :data:`FIRST_RELEASE` records, for every operator that
  came after 10.0, the first release that parses it (onnx-tensorrt's ``docs/Changelog.md``
  and TensorRT's ``CHANGELOG.md``; all others are in the 10.0 matrix). The operators the
  NDR-Restore graphs contain (FP32/FP16/INT8: Add, Cast, Clip, Concat, Constant, Conv,
  DepthToSpace, DequantizeLinear, Div, Erf, Expand, Gather, MatMul, Mul, QuantizeLinear,
  ReduceL2, ReduceMean, Reshape, Shape, Sigmoid, Slice, Softmax, Sqrt, Squeeze, Sub,
  Transpose, Unsqueeze) are all in the 10.0 matrix: none needs a later release.
- The opset is one the target documents (:data:`OPSET_LIMITS`: 9-20 up to 10.5, 22 from
  10.6, 24 from 10.15). TensorRT 10.3 reads opsets 9-20.
- The documented restrictions that can bite this network: reduction ``axes`` must be
  constants; Conv weights must be constant (through Q/DQ); before the release that lifted each
  one (:data:`CONSTANT_INPUT_UNTIL`), ``Slice`` axes (10.3), ``Pad`` axes (10.4),
  ``Squeeze``/``Unsqueeze`` axes (10.7) and the ``CumSum`` axis (10.8) must be constants too.
- Explicit quantization (TensorRT's Q/DQ rules): QuantizeLinear/DequantizeLinear scales are
  constant, positive and FP32 or FP16/BF16 (the strongly typed FP16 graph, ``model-int8-trt``,
  carries FP16 scales: ONNX allows them from opset 19, and an FP32 scale too small for FP16
  becomes 0 there); zero points are constant, zero and INT8; activation scales are per-tensor;
  per-channel weight scales run along the output-channel axis (axis 0 for Conv, 1 for
  ConvTranspose); every QuantizeLinear feeds only DequantizeLinear nodes. A Conv whose input
  is quantized but whose weights are not (or the reverse) runs in float: a warning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from ndr_edge.errors import ConfigError

Release = tuple[int, int]

#: the oldest TensorRT release the exported graphs must build on: JetPack 6.x ships TensorRT 10.3
DEFAULT_TARGET = "10.3"
#: where a target release ships, for the report
RELEASE_NOTES: dict[Release, str] = {(10, 3): "JetPack 6"}

MIN_OPSET = 9
#: highest opset each TensorRT release documents, from the release on (operators.md: "TensorRT 10.0 supports
#: operators in the inclusive range of opset 9 to opset 20", unchanged through 10.5; 10.6 moved the parser to
#: ONNX 1.17, opset 22; operators.md of 10.15: opset 9 to 24)
OPSET_LIMITS: tuple[tuple[Release, int], ...] = (((10, 0), 20), ((10, 6), 22), ((10, 15), 24))
MAX_OPSET = OPSET_LIMITS[-1][1]

# Operators marked "Y" in onnx-tensorrt's support matrix (docs/operators.md, TensorRT 10.15); FIRST_RELEASE below
# adds those of later releases (Swish, 11.0) and says from which release each newer one is parsed.
SUPPORTED_OPS: frozenset[str] = frozenset((
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh", "Attention",
    "AveragePool", "BatchNormalization", "BlackmanWindow", "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat",
    "Constant", "ConstantOfShape", "Conv", "ConvTranspose", "Cos", "Cosh", "CumSum", "DeformConv", "DepthToSpace",
    "DequantizeLinear", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike", "Flatten",
    "Floor", "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
    "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "GRU", "HammingWindow",
    "HannWindow", "HardSigmoid", "HardSwish", "Hardmax", "Identity", "If", "ImageScaler", "InstanceNormalization",
    "IsInf", "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LRN",
    "LSTM", "LpNormalization", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min",
    "Mish", "Mod", "Mul", "Neg", "NonMaxSuppression", "NonZero", "Not", "OneHot", "Or", "Pad", "ParametricSoftplus",
    "Pow", "PRelu", "QuantizeLinear", "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
    "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
    "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence",
    "RMSNormalization", "RNN", "RoiAlign", "RotaryEmbedding", "Round", "STFT", "ScaledTanh", "Scan", "Scatter",
    "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice",
    "Softmax", "Softplus", "Softsign", "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tan", "Tanh",
    "TensorScatter", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu", "Unsqueeze", "Upsample", "Where",
    "Xor",
))


#: First TensorRT release whose ONNX parser supports an operator, for those that came after 10.0 (every
#: other operator of SUPPORTED_OPS is "Y" in the 10.0 matrix). Sources: onnx-tensorrt docs/Changelog.md and
#: docs/operators.md at release/10.0-GA and 10.1-GA, TensorRT CHANGELOG.md (10.4, 10.5, 10.14, 10.15, 11.0).
FIRST_RELEASE: dict[str, Release] = {
    "DeformConv": (10, 1),
    "BlackmanWindow": (10, 4), "HammingWindow": (10, 4), "HannWindow": (10, 4),
    "STFT": (10, 5),
    "Attention": (10, 14),
    "RMSNormalization": (10, 15), "RotaryEmbedding": (10, 15), "TensorScatter": (10, 15),
    "Swish": (11, 0),
}
SUPPORTED_OPS = SUPPORTED_OPS | frozenset(FIRST_RELEASE)

#: inputs that must be build-time constants before the release that accepted tensors there:
#: (op, input index) -> first release that takes a tensor (Slice axes 10.3, Pad axes 10.4, Squeeze/Unsqueeze
#: axes 10.7, CumSum axis 10.8; changelogs of those releases)
CONSTANT_INPUT_UNTIL: dict[tuple[str, int], Release] = {
    ("Slice", 3): (10, 3), ("Pad", 3): (10, 4), ("Squeeze", 1): (10, 7), ("Unsqueeze", 1): (10, 7),
    ("CumSum", 1): (10, 8),
}

REDUCE_OPS = frozenset(op for op in SUPPORTED_OPS if op.startswith("Reduce"))
QUANT_TYPES = {onnx.TensorProto.INT8: "INT8"}  # what this toolkit exports; FP8/INT4 exist but are not used here
#: scale types TensorRT's Q/DQ take (FP16/BF16 only from opset 19, where ONNX allows them)
SCALE_TYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float16): "FP16"}
FP16_SCALE_OPSET = 19
_WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}


def parse_release(release: str | Release) -> Release:
    """``"10.3"``, ``"10.3.0.26"`` (``trt.__version__``) or ``(10, 3)`` as (major, minor)."""
    if isinstance(release, tuple):
        parts = list(release)
    else:
        parts = str(release).strip().split(".")
    try:
        major, minor = int(parts[0]), int(parts[1]) if len(parts) > 1 else 0
    except (ValueError, IndexError) as exc:
        raise ConfigError(f"TensorRT release {release!r}: expected MAJOR.MINOR such as {DEFAULT_TARGET}") from exc
    if major < 10:
        raise ConfigError(f"TensorRT release {release!r}: this check covers TensorRT 10 and later (the runtime's "
                          "API); the oldest supported target is 10.0")
    return major, minor


def format_release(release: Release) -> str:
    note = RELEASE_NOTES.get(release)
    return f"{release[0]}.{release[1]}" + (f" ({note})" if note else "")


def opset_limit(target: str | Release) -> int:
    """The highest ONNX opset the target TensorRT release documents (20 for 10.3)."""
    release = parse_release(target)
    return max(limit for since, limit in OPSET_LIMITS if since <= release)


@dataclass
class OpCheckReport:
    opset: int
    ops: dict[str, int]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quantized_nodes: int = 0
    target: str = DEFAULT_TARGET  # the oldest TensorRT release checked against, "10.3"
    opset_limit: int = 0  # the highest opset that release documents

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "target_tensorrt": self.target, "opset": self.opset, "opset_limit": self.opset_limit,
                "ops": self.ops, "errors": self.errors, "warnings": self.warnings, "qdq_pairs": self.quantized_nodes}

    def summary(self) -> str:
        if self.ok:
            target = format_release(parse_release(self.target))
            return (f"{sum(self.ops.values())} nodes, {len(self.ops)} operator types, opset {self.opset}: all "
                    f"parseable by TensorRT {target} and later")
        more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{self.errors[0]}{more}"


class _Graph:
    """Constant lookup and consumers for one graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        graph = model.graph
        self.constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        self.constants[node.output[0]] = numpy_helper.to_array(attr.t)
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)

    def constant(self, name: str) -> np.ndarray | None:
        if name in self.constants:
            return self.constants[name]
        node = self.producer.get(name)  # a constant through Identity (common after exporters)
        if node is not None and node.op_type == "Identity":
            return self.constant(node.input[0])
        return None


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return onnx.helper.get_attribute_value(attr)
    return default


def _check_scale(label: str, scale: np.ndarray, opset: int, report: OpCheckReport) -> None:
    kind = SCALE_TYPES.get(scale.dtype)
    if kind is None and scale.dtype.name != "bfloat16":
        report.errors.append(f"{label}: scale type {scale.dtype} is not one TensorRT takes (FP32, FP16 or BF16)")
        return
    if kind != "FP32" and opset < FP16_SCALE_OPSET:
        report.errors.append(f"{label}: {kind or 'BF16'} scales need opset {FP16_SCALE_OPSET} (ONNX "
                             f"QuantizeLinear/DequantizeLinear-19); this graph is opset {opset}")
    values = scale.astype(np.float32)
    if not np.all(np.isfinite(values)) or not np.all(values > 0):
        why = " (an FP32 scale below FP16's range rounds to 0 or inf)" if kind == "FP16" else ""
        report.errors.append(f"{label}: scales must be finite and positive{why}")


def _check_qdq(node: onnx.NodeProto, g: _Graph, opset: int, report: OpCheckReport) -> None:
    label = f"{node.op_type} {node.name or node.output[0]!r}"
    scale = g.constant(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        report.errors.append(f"{label}: scale is not a constant; TensorRT needs build-time scales")
        return
    _check_scale(label, scale, opset, report)
    zero_point = g.constant(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if len(node.input) > 2 and node.input[2] and zero_point is None:
        report.errors.append(f"{label}: zero point is not a constant")
    if zero_point is not None:
        if np.any(zero_point != 0):
            report.errors.append(f"{label}: zero point must be 0 (TensorRT quantizes symmetrically)")
        if zero_point.dtype != np.int8:
            report.errors.append(f"{label}: quantized type {zero_point.dtype} is not INT8 (uint8 Q/DQ is unsupported)")
    if node.op_type == "QuantizeLinear":
        if scale.size != 1:
            report.errors.append(f"{label}: activation scales must be per-tensor (got {scale.size} values)")
        bad = [c.op_type for c in g.consumers.get(node.output[0], []) if c.op_type != "DequantizeLinear"]
        if bad:
            report.errors.append(f"{label}: feeds {', '.join(sorted(set(bad)))}; a Q must feed only DequantizeLinear")
        return
    # DequantizeLinear: per-channel only for constant weights, along the output-channel axis
    if scale.size > 1:
        source = node.input[0]
        source_q = g.producer.get(source)
        is_weight = g.constant(source) is not None or (
            source_q is not None and source_q.op_type == "QuantizeLinear" and g.constant(source_q.input[0]) is not None
        )
        if not is_weight:
            report.errors.append(f"{label}: per-channel scales on an activation; TensorRT quantizes activations per tensor")
        axis = int(_attr(node, "axis", 1))
        for consumer in g.consumers.get(node.output[0], []):
            want = _WEIGHT_AXIS.get(consumer.op_type)
            if want is not None and len(consumer.input) > 1 and consumer.input[1] == node.output[0] and axis != want:
                report.errors.append(
                    f"{label}: per-channel axis {axis} for {consumer.op_type} weights; TensorRT needs axis {want}"
                )


def _dequantized(name: str, g: _Graph) -> bool:
    node = g.producer.get(name)
    return node is not None and node.op_type == "DequantizeLinear"


def check_model(model: onnx.ModelProto | str | Path, target: str | Release = DEFAULT_TARGET) -> OpCheckReport:
    """Check a ModelProto (or an ONNX file) against TensorRT's ONNX parser rules, as the
    TensorRT release ``target`` (the oldest one the graph must build on; default 10.3, JetPack
    6) and every later one apply them."""
    release = parse_release(target)
    shown = format_release(release)
    limit = opset_limit(release)
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    report = OpCheckReport(opset=opset, ops=dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
                           target=f"{release[0]}.{release[1]}", opset_limit=limit)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        report.errors.append(f"opset {opset}: TensorRT's ONNX parser reads opsets {MIN_OPSET}-{MAX_OPSET}")
    elif opset > limit:
        newer = next(since for since, top in OPSET_LIMITS if top >= opset)
        report.errors.append(
            f"opset {opset}: TensorRT {shown} reads opsets {MIN_OPSET}-{limit} (opset {opset} needs TensorRT "
            f"{newer[0]}.{newer[1]}); export with opset <= {limit} (onnx.version_converter), or check against a "
            "newer target if no device runs the older release"
        )
    g = _Graph(model)
    unsupported: Counter[str] = Counter()
    too_new: Counter[str] = Counter()  # operators the target release does not parse yet
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            unsupported[f"{node.domain}::{node.op_type}"] += 1
            continue
        if node.op_type not in SUPPORTED_OPS:
            unsupported[node.op_type] += 1
            continue
        if FIRST_RELEASE.get(node.op_type, release) > release:
            too_new[node.op_type] += 1
        label = f"{node.op_type} {node.name!r}"
        if node.op_type in REDUCE_OPS and len(node.input) > 1 and node.input[1] and g.constant(node.input[1]) is None:
            report.errors.append(f"{label}: reduction axes must be a constant for TensorRT")
        for index, name in enumerate(node.input):
            lifted = CONSTANT_INPUT_UNTIL.get((node.op_type, index))
            if lifted is not None and release < lifted and name and g.constant(name) is None:
                report.errors.append(
                    f"{label}: input {index} ({'axis' if node.op_type == 'CumSum' else 'axes'}) must resolve to a "
                    f"constant for TensorRT before {lifted[0]}.{lifted[1]} (target {shown}); fold it "
                    "(onnxsim / polygraphy surgeon sanitize --fold-constants)"
                )
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = node.input[1]
            if g.constant(weight) is None and not _dequantized(weight, g):
                report.errors.append(f"{label}: weights are not constant; TensorRT needs build-time weights")
            if _dequantized(node.input[0], g) != _dequantized(weight, g):
                report.warnings.append(f"{label}: only one of input/weights is quantized; this layer runs in float")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq(node, g, opset, report)
            report.quantized_nodes += node.op_type == "DequantizeLinear"
    for op, count in sorted(unsupported.items()):
        report.errors.append(f"operator {op} ({count} node{'s' if count > 1 else ''}) is not supported by TensorRT's "
                             "ONNX parser")
    for op, count in sorted(too_new.items()):
        since = FIRST_RELEASE[op]
        report.errors.append(
            f"operator {op} ({count} node{'s' if count > 1 else ''}) is parsed from TensorRT {since[0]}.{since[1]} on, "
            f"the target is TensorRT {shown}; export it as simpler ops (decompose {op}) or, if every device runs "
            f"TensorRT >= {since[0]}.{since[1]}, check with target='{since[0]}.{since[1]}'"
        )
    for value in (*model.graph.input, *model.graph.output):
        if value.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE:
            report.errors.append(f"{value.name!r}: float64 I/O; TensorRT takes float32/float16 images")
    return report
