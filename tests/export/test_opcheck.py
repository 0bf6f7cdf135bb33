"""The static TensorRT check: operators, restrictions, explicit-quantization rules (FP32 and
FP16 scales), the oldest target TensorRT release (default 10.3, JetPack 6: which operators,
opsets and dynamic inputs it takes), and the INT32-bias fold that makes ONNX Runtime's Q/DQ
graphs parseable."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ndr_edge.errors import ConfigError
from ndr_edge.export.opcheck import FIRST_RELEASE, SUPPORTED_OPS, check_model
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
    """Every ONNX graph the export writes (FP32, FP16, INT8 and the FP16-scale INT8 graph for
    TensorRT where the pipeline makes it) passes against JetPack 6's TensorRT 10.3, and even
    10.0: the network uses no operator that came after 10.0."""
    names = sorted(p.name for p in exported.outdir.glob("*.onnx"))
    assert {"model-fp32.onnx", "model-fp16.onnx", "model-int8.onnx"} <= set(names), names
    for name in names:
        report = check_model(exported.outdir / name)
        assert report.ok, (name, report.errors[:3])
        assert report.target == "10.3" and report.to_dict()["target_tensorrt"] == "10.3"
        assert report.opset <= report.opset_limit == 20
        assert set(report.ops) <= SUPPORTED_OPS and not set(report.ops) & set(FIRST_RELEASE)
        assert check_model(exported.outdir / name, target="10.0").ok, name


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


# -- the target TensorRT release ------------------------------------------------------------
def _blackman_window(opset=17):
    """BlackmanWindow (ONNX opset 17), which TensorRT's parser takes from 10.4 on."""
    size = _const("size", np.array(16, np.int64))
    return _model([helper.make_node("BlackmanWindow", ["size"], ["output"], name="window")], [size], opset=opset,
                  inputs=[])


def test_an_operator_newer_than_the_target_release_is_refused_with_the_release_and_the_fix():
    report = check_model(_blackman_window())  # default target: JetPack 6's TensorRT 10.3
    assert not report.ok and report.target == "10.3"
    (error,) = report.errors
    assert "BlackmanWindow" in error and "10.4" in error and "10.3 (JetPack 6)" in error and "target=" in error
    assert check_model(_blackman_window(), target="10.4").ok
    assert check_model(_blackman_window(), target="10.13.3.9").ok  # trt.__version__ form
    # an operator of the 10.0 matrix passes the oldest target of all
    assert check_model(_model([helper.make_node("Relu", ["input"], ["output"])]), target=(10, 0)).ok


def test_the_opset_limit_follows_the_target_release():
    relu = [helper.make_node("Relu", ["input"], ["output"], name="relu")]
    report = check_model(_model(relu, opset=21))
    assert report.opset_limit == 20 and any("opset 21" in e and "9-20" in e and "10.6" in e for e in report.errors)
    newer = check_model(_model(relu, opset=21), target="10.6")
    assert newer.ok and newer.opset_limit == 22
    assert check_model(_model(relu, opset=20)).ok
    assert any("opset 25" in e for e in check_model(_model(relu, opset=25), target="10.15").errors)


def test_dynamic_axes_are_refused_only_before_the_release_that_takes_them():
    axes_in = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    image = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    slice_dynamic = _model([helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["output"], name="sl")],
                           [_const("starts", np.array([0], np.int64)), _const("ends", np.array([4], np.int64))],
                           opset=13, inputs=[image, axes_in])
    assert check_model(slice_dynamic).ok  # tensor Slice axes: TensorRT 10.3
    assert any("'sl'" in e and "before 10.3" in e for e in check_model(slice_dynamic, target="10.2").errors)
    squeeze_dynamic = _model([helper.make_node("Unsqueeze", ["input", "axes"], ["output"], name="us")], opset=13,
                             inputs=[image, axes_in])
    assert any("'us'" in e and "before 10.7" in e for e in check_model(squeeze_dynamic).errors)
    assert check_model(squeeze_dynamic, target="10.7").ok
    squeeze_constant = _model([helper.make_node("Unsqueeze", ["input", "axes"], ["output"], name="us")],
                              [_const("axes", np.array([0], np.int64))], opset=13)
    assert check_model(squeeze_constant, target="10.0").ok


def test_a_target_that_is_not_a_tensorrt_10_release_is_a_config_error():
    relu = _model([helper.make_node("Relu", ["input"], ["output"])])
    for bad in ("8.6", "ten", ""):
        with pytest.raises(ConfigError, match="TensorRT release"):
            check_model(relu, target=bad)


# -- FP16 scales (the INT8 graph for strongly typed TensorRT networks) ------------------------
def _fp16_qdq_conv(opset=19, act_scale=0.02, weight_scale=0.01):
    """FP32 input -> Cast(FP16) -> Q/DQ with an FP16 scale -> Conv(DQ(int8 weights, FP16 per-channel
    scales), FP16 bias) -> Cast(FP32): the layout of model-int8-trt.onnx around one convolution."""
    rng = np.random.default_rng(2)
    inits = [
        _const("act_scale", np.float16(act_scale)), _const("act_zero", np.int8(0)),
        _const("w_q", rng.integers(-100, 100, size=(4, 3, 3, 3)).astype(np.int8)),
        _const("w_scale", np.full(4, weight_scale, np.float16)), _const("w_zero", np.zeros(4, np.int8)),
        _const("bias", rng.standard_normal(4).astype(np.float16)),
    ]
    nodes = [
        helper.make_node("Cast", ["input"], ["x16"], name="to_fp16", to=TensorProto.FLOAT16),
        helper.make_node("QuantizeLinear", ["x16", "act_scale", "act_zero"], ["q"], name="q_in"),
        helper.make_node("DequantizeLinear", ["q", "act_scale", "act_zero"], ["dq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="dq_w", axis=0),
        helper.make_node("Conv", ["dq", "w", "bias"], ["y16"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Cast", ["y16"], ["output"], name="to_fp32", to=TensorProto.FLOAT),
    ]
    return _model(nodes, inits, opset=opset,
                  outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4, 8, 8])])


def test_fp16_scales_on_quantize_and_dequantize_pass_at_opset_19():
    model = _fp16_qdq_conv()
    onnx.checker.check_model(model, full_check=True)  # a valid ONNX graph: FP16 scales are opset 19 ONNX
    report = check_model(model)
    assert report.ok, report.errors
    assert report.quantized_nodes == 2 and not report.warnings


def test_fp16_scales_need_opset_19_and_must_not_underflow():
    old = check_model(_fp16_qdq_conv(opset=17))
    assert sum("FP16 scales need opset 19" in e for e in old.errors) == 3  # q_in, dq_in, dq_w
    # 1e-9 is a valid FP32 scale; as FP16 it is 0, which TensorRT cannot divide by
    assert np.float16(1e-9) == 0
    tiny = check_model(_fp16_qdq_conv(weight_scale=1e-9))
    assert [e for e in tiny.errors if "finite and positive" in e and "FP16" in e and "dq_w" in e], tiny.errors
    assert not any("q_in" in e for e in tiny.errors)
    wrong_type = _fp16_qdq_conv()
    wrong_type.graph.initializer[0].CopyFrom(_const("act_scale", np.float64(0.02)))
    assert any("q_in" in e and "float64" in e for e in check_model(wrong_type).errors)
