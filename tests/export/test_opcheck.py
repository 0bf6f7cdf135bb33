"""The static TensorRT check: operators, restrictions, explicit-quantization rules, and the
INT32-bias fold that makes ONNX Runtime's Q/DQ graphs parseable."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from ndr_edge.export.opcheck import SUPPORTED_OPS, check_model
from ndr_edge.export.qdq_compat import fold_int32_bias_dequantize


def _model(nodes, initializers=(), opset=17, inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("output", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _const(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _qdq_conv(zero_dtype=np.int8, zero=0, act_scale=(0.02,), weight_axis=0, bias_int32=False):
    """input -> Q -> DQ -> Conv(DQ(int8 weights)[, bias]) -> output."""
    rng = np.random.default_rng(0)
    weights = rng.integers(-100, 100, size=(4, 3, 3, 3)).astype(np.int8)
    inits = [
        _const("act_scale", np.array(act_scale, np.float32).reshape(-1) if len(act_scale) > 1 else np.float32(act_scale[0])),
        _const("act_zero", np.array(zero, zero_dtype) if len(act_scale) == 1 else np.full(len(act_scale), zero, zero_dtype)),
        _const("w_q", weights), _const("w_scale", np.full(4, 0.01, np.float32)), _const("w_zero", np.zeros(4, np.int8)),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "act_scale", "act_zero"], ["q"], name="q_in"),
        helper.make_node("DequantizeLinear", ["q", "act_scale", "act_zero"], ["dq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="dq_w", axis=weight_axis),
    ]
    conv_inputs = ["dq", "w"]
    if bias_int32:
        inits += [_const("b_q", np.array([5, -7, 100, 0], np.int32)), _const("b_scale", np.full(4, 0.0002, np.float32)),
                  _const("b_zero", np.zeros(4, np.int32))]
        nodes.append(helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero"], ["b"], name="dq_b", axis=0))
        conv_inputs.append("b")
    nodes.append(helper.make_node("Conv", conv_inputs, ["output"], name="conv", pads=[1, 1, 1, 1]))
    return _model(nodes, inits, opset=13, outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 8, 8])])


def test_exported_graphs_pass(exported):
    for name in ("model-fp32.onnx", "model-fp16.onnx", "model-int8.onnx"):
        report = check_model(exported.outdir / name)
        assert report.ok, (name, report.errors[:3])
        assert set(report.ops) <= SUPPORTED_OPS


def test_unsupported_operator_fails():
    nodes = [
        helper.make_node("Relu", ["input"], ["r"], name="relu"),
        helper.make_node("Unique", ["r"], ["output"], name="unique"),
    ]
    report = check_model(_model(nodes))
    assert not report.ok
    assert any("Unique" in e and "not supported" in e for e in report.errors)
    custom = _model([helper.make_node("FusedConv", ["input"], ["output"], name="fc", domain="com.microsoft")])
    assert any("com.microsoft::FusedConv" in e for e in check_model(custom).errors)


def test_opset_range_and_constant_axes():
    assert any("opset 8" in e for e in check_model(_model([helper.make_node("Relu", ["input"], ["output"])], opset=8)).errors)
    axes_in = [helper.make_tensor_value_info("axes", TensorProto.INT64, [1])]
    dynamic_axes = _model(
        [helper.make_node("ReduceMean", ["input", "axes"], ["output"], name="rm")], opset=18,
        inputs=[helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8]), *axes_in],
    )
    assert any("axes must be a constant" in e for e in check_model(dynamic_axes).errors)
    constant_axes = _model([helper.make_node("ReduceMean", ["input", "axes"], ["output"], name="rm")],
                           [_const("axes", np.array([1], np.int64))], opset=18)
    assert check_model(constant_axes).ok


def test_valid_qdq_passes():
    report = check_model(_qdq_conv())
    assert report.ok, report.errors
    assert report.quantized_nodes == 2 and not report.warnings


def test_qdq_rules():
    assert any("zero point must be 0" in e for e in check_model(_qdq_conv(zero=3)).errors)
    assert any("not INT8" in e for e in check_model(_qdq_conv(zero_dtype=np.uint8)).errors)
    assert any("per-tensor" in e for e in check_model(_qdq_conv(act_scale=(0.1, 0.2, 0.3))).errors)
    assert any("axis 1" in e and "needs axis 0" in e for e in check_model(_qdq_conv(weight_axis=1)).errors)
    assert any("positive" in e for e in check_model(_qdq_conv(act_scale=(-0.5,))).errors)
    # a Q that feeds anything but a DQ
    model = _qdq_conv()
    model.graph.node.append(helper.make_node("Relu", ["q"], ["extra"], name="bad_consumer"))
    assert any("must feed only DequantizeLinear" in e for e in check_model(model).errors)


def test_int32_bias_is_flagged_and_folded_exactly():
    model = _qdq_conv(bias_int32=True)
    report = check_model(model)
    assert any("dq_b" in e and "int32" in e for e in report.errors)
    x = np.random.default_rng(1).random((1, 3, 8, 8), dtype=np.float32)
    before = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    assert fold_int32_bias_dequantize(model) == 1
    assert check_model(model).ok
    assert not any(i.name in ("b_q", "b_scale", "b_zero") for i in model.graph.initializer)
    onnx.checker.check_model(model)
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_array_equal(before, after)
