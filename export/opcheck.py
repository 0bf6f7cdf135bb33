"""A static check that TensorRT's ONNX parser can take a graph, run on the machine that
exports (no TensorRT needed).

- Every operator is one the parser supports (the support matrix of onnx-tensorrt for
  TensorRT 10.x, ``docs/operators.md``), in the default ONNX domain, within the opsets the
  parser reads (9-24; 9-20 on TensorRT 10.0-10.x where x < 10 is noted).
- The documented restrictions that can bite this network: reduction ``axes`` and
  Squeeze/Unsqueeze ``axes`` must be constants; Conv weights must be constant (through Q/DQ).
- Explicit quantization (TensorRT's Q/DQ rules): QuantizeLinear/DequantizeLinear scales are
  constant and positive; zero points are constant, zero and INT8; activation scales are
  per-tensor; per-channel weight scales run along the output-channel axis (axis 0 for Conv,
  1 for ConvTranspose); every QuantizeLinear feeds only DequantizeLinear nodes. A Conv whose
  input is quantized but whose weights are not (or the reverse) runs in float: a warning.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

MIN_OPSET, MAX_OPSET, MAX_OPSET_TRT10_0 = 9, 24, 20

# Operators marked "Y" in onnx-tensorrt's support matrix (TensorRT 10.x).
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

REDUCE_OPS = frozenset(op for op in SUPPORTED_OPS if op.startswith("Reduce"))
QUANT_TYPES = {onnx.TensorProto.INT8: "INT8"}  # what this toolkit exports; FP8/INT4 exist but are not used here
_WEIGHT_AXIS = {"Conv": 0, "ConvTranspose": 1}


@dataclass
class OpCheckReport:
    opset: int
    ops: dict[str, int]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    quantized_nodes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "opset": self.opset, "ops": self.ops, "errors": self.errors,
                "warnings": self.warnings, "qdq_pairs": self.quantized_nodes}

    def summary(self) -> str:
        if self.ok:
            return f"{sum(self.ops.values())} nodes, {len(self.ops)} operator types, all parseable by TensorRT"
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


def _check_qdq(node: onnx.NodeProto, g: _Graph, report: OpCheckReport) -> None:
    label = f"{node.op_type} {node.name or node.output[0]!r}"
    scale = g.constant(node.input[1]) if len(node.input) > 1 else None
    if scale is None:
        report.errors.append(f"{label}: scale is not a constant; TensorRT needs build-time scales")
        return
    if not np.all(scale > 0) or not np.all(np.isfinite(scale)):
        report.errors.append(f"{label}: scales must be finite and positive")
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


def check_model(model: onnx.ModelProto | str | Path) -> OpCheckReport:
    """Check a ModelProto (or an ONNX file) against TensorRT's ONNX parser rules."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    report = OpCheckReport(opset=opset, ops=dict(sorted(Counter(n.op_type for n in model.graph.node).items())))
    if not MIN_OPSET <= opset <= MAX_OPSET:
        report.errors.append(f"opset {opset}: TensorRT's ONNX parser reads opsets {MIN_OPSET}-{MAX_OPSET}")
    elif opset > MAX_OPSET_TRT10_0:
        report.warnings.append(f"opset {opset}: needs a TensorRT 10 release newer than 10.0 (which reads up to 20)")
    g = _Graph(model)
    unsupported: dict[str, int] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            unsupported[f"{node.domain}::{node.op_type}"] = unsupported.get(f"{node.domain}::{node.op_type}", 0) + 1
            continue
        if node.op_type not in SUPPORTED_OPS:
            unsupported[node.op_type] = unsupported.get(node.op_type, 0) + 1
            continue
        label = f"{node.op_type} {node.name!r}"
        if node.op_type in REDUCE_OPS and len(node.input) > 1 and node.input[1] and g.constant(node.input[1]) is None:
            report.errors.append(f"{label}: reduction axes must be a constant for TensorRT")
        if node.op_type in ("Squeeze", "Unsqueeze") and len(node.input) > 1 and g.constant(node.input[1]) is None:
            report.errors.append(f"{label}: axes must resolve to a constant for TensorRT")
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = node.input[1]
            if g.constant(weight) is None and not _dequantized(weight, g):
                report.errors.append(f"{label}: weights are not constant; TensorRT needs build-time weights")
            if _dequantized(node.input[0], g) != _dequantized(weight, g):
                report.warnings.append(f"{label}: only one of input/weights is quantized; this layer runs in float")
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            _check_qdq(node, g, report)
            report.quantized_nodes += node.op_type == "DequantizeLinear"
    for op, count in sorted(unsupported.items()):
        report.errors.append(f"operator {op} ({count} node{'s' if count > 1 else ''}) is not supported by TensorRT's "
                             "ONNX parser")
    for value in (*model.graph.input, *model.graph.output):
        if value.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE:
            report.errors.append(f"{value.name!r}: float64 I/O; TensorRT takes float32/float16 images")
    return report
