"""The INT8 graph TensorRT builds: the calibrated Q/DQ graph with FP16 compute elsewhere.

TensorRT 11 builds only strongly typed networks (and TensorRT 10 does when asked): every
layer runs at the type the ONNX graph gives it. Our CPU INT8 graph is FP32 plus Q/DQ, so in
an engine every layer outside the quantised Conv/MatMul (depthwise convolutions, layer norms,
softmax, element-wise work, layers the quality search kept in float) would run in FP32/TF32.
This module makes the graph TensorRT should get instead:

- Q/DQ exactly where the calibration put them, with the same scales (rounded to FP16, the
  type they now have; ``QuantizeLinear``/``DequantizeLinear`` take FP16 scales from opset 19,
  so the graph is converted to :data:`QDQ_OPSET`);
- FP16 weights and activations everywhere else, converted by onnxconverter-common with the
  Q/DQ nodes blocked and then the casts around them folded away (a ``DequantizeLinear`` with
  an FP16 scale produces FP16 directly, so TensorRT can fuse it into the FP16 layer);
- FP32 only for :func:`ndr_edge.export.fp16.sensitive_nodes`, the list the FP16 stage keeps
  (plus, with ``keep_fp32_extra``, any layers a caller names), and FP32 graph input/output.

ONNX Runtime runs the result on the CPU, which is how the 0.3 dB budget is checked on it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

from ndr_edge.errors import ArtifactError
from ndr_edge.export.fp16 import _quiet, ensure_float32_io, sensitive_nodes

#: first opset whose QuantizeLinear/DequantizeLinear take FP16 inputs and scales
QDQ_OPSET = 19
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
_FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.FLOAT16)


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((a.i for a in node.attribute if a.name == "to"), None)


def _upgrade_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if version >= QDQ_OPSET:
        return model
    from onnx import version_converter

    try:
        upgraded = version_converter.convert_version(model, QDQ_OPSET)
    except Exception as exc:  # onnx's converter raises plain RuntimeError/ValueError
        raise ArtifactError(f"int8-trt: converting the INT8 graph from opset {version} to {QDQ_OPSET} failed: "
                            f"{str(exc)[:300]}") from exc
    return upgraded


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes whose outputs nobody reads, then unused initializers."""
    outputs = {o.name for o in graph.output}
    while True:
        used = {i for n in graph.node for i in n.input} | outputs
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {i for n in graph.node for i in n.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def fold_qdq_casts(model: onnx.ModelProto) -> dict[str, int]:
    """In place: give every Q/DQ an FP16 scale and remove the casts a float16 converter put
    around them (``Cast(fp32) -> Q`` reads the FP16 tensor; ``DQ -> Cast(fp16)`` becomes a DQ
    that writes FP16). A DQ read by an FP32 node keeps an FP32 scale of the same (FP16-rounded)
    value, so a Q/DQ pair always agrees on its scale. Returns counts of what changed."""
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            readers[name].append(node)
    graph_outputs = {o.name for o in graph.output}
    fp16_scales: dict[str, str] = {}

    def rounded(name: str) -> None:  # the FP32 scale, in place, set to its FP16 value
        init = inits.get(name)
        if init is None or init.data_type != TensorProto.FLOAT:
            raise ArtifactError(f"int8-trt: Q/DQ scale {name} is not an FP32 initializer; re-export the INT8 graph")
        arr = numpy_helper.to_array(init).astype(np.float16)
        if not np.all(np.isfinite(arr)) or np.any(arr == 0):
            raise ArtifactError(f"int8-trt: scale {name} does not fit FP16 (zero or overflow after rounding)")
        init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), name))

    def fp16_scale(name: str) -> str:
        if name not in fp16_scales:
            arr = numpy_helper.to_array(inits[name]).astype(np.float16)
            fp16_scales[name] = f"{name}_fp16"
            graph.initializer.append(numpy_helper.from_array(arr, fp16_scales[name]))
        return fp16_scales[name]

    for scale in {node.input[1] for node in graph.node if node.op_type in QDQ_OPS}:
        rounded(scale)
    counts = {"q_fp16": 0, "dq_fp16": 0, "dq_fp32": 0, "input_casts": 0}
    renamed: dict[str, str] = {}
    inserts: list[tuple[onnx.NodeProto, onnx.NodeProto]] = []
    for node in list(graph.node):
        if node.op_type == "QuantizeLinear":
            source = producer.get(node.input[0])
            if source is not None and _cast_to(source) == TensorProto.FLOAT:
                node.input[0] = source.input[0]  # read the FP16 tensor the cast was made from
            else:  # the FP32 graph input: cast it once, here
                cast = onnx.helper.make_node("Cast", [node.input[0]], [f"{node.input[0]}_fp16_for_q"],
                                             name=f"{node.name}_input_fp16", to=TensorProto.FLOAT16)
                inserts.append((node, cast))
                node.input[0] = cast.output[0]
                counts["input_casts"] += 1
            node.input[1] = fp16_scale(node.input[1])
            counts["q_fp16"] += 1
        elif node.op_type == "DequantizeLinear":
            users = readers[node.output[0]]
            if users and node.output[0] not in graph_outputs and all(_cast_to(u) == TensorProto.FLOAT16 for u in users):
                kept = users[0]
                for other in users[1:]:
                    renamed[other.output[0]] = kept.output[0]
                node.output[0], kept.output[0] = kept.output[0], f"{kept.output[0]}_unused"
                node.input[1] = fp16_scale(node.input[1])
                counts["dq_fp16"] += 1
            else:
                counts["dq_fp32"] += 1
    for node in graph.node:
        node.input[:] = [renamed.get(name, name) for name in node.input]
    for before, cast in inserts:
        graph.node.insert(list(graph.node).index(before), cast)
    _prune(graph)
    return counts


def to_int8_fp16(int8: onnx.ModelProto, keep_fp32_extra: Iterable[str] = ()) -> tuple[onnx.ModelProto, dict]:
    """The TensorRT INT8 graph made from the CPU INT8 graph ``int8`` (FP32 + Q/DQ); returns
    the model and what was done (counts, the nodes kept in FP32 and why)."""
    from onnxconverter_common import float16

    kept = sensitive_nodes(int8)
    extra = [name for name in keep_fp32_extra if name not in {k["node"] for k in kept}]
    kept += [{"node": name, "op": "", "rule": "extra"} for name in extra]
    upgraded = _upgrade_opset(int8)
    qdq = [n.name for n in upgraded.graph.node if n.op_type in QDQ_OPS]
    if not qdq:
        raise ArtifactError("int8-trt: the graph has no QuantizeLinear/DequantizeLinear nodes; pass the INT8 graph")
    with _quiet():
        converted = float16.convert_float_to_float16(
            upgraded, keep_io_types=True, op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST),
            node_block_list=[k["node"] for k in kept] + qdq,
        )
    counts = fold_qdq_casts(converted)
    ensure_float32_io(converted)
    del converted.graph.value_info[:]  # stale after the rewiring; inference recomputes it
    converted.producer_name, converted.producer_version = int8.producer_name, int8.producer_version
    del converted.metadata_props[:]
    converted.metadata_props.extend(int8.metadata_props)
    try:
        onnx.checker.check_model(converted)
    except onnx.checker.ValidationError as exc:
        raise ArtifactError(f"int8-trt: the converted graph is not valid ONNX: {str(exc)[:300]}") from exc
    counts["casts"] = sum(1 for n in converted.graph.node if n.op_type == "Cast")
    return converted, {**counts, "opset": QDQ_OPSET, "kept_fp32": kept}


def float_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every tensor of ``model`` (after shape inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    types.update({i.name: i.data_type for i in inferred.graph.initializer})
    return types


def fp32_compute_nodes(model: onnx.ModelProto, ignore_ops: Sequence[str] = ("Cast", *QDQ_OPS)) -> list[str]:
    """Nodes (other than casts and Q/DQ) that compute on FP32 tensors: read or write one.
    Shape arithmetic on integer tensors does not count."""
    types = float_types(model)
    return [node.name for node in model.graph.node if node.op_type not in ignore_ops
            and any(types.get(t) == TensorProto.FLOAT for t in (*node.input, *node.output) if t)]
