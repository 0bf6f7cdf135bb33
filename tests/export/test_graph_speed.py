"""The speed passes of ``ndr_edge.export.graph_speed``: each one on a small hand-built graph
of the pattern it targets (outputs against the un-rewritten graph under ONNX Runtime at two
heights/widths, the pattern gone, the ONNX checker), then all of them on a micro member of
the family traced and simplified as the exporter does (outputs against PyTorch too)."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ndr_edge.export.graph_speed import (
    DEFAULT_PASSES,
    PASSES,
    broadcast_expand,
    channel_layernorm,
    chunk_to_convs,
    ffn_channel_pad,
    matmul_transpose,
    pixel_unshuffle_conv,
    speed_up,
    static_reshape,
    symbolic_shapes,
)

SIZES = ((1, 16, 24), (2, 40, 32))  # (batch, height, width): H and W are dynamic in every graph


def _model(nodes, inits, channels, out_channels=None, opset=17):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", out_channels or channels, "h", "w"])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _copy(model):
    twin = onnx.ModelProto()
    twin.CopyFrom(model)
    return twin


def _run(model, x):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _inputs(channels, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, channels, h, w)).astype(np.float32) for n, h, w in SIZES]


def _same_outputs(before, after, channels, atol=1e-5):
    onnx.checker.check_model(after, full_check=True)
    for x in _inputs(channels):
        expected, got = _run(before, x), _run(after, x)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def _ops(model):
    return [n.op_type for n in model.graph.node]


def _weight(rng, *shape, scale=0.3):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


# -- channel LayerNorm ---------------------------------------------------------------------
def _layernorm_graph(channels=16, affine=True, square="Mul", offset=0.0, opset=17):
    """Conv -> the traced channel LayerNorm -> Conv, plus a Shape of the norm's output feeding
    a Reshape (as the attention's ``reshape(x.shape)`` does)."""
    rng = np.random.default_rng(1)
    inits = {"w0": _weight(rng, channels, channels, 1, 1), "b0": np.full(channels, offset, np.float32),
             "w1": _weight(rng, channels, channels, 1, 1), "eps": np.array(1e-5, np.float32),
             "two": np.array(2.0, np.float32)}
    axes = {"axes": [1]}
    if opset >= 18:
        inits["ax"] = np.array([1], np.int64)
        axes = {}
    mean_inputs = (lambda name: [name, "ax"]) if opset >= 18 else (lambda name: [name])
    nodes = [
        helper.make_node("Conv", ["input", "w0", "b0"], ["x"], name="/net/conv0/Conv", kernel_shape=[1, 1]),
        helper.make_node("ReduceMean", mean_inputs("x"), ["mu"], name="/net/norm1/ReduceMean", **axes),
        helper.make_node("Sub", ["x", "mu"], ["c"], name="/net/norm1/Sub"),
        helper.make_node("Mul", ["c", "c"], ["sq"], name="/net/norm1/Mul") if square == "Mul"
        else helper.make_node("Pow", ["c", "two"], ["sq"], name="/net/norm1/Pow"),
        helper.make_node("ReduceMean", mean_inputs("sq"), ["var"], name="/net/norm1/ReduceMean_1", **axes),
        helper.make_node("Add", ["var", "eps"], ["ve"], name="/net/norm1/Add"),
        helper.make_node("Sqrt", ["ve"], ["sd"], name="/net/norm1/Sqrt"),
        helper.make_node("Div", ["c", "sd"], ["normed"], name="/net/norm1/Div"),
    ]
    last = "normed"
    if affine:
        inits["gamma"] = (1 + 0.2 * rng.standard_normal((1, channels, 1, 1))).astype(np.float32)
        inits["beta"] = (0.2 * rng.standard_normal((1, channels, 1, 1))).astype(np.float32)
        nodes += [helper.make_node("Mul", ["normed", "gamma"], ["scaled"], name="/net/norm1/body/Mul"),
                  helper.make_node("Add", ["scaled", "beta"], ["shifted"], name="/net/norm1/body/Add")]
        last = "shifted"
    nodes += [helper.make_node("Conv", [last, "w1"], ["y"], name="/net/conv1/Conv", kernel_shape=[1, 1]),
              helper.make_node("Shape", [last], ["shape"], name="/net/attn/Shape"),
              helper.make_node("Reshape", ["y", "shape"], ["output"], name="/net/attn/Reshape")]
    return _model(nodes, inits, channels, opset=opset)


@pytest.mark.parametrize("affine, square, opset", [(True, "Mul", 17), (False, "Mul", 17), (True, "Pow", 18)])
def test_channel_layernorm_becomes_one_layernormalization(affine, square, opset):
    before = _layernorm_graph(affine=affine, square=square, opset=opset)
    after = _copy(before)
    assert channel_layernorm(after) == 1
    assert "ReduceMean" not in _ops(after) and "Sqrt" not in _ops(after)
    (norm,) = [n for n in after.graph.node if n.op_type == "LayerNormalization"]
    attrs = {a.name: helper.get_attribute_value(a) for a in norm.attribute}
    assert attrs["axis"] == -1 and attrs["epsilon"] == pytest.approx(1e-5)
    transposes = [n for n in after.graph.node if n.op_type == "Transpose"]
    assert [list(n.attribute[0].ints) for n in transposes] == [[0, 2, 3, 1], [0, 3, 1, 2]]
    # the Shape that read the norm's output now reads its input (same shape, no transpose needed)
    (shape,) = [n for n in after.graph.node if n.op_type == "Shape"]
    assert shape.input[0] == "x"
    _same_outputs(before, after, 16)


def test_channel_layernorm_is_exact_where_the_mean_is_large():
    # LayerNorm is shift-invariant; a large common offset must not cost accuracy beyond what the
    # traced two-pass chain itself loses (ONNX Runtime computes the variance in one pass)
    before = _layernorm_graph(offset=3.0)
    after = _copy(before)
    assert channel_layernorm(after) == 1
    _same_outputs(before, after, 16, atol=1e-4)


def test_channel_layernorm_leaves_other_reductions_alone():
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("ReduceMean", ["input"], ["mu"], name="m", axes=[2]),
             helper.make_node("Sub", ["input", "mu"], ["c"], name="s"),
             helper.make_node("Mul", ["c", "c"], ["sq"], name="q"),
             helper.make_node("ReduceMean", ["sq"], ["var"], name="v", axes=[2]),
             helper.make_node("Add", ["var", "eps"], ["ve"], name="a"),
             helper.make_node("Sqrt", ["ve"], ["sd"], name="r"),
             helper.make_node("Div", ["c", "sd"], ["d"], name="d"),
             helper.make_node("Conv", ["d", "w"], ["output"], name="conv", kernel_shape=[1, 1])]
    model = _model(nodes, {"eps": np.array(1e-5, np.float32), "w": _weight(rng, 8, 8, 1, 1)}, 8)
    assert channel_layernorm(model) == 0
    assert _ops(model).count("ReduceMean") == 2


def test_channel_layernorm_needs_opset_17():
    model = _layernorm_graph()
    model.opset_import[0].version = 16
    assert channel_layernorm(model) == 0


# -- Expand feeding a broadcasting Div ------------------------------------------------------
def _normalize_graph(channels=8):
    """F.normalize over the last axis as traced: x / Expand(Clip(ReduceL2(x)), Shape(x))."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Conv", ["input", "w"], ["x"], name="conv", kernel_shape=[1, 1]),
             helper.make_node("ReduceL2", ["x"], ["l2"], name="/attn/ReduceL2", axes=[-1], keepdims=1),
             helper.make_node("Clip", ["l2", "lo"], ["cl"], name="/attn/Clip"),
             helper.make_node("Shape", ["x"], ["sx"], name="/attn/Shape"),
             helper.make_node("Expand", ["cl", "sx"], ["ex"], name="/attn/Expand"),
             helper.make_node("Div", ["x", "ex"], ["output"], name="/attn/Div")]
    return _model(nodes, {"w": _weight(rng, channels, channels, 1, 1), "lo": np.array(1e-12, np.float32)}, channels)


def test_broadcast_expand_is_dropped():
    before = _normalize_graph()
    after = _copy(before)
    assert broadcast_expand(after) == 1
    assert "Expand" not in _ops(after) and "Shape" not in _ops(after)
    (div,) = [n for n in after.graph.node if n.op_type == "Div"]
    assert list(div.input) == ["x", "cl"]
    _same_outputs(before, after, 8, atol=0)


def test_expand_to_another_tensors_shape_stays():
    # Div(z, Expand(a, Shape(x))) with z not x: dropping the Expand could change the shape
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["input", "w"], ["x"], name="conv", kernel_shape=[1, 1]),
             helper.make_node("Conv", ["input", "w"], ["z"], name="conv2", kernel_shape=[1, 1]),
             helper.make_node("Shape", ["x"], ["sx"], name="shape"),
             helper.make_node("Expand", ["scale", "sx"], ["ex"], name="expand"),
             helper.make_node("Div", ["z", "ex"], ["output"], name="div")]
    model = _model(nodes, {"w": _weight(rng, 8, 8, 1, 1), "scale": np.full((1, 8, 1, 1), 2.0, np.float32)}, 8)
    assert broadcast_expand(model) == 0
    assert "Expand" in _ops(model)


# -- the gated FFN's hidden width ------------------------------------------------------------
def _gdfn_graph(channels=8, hidden=5, gate_op="Erf", split="Slice"):
    """GDFN as traced: 1x1 conv to 2*hidden, depthwise 3x3, two channel halves (Slices or one
    Split), gelu(x1) * x2 written out, 1x1 conv back to ``channels``."""
    rng = np.random.default_rng(5)
    two = 2 * hidden
    inits = {"w_in": _weight(rng, two, channels, 1, 1), "w_dw": _weight(rng, two, 1, 3, 3),
             "b_dw": _weight(rng, two), "w_out": _weight(rng, channels, hidden, 1, 1),
             "sqrt2": np.array(np.sqrt(2.0), np.float32), "one": np.array(1.0, np.float32),
             "half": np.array(0.5, np.float32), "zero": np.array([0], np.int64), "mid": np.array([hidden], np.int64),
             "end": np.array([np.iinfo(np.int64).max], np.int64), "axis": np.array([1], np.int64),
             "halves": np.array([hidden, hidden], np.int64)}
    nodes = [helper.make_node("Conv", ["input", "w_in"], ["p"], name="/ffn/project_in/Conv", kernel_shape=[1, 1]),
             helper.make_node("Conv", ["p", "w_dw", "b_dw"], ["d"], name="/ffn/dwconv/Conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], group=two)]
    if split == "Slice":
        nodes += [helper.make_node("Slice", ["d", "zero", "mid", "axis"], ["x1"], name="/ffn/Slice"),
                  helper.make_node("Slice", ["d", "mid", "end", "axis"], ["x2"], name="/ffn/Slice_1")]
    else:
        nodes += [helper.make_node("Split", ["d", "halves"], ["x1", "x2"], name="/ffn/Split", axis=1)]
    gate = helper.make_node("Erf", ["s"], ["e"], name="/ffn/Erf") if gate_op == "Erf" else \
        helper.make_node("ReduceMean", ["s"], ["e"], name="/ffn/ReduceMean", axes=[1])
    nodes += [helper.make_node("Div", ["x1", "sqrt2"], ["s"], name="/ffn/Div"), gate,
              helper.make_node("Add", ["e", "one"], ["a"], name="/ffn/Add"),
              helper.make_node("Mul", ["x1", "a"], ["m"], name="/ffn/Mul"),
              helper.make_node("Mul", ["m", "half"], ["g"], name="/ffn/Mul_1"),
              helper.make_node("Mul", ["g", "x2"], ["gated"], name="/ffn/Mul_2"),
              helper.make_node("Conv", ["gated", "w_out"], ["output"], name="/ffn/project_out/Conv", kernel_shape=[1, 1])]
    return _model(nodes, inits, channels, opset=17)


@pytest.mark.parametrize("split", ["Slice", "Split"])
def test_ffn_hidden_width_is_padded_with_zero_weights(split):
    before = _gdfn_graph(split=split)
    after = _copy(before)
    assert ffn_channel_pad(after) == 1
    convs = {n.name: n for n in after.graph.node if n.op_type == "Conv"}
    weights = {i.name: numpy_helper.to_array(i) for i in after.graph.initializer}
    assert weights[convs["/ffn/project_in/Conv"].input[1]].shape == (32, 8, 1, 1)
    assert weights[convs["/ffn/dwconv/Conv"].input[1]].shape == (32, 1, 3, 3)
    assert {a.name: a.i for a in convs["/ffn/dwconv/Conv"].attribute}["group"] == 32
    w_out = weights[convs["/ffn/project_out/Conv"].input[1]]
    assert w_out.shape == (8, 16, 1, 1) and not w_out[:, 5:].any()
    _same_outputs(before, after, 8)


def test_ffn_padding_needs_an_elementwise_gate():
    model = _gdfn_graph(gate_op="ReduceMean")  # a channel reduction would see the padded channels
    assert ffn_channel_pad(model) == 0


def test_ffn_width_already_aligned_is_left_alone():
    model = _gdfn_graph(hidden=16)
    assert ffn_channel_pad(model) == 0


# -- chunk(k) after a projection and its depthwise conv ------------------------------------------
@pytest.mark.parametrize("split", ["Slice", "Split"])
def test_ffn_halves_become_two_convolutions(split):
    before = _gdfn_graph(split=split)
    after = _copy(before)
    assert chunk_to_convs(after) == 1
    assert "Slice" not in _ops(after) and "Split" not in _ops(after)
    convs = [n for n in after.graph.node if n.op_type == "Conv"]
    groups = sorted({a.name: a.i for a in n.attribute}.get("group", 1) for n in convs)
    assert groups == [1, 1, 1, 5, 5]  # two projections, two depthwise convs of 5 channels, project_out
    _same_outputs(before, after, 8)


def test_ffn_padding_then_halves():
    before = _gdfn_graph()
    after = _copy(before)
    assert ffn_channel_pad(after) == 1 and chunk_to_convs(after) == 1
    depthwise = [n for n in after.graph.node if {a.name: a.i for a in n.attribute}.get("group", 1) > 1]
    assert [{a.name: a.i for a in n.attribute}["group"] for n in depthwise] == [16, 16]
    _same_outputs(before, after, 8)


def _qkv_graph(channels=8, read_twice=False):
    """MDTA's ``qkv_dwconv(qkv(x)).chunk(3, dim=1)``, the three parts used unequally."""
    rng = np.random.default_rng(8)
    three = 3 * channels
    bounds = [np.array([v], np.int64) for v in (0, channels, 2 * channels, three)]
    inits = {"w": _weight(rng, three, channels, 1, 1), "b": _weight(rng, three), "wd": _weight(rng, three, 1, 3, 3),
             "axis": np.array([1], np.int64), **{f"o{i}": v for i, v in enumerate(bounds)}}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["p"], name="/attn/qkv/Conv", kernel_shape=[1, 1]),
             helper.make_node("Conv", ["p", "wd"], ["d"], name="/attn/qkv_dwconv/Conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], group=three)]
    nodes += [helper.make_node("Slice", ["d", f"o{i}", f"o{i + 1}", "axis"], [name], name=f"/attn/Slice_{i}")
              for i, name in enumerate(("q", "k", "v"))]
    nodes += [helper.make_node("Mul", ["q", "k"], ["qk"], name="/attn/Mul"),
              helper.make_node("Sub", ["qk", "v"], ["mixed" if read_twice else "output"], name="/attn/Sub")]
    if read_twice:  # the whole of the depthwise conv's output is read too
        nodes += [helper.make_node("ReduceMean", ["d"], ["dm"], name="/attn/ReduceMean", axes=[1]),
                  helper.make_node("Add", ["mixed", "dm"], ["output"], name="/attn/Add")]
    return _model(nodes, inits, channels)


def test_qkv_chunks_become_three_convolutions():
    before = _qkv_graph()
    after = _copy(before)
    assert chunk_to_convs(after) == 1
    assert "Slice" not in _ops(after) and _ops(after).count("Conv") == 6
    _same_outputs(before, after, 8)


def test_chunks_of_a_tensor_read_elsewhere_stay():
    model = _qkv_graph(read_twice=True)
    assert chunk_to_convs(model) == 0
    assert _ops(model).count("Slice") == 3


# -- Transpose(MatMul(a, W)) ---------------------------------------------------------------------
def _query_graph(entries=4, width=16, channels=8):
    """The degradation query's tail: softmax over NDR entries, ``@ ndr``, ``.transpose(1, 2)``."""
    rng = np.random.default_rng(9)
    inits = {"to3": np.array([0, channels, -1], np.int64), "wq": _weight(rng, 1, channels, entries),
             "ndr": _weight(rng, 1, entries, width, scale=1.0)}
    nodes = [helper.make_node("Reshape", ["input", "to3"], ["flat"], name="/q/Reshape"),
             helper.make_node("Transpose", ["flat"], ["pix"], name="/q/Transpose", perm=[0, 2, 1]),
             helper.make_node("MatMul", ["pix", "wq"], ["logits"], name="/q/MatMul"),
             helper.make_node("Softmax", ["logits"], ["attn"], name="/q/Softmax", axis=-1),
             helper.make_node("MatMul", ["attn", "ndr"], ["d"], name="/q/MatMul_1"),
             helper.make_node("Transpose", ["d"], ["output"], name="/q/Transpose_1", perm=[0, 2, 1])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", width, None])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_transpose_of_a_widening_product_moves_to_the_operand():
    before = _query_graph()
    after = _copy(before)
    assert matmul_transpose(after) == 1
    (last,) = [n for n in after.graph.node if "output" in n.output]
    assert last.op_type == "MatMul"
    weight = next(numpy_helper.to_array(i) for i in after.graph.initializer if i.name == last.input[0])
    assert weight.shape == (1, 16, 4)
    _same_outputs(before, after, 8)


def test_transpose_of_a_narrowing_product_stays():
    model = _query_graph(entries=16, width=4)
    assert matmul_transpose(model) == 0


# -- shape arithmetic ---------------------------------------------------------------------------
def _attention_reshapes(channels=8, heads=2):
    """The transposed attention's reshapes as traced: (N,C,H,W) -> (N,heads,C/heads,H,W) ->
    (N,heads,C/heads,H*W) through Shape/Slice/Concat, a matmul, and back to x.shape through
    Shape/Gather/Unsqueeze/Concat."""
    rng = np.random.default_rng(6)
    inits = {"w": _weight(rng, channels, channels, 1, 1), "i0": np.array([0], np.int64),
             "i1": np.array([1], np.int64), "i2": np.array([2], np.int64), "i3": np.array([3], np.int64),
             "big": np.array([np.iinfo(np.int64).max], np.int64), "hc": np.array([heads, -1], np.int64),
             "m1": np.array([-1], np.int64), "g0": np.array(0, np.int64), "g2": np.array(2, np.int64),
             "g3": np.array(3, np.int64), "c": np.array([channels], np.int64)}
    nodes = [
        helper.make_node("Conv", ["input", "w"], ["x"], name="/attn/qkv/Conv", kernel_shape=[1, 1]),
        helper.make_node("Shape", ["x"], ["s1"], name="/attn/Shape_1"),
        helper.make_node("Slice", ["s1", "i0", "i1"], ["lead"], name="/attn/Slice_3"),
        helper.make_node("Slice", ["s1", "i2", "big"], ["tail"], name="/attn/Slice_4"),
        helper.make_node("Concat", ["lead", "hc", "tail"], ["t1"], name="/attn/Concat", axis=0),
        helper.make_node("Reshape", ["x", "t1"], ["r1"], name="/attn/Reshape_2"),
        helper.make_node("Shape", ["r1"], ["s2"], name="/attn/Shape_2"),
        helper.make_node("Slice", ["s2", "i0", "i3"], ["lead3"], name="/attn/Slice_5"),
        helper.make_node("Concat", ["lead3", "m1"], ["t2"], name="/attn/Concat_1", axis=0),
        helper.make_node("Reshape", ["r1", "t2"], ["q"], name="/attn/Reshape_3"),
        helper.make_node("Transpose", ["q"], ["kt"], name="/attn/Transpose", perm=[0, 1, 3, 2]),
        helper.make_node("MatMul", ["q", "kt"], ["attn"], name="/attn/MatMul"),
        helper.make_node("MatMul", ["attn", "q"], ["out"], name="/attn/MatMul_1"),
        helper.make_node("Shape", ["x"], ["s3"], name="/attn/Shape_9"),
        helper.make_node("Gather", ["s3", "g0"], ["n"], name="/attn/Gather_1", axis=0),
        helper.make_node("Gather", ["s3", "g2"], ["h"], name="/attn/Gather_3", axis=0),
        helper.make_node("Gather", ["s3", "g3"], ["w_"], name="/attn/Gather_4", axis=0),
        helper.make_node("Unsqueeze", ["n", "i0"], ["nu"], name="/attn/Unsqueeze"),
        helper.make_node("Unsqueeze", ["h", "i0"], ["hu"], name="/attn/Unsqueeze_2"),
        helper.make_node("Unsqueeze", ["w_", "i0"], ["wu"], name="/attn/Unsqueeze_3"),
        helper.make_node("Concat", ["nu", "c", "hu", "wu"], ["t3"], name="/attn/Concat_6", axis=0),
        helper.make_node("Reshape", ["out", "t3"], ["output"], name="/attn/Reshape_12"),
    ]
    return _model(nodes, inits, channels)


def test_static_reshape_removes_the_shape_arithmetic():
    before = _attention_reshapes()
    after = _copy(before)
    assert static_reshape(after) >= 3
    ops = _ops(after)
    assert "Gather" not in ops and "Concat" not in ops and "Slice" not in ops and "Unsqueeze" not in ops
    reshapes = [n for n in after.graph.node if n.op_type == "Reshape"]
    consts = {i.name: numpy_helper.to_array(i).tolist() for i in after.graph.initializer}
    # (N,C,H,W) -> (N, heads, C/heads, H*W) in one Reshape with a constant 0/-1 target ...
    assert consts.get(reshapes[0].input[1]) == [0, 2, 4, -1]
    # ... and back to x's shape through one Shape(x)
    assert ops.count("Shape") == 1 and reshapes[-1].input[1] == next(
        n.output[0] for n in after.graph.node if n.op_type == "Shape")
    _same_outputs(before, after, 8)


def test_static_reshape_keeps_targets_it_cannot_prove():
    # a target built from H alone ((N, C*W, H) from (N, C, H, W)) has no 0/-1 form and no tensor of
    # that shape to take Shape() of: it stays computed
    rng = np.random.default_rng(7)
    inits = {"w": _weight(rng, 4, 4, 1, 1), "g0": np.array(0, np.int64), "g2": np.array(2, np.int64),
             "i0": np.array([0], np.int64), "m1": np.array([-1], np.int64)}
    nodes = [helper.make_node("Conv", ["input", "w"], ["x"], name="conv", kernel_shape=[1, 1]),
             helper.make_node("Transpose", ["x"], ["xt"], name="t", perm=[0, 1, 3, 2]),
             helper.make_node("Shape", ["x"], ["s"], name="shape"),
             helper.make_node("Gather", ["s", "g0"], ["n"], name="g_n", axis=0),
             helper.make_node("Gather", ["s", "g2"], ["h"], name="g_h", axis=0),
             helper.make_node("Unsqueeze", ["n", "i0"], ["nu"], name="u_n"),
             helper.make_node("Unsqueeze", ["h", "i0"], ["hu"], name="u_h"),
             helper.make_node("Concat", ["nu", "m1", "hu"], ["target"], name="cat", axis=0),
             helper.make_node("Reshape", ["xt", "target"], ["r"], name="reshape"),
             helper.make_node("Reshape", ["r", "s"], ["output"], name="back")]
    before = _model(nodes, inits, 4)
    after = _copy(before)
    static_reshape(after)
    assert "Gather" in _ops(after)
    _same_outputs(before, after, 4, atol=0)


# -- Downsample: conv, then PixelUnshuffle -----------------------------------------------------
def _downsample_graph(perm=(0, 1, 3, 5, 2, 4), channels=8):
    """Conv3x3 C -> C/2, then PixelUnshuffle(2) as torch traces it (after static_reshape)."""
    rng = np.random.default_rng(10)
    half = channels // 2
    inits = {"w": _weight(rng, half, channels, 3, 3), "b": _weight(rng, half), "u": np.array([3], np.int64),
             "t1": np.array([0, 0, -1, 2, 0], np.int64), "t2": np.array([0, 0, 0, 0, -1, 2], np.int64),
             "t3": np.array([0, -1, 1, 1, 0, 0], np.int64), "sq": np.array([2, 3], np.int64)}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["y"], name="/pool/body.0/Conv", kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Unsqueeze", ["y", "u"], ["y5"], name="/pool/body.1/Unsqueeze"),
             helper.make_node("Reshape", ["y5", "t1"], ["r1"], name="/pool/body.1/Reshape"),
             helper.make_node("Reshape", ["r1", "t2"], ["r2"], name="/pool/body.1/Reshape_1"),
             helper.make_node("Transpose", ["r2"], ["tr"], name="/pool/body.1/Transpose", perm=list(perm)),
             helper.make_node("Reshape", ["tr", "t3"], ["r3"], name="/pool/body.1/Reshape_2"),
             helper.make_node("Squeeze", ["r3", "sq"], ["output"], name="/pool/body.1/Squeeze")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 2 * channels, None, None])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_conv_then_pixel_unshuffle_becomes_one_strided_conv():
    before = _downsample_graph()
    after = _copy(before)
    assert pixel_unshuffle_conv(after) == 1
    (conv,) = after.graph.node
    attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
    assert conv.op_type == "Conv" and attrs["strides"] == [2, 2] and attrs["kernel_shape"] == [4, 4]
    assert attrs["pads"] == [1, 1, 1, 1] and list(conv.output) == ["output"]
    _same_outputs(before, after, 8)


def test_other_channel_orders_are_not_pixel_unshuffle():
    before = _downsample_graph(perm=(0, 1, 5, 3, 2, 4))  # rows and columns of the 2x2 cell swapped
    after = _copy(before)
    assert pixel_unshuffle_conv(after) == 0
    assert "Transpose" in _ops(after)


# -- symbolic value_info ----------------------------------------------------------------------
def test_symbolic_shapes_name_the_dims_after_the_input():
    model = _downsample_graph()
    assert symbolic_shapes(model) == 6
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    assert dims["y"] == ["n", 4, "h", "w"]
    assert dims["r2"] == ["n", 4, "h/2", 2, "w/2", 2]
    assert dims["r3"] == ["n", 16, 1, 1, "h/2", "w/2"]
    before = _downsample_graph()
    _same_outputs(before, model, 8, atol=0)


# -- all passes on a traced member of the family -------------------------------------------------
@pytest.fixture(scope="module")
def micro():
    """A micro NDR-Restore (dim 8, one block per level, LayerNorm affine and exit conv random)
    traced and simplified as the exporter does; (module, simplified graph)."""
    import torch

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.export.onnx_export import OnnxExportOptions, export_onnx, restoration_graph
    from ndr_edge.export.simplify import simplify
    from ndr_edge.model import NDRConfig, NDRRestore
    from ndr_edge.model.blocks import LayerNorm

    torch.manual_seed(0)
    config = NDRConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1, heads=(1, 2, 2, 2), degrad_dim=8)
    model = NDRRestore(config, with_degradation_net=False)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LayerNorm):
                module.body.weight.add_(0.2 * torch.randn_like(module.body.weight))
                module.body.bias.add_(0.2 * torch.randn_like(module.body.bias))
    graph = restoration_graph(model.eval())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = export_onnx(graph, ArtifactMeta(preset=None), OnnxExportOptions(trace_size=(32, 32)))
    result = simplify(traced)
    assert result.simplified
    return graph, result.model


def test_speed_up_on_a_traced_model(micro):
    import torch

    from ndr_edge.export.opcheck import check_model

    module, before = micro
    assert DEFAULT_PASSES == tuple(PASSES)  # every pass (OpenVINO reads the INT8 form per input shape)
    result = speed_up(before, DEFAULT_PASSES, size_multiple=8)
    after = result.model
    assert not result.errors
    assert all(result.counts.values()), result.counts
    assert result.nodes_after == len(after.graph.node) < result.nodes_before == len(before.graph.node)
    assert before.graph.node[0].op_type != "LayerNormalization"  # the input model is left untouched
    counts = result.op_counts
    norms = 2 * 8  # two per transformer block: 1+1+1 encoder, 1 bottleneck, 1+1+1 decoder, 1 refinement
    assert counts["LayerNormalization"] == norms == result.counts["channel_layernorm"]
    # each norm had two channel means; the low-rank transform's means (axes 2 and 3) stay
    assert counts["ReduceMean"] == sum(n.op_type == "ReduceMean" for n in before.graph.node) - 2 * norms > 0
    assert result.counts["ffn_channel_pad"] == 8  # hidden 21, 42, 85, 170: none a multiple of 16
    assert result.counts["chunk_to_convs"] == 16  # every FFN's halves and every attention's q, k, v
    assert result.counts["matmul_transpose"] == 3  # the degradation query of each skip: 32 -> 128
    assert result.counts["pixel_unshuffle_conv"] == 3  # the three Downsamples
    assert result.counts["symbolic_shapes"] == len(after.graph.value_info) > 0
    value_dims = {d.dim_param for v in after.graph.value_info for d in v.type.tensor_type.shape.dim}
    assert {"batch", "height", "width", "height/2", "width/8"} <= value_dims
    assert "Slice" not in counts and "Split" not in counts
    assert "Expand" not in counts and "Gather" not in counts
    assert counts.get("Shape", 0) < sum(n.op_type == "Shape" for n in before.graph.node) // 2
    # the metadata (what the runtime reads) travels with the graph
    assert {p.key: p.value for p in after.metadata_props} == {p.key: p.value for p in before.metadata_props}
    assert check_model(after).ok
    onnx.checker.check_model(after, full_check=True)
    # same outputs as the graph before, and as PyTorch, at two heights/widths and batches
    for n, h, w in SIZES:
        x = np.random.default_rng(h).random((n, 3, h, w), dtype=np.float32)
        with torch.inference_mode():
            reference = module(torch.from_numpy(x)).numpy()
        got = _run(after, x)
        np.testing.assert_allclose(got, _run(before, x), rtol=0, atol=1e-5)
        np.testing.assert_allclose(got, reference, rtol=0, atol=1e-4)


def test_speed_up_is_deterministic(micro):
    _, before = micro
    first = speed_up(before).model.SerializeToString(deterministic=True)
    assert speed_up(before).model.SerializeToString(deterministic=True) == first


def test_speed_up_rejects_unknown_passes(micro):
    with pytest.raises(ValueError, match="unknown graph pass"):
        speed_up(micro[1], ("no_such_pass",))


def test_fp16_rules_keep_the_rewritten_layernorms_in_fp32(micro):
    from ndr_edge.export.fp16 import sensitive_nodes

    after = speed_up(micro[1], ("channel_layernorm",)).model
    kept = {item["node"] for item in sensitive_nodes(after)}
    norms = [n.name for n in after.graph.node if n.op_type == "LayerNormalization"]
    assert norms and set(norms) <= kept
