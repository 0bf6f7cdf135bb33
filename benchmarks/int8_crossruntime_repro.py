"""Issue 11: OpenVINO and ONNX Runtime disagree on our INT8 (QDQ) graph. Minimal reproduction.

Run (single-threaded, about a minute on two cores)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/int8_crossruntime_repro.py

Part A builds three hand-made onnx.helper graphs and compares OpenVINO (CPU) with ONNX
Runtime with every graph optimisation off, which computes exactly what the ONNX Q/DQ
semantics say (float DequantizeLinear, float op, QuantizeLinear). Each shows one OpenVINO
CPU behaviour that breaks those semantics:

A1  int16 saturation on CPUs without VNNI (AVX2 / AVX-512 without VNNI): an INT8 Conv
    whose weights use the full [-127, 127] range gives wrong results; the same Conv with
    7-bit weights ([-63, 63], what ``reduce_range=True`` gives) is bit-exact. Documented by
    OpenVINO ("Saturation (overflow) issue workaround"); VNNI/AMX CPUs are not affected.
A2  the same saturation in an activation x activation MatMul (both inputs Q/DQ, values in
    [0, 1]): ``reduce_range`` only narrows weights, so such MatMuls must stay float.
A3  an OpenVINO bug, independent of the CPU's instruction set: in a model with a dynamic
    input shape, a biased Conv followed by QuantizeLinear/DequantizeLinear whose output
    also feeds a Shape -> Reshape gets bias[0] added to every output channel. Static input
    shape, no bias, or no Q/DQ on the Conv output: exact. Float weights and input: still wrong.
A4  a second dynamic-shape bug: r = Conv(Q/DQ(x)) with INT8 weights and no bias, used
    both as a residual and as the input of a second Conv (bias or not), y = r + Conv(Relu(r)),
    comes out wrong (18.7 dB from ONNX Runtime here); the same graph reshaped to a static
    input shape before compiling, or with a float input, is exact. It is what broke the NDR INT8
    graph after export/graph_speed.py's pixel_unshuffle_conv (Downsample's conv output then
    feeds the next level's norm and its residual Add directly): 35.8 dB from ONNX Runtime at a
    dynamic shape, 53.5 dB static. runtime/openvino_backend.py compiles per input shape.

Part B exports a tiny untrained ``ndr-edge-xs`` (random weights, random exit conv, as
tests/models.py), 64x64, dynamic axes, onnxsim, quantises it with the settings of
calibration/quantize.py (QDQ on Conv and MatMul, per-channel symmetric INT8 weights,
symmetric INT8 activations, entropy calibration, depthwise convs float) and then with the
fixed call, and prints ORT-vs-OpenVINO and INT8-vs-FP32 PSNR for each, plus one row per fix
left out.

The fixed call (what calibration/quantize.py should pass to ``quantize_static``)::

    reduce_range=True                                    # 7-bit weights (A1)
    nodes_to_exclude += MatMuls whose B is not constant  # activation x activation (A2)
    extra_options["OpTypesToExcludeOutputQuantization"] = ["Conv", "MatMul"]   # (A3)
    # and the 3-D constant MatMul weights (the NDR, [1, K, N]) squeezed to [K, N] before
    # quantising, so per-channel axis 1 is the output axis N: with axis 1 on [1, K, N] the
    # scales run along the reduction axis K and, once the MatMul outputs lose their Q/DQ,
    # ONNX Runtime's MatMulIntegerToFloat fusion refuses the graph ("b zero point is not valid").

Creates files only under a temporary folder. Nothing in the repository is modified.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import contextlib
import io
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import openvino as ov
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from ndr_edge.runtime.openvino_backend import open_core

warnings.simplefilter("ignore")
logging.getLogger().setLevel(logging.ERROR)
ort.set_default_logger_severity(4)
CORE = open_core()  # keeps the thread's signal stack (ndr_edge/signal_stack.py)
SIZE = 64


# -- runtimes ---------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def run_ort(path: str, feeds: dict, optimise: bool = True, output: int = 0) -> np.ndarray:
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 4
    if not optimise:  # the ONNX reference semantics (no fusion into integer kernels)
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run([sess.get_outputs()[output].name], feeds)[0]


def run_ov(path: str, x: np.ndarray, static: bool = False, output: int = 0) -> np.ndarray:
    model = CORE.read_model(path)
    if static:
        model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
    compiled = CORE.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"})
    return compiled({0: x})[compiled.outputs[output]]


def db(v: float) -> str:
    return "bit-exact" if v == float("inf") else f"{v:6.2f} dB"


def fmt(v: float) -> str:
    return "  exact" if v == float("inf") or v > 120 else f"{v:7.2f}"


# -- part A: hand-built graphs ------------------------------------------------------------
def _qdq(nodes: list, inits: list, src: str, dst: str, scale: float) -> None:
    inits += [nh.from_array(np.array(scale, np.float32), dst + "_s"), nh.from_array(np.array(0, np.int8), dst + "_z")]
    nodes += [
        h.make_node("QuantizeLinear", [src, dst + "_s", dst + "_z"], [dst + "_q"]),
        h.make_node("DequantizeLinear", [dst + "_q", dst + "_s", dst + "_z"], [dst]),
    ]


def _save(path: Path, nodes: list, inits: list, inputs: list, outputs: list) -> str:
    model = h.make_model(h.make_graph(nodes, "repro", inputs, outputs, inits), opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


def conv_graph(
    path: Path,
    cin: int = 16,
    wmax: int = 127,
    bias: bool = True,
    qdq_in: bool = True,
    qdq_out: bool = True,
    shape_reshape: bool = False,
    dynamic: bool = False,
    seed: int = 0,
) -> str:
    """x -> [Q/DQ] -> Conv(3x3, per-channel Q/DQ INT8 weights, float bias) -> [Q/DQ] -> y;
    optionally also y -> Shape -> Slice/Concat -> Reshape (as the attention reshapes do)."""
    rng = np.random.default_rng(seed)
    cout = 16
    w = rng.normal(0, 0.2, (cout, cin, 3, 3)).astype(np.float32)
    ws = (np.abs(w).reshape(cout, -1).max(1) / wmax).astype(np.float32)
    wq = np.clip(np.round(w / ws[:, None, None, None]), -127, 127).astype(np.int8)
    nodes: list = []
    inits = [nh.from_array(wq, "wq"), nh.from_array(ws, "ws"), nh.from_array(np.zeros(cout, np.int8), "wz")]
    nodes.append(h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0))
    src = "x"
    if qdq_in:
        _qdq(nodes, inits, "x", "xd", 1 / 127)
        src = "xd"
    conv_in = [src, "w"]
    if bias:
        inits.append(nh.from_array(rng.normal(0, 0.1, cout).astype(np.float32), "b"))
        conv_in.append("b")
    nodes.append(h.make_node("Conv", conv_in, ["c"], pads=[1, 1, 1, 1]))
    if qdq_out:
        _qdq(nodes, inits, "c", "y", 0.01)
    else:
        nodes.append(h.make_node("Identity", ["c"], ["y"]))
    dims = ["N", cin, "H", "W"] if dynamic else [1, cin, 16, 16]
    outputs = [h.make_tensor_value_info("y", T.FLOAT, [dims[0], cout, dims[2], dims[3]])]
    if shape_reshape:
        inits += [
            nh.from_array(np.array([0], np.int64), "i0"),
            nh.from_array(np.array([1], np.int64), "i1"),
            nh.from_array(np.array([2], np.int64), "i2"),
            nh.from_array(np.array([4], np.int64), "i4"),
            nh.from_array(np.array([1, -1], np.int64), "hm"),
        ]
        nodes += [
            h.make_node("Shape", ["y"], ["sh"]),
            h.make_node("Slice", ["sh", "i0", "i1"], ["n"]),
            h.make_node("Slice", ["sh", "i2", "i4"], ["hw"]),
            h.make_node("Concat", ["n", "hm", "hw"], ["ns"], axis=0),
            h.make_node("Reshape", ["y", "ns"], ["r"]),
        ]
        outputs.append(h.make_tensor_value_info("r", T.FLOAT, ["a", "b", "c", "d", "e"]))
    return _save(path, nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, dims)], outputs)


def matmul_graph(path: Path, k: int = 16) -> str:
    """Two activations in [0, 1], each Q/DQ (symmetric INT8, scale 1/127), multiplied: (64 x k) @ (k x 256)."""
    nodes: list = []
    inits: list = []
    _qdq(nodes, inits, "a", "ad", 1 / 127)
    _qdq(nodes, inits, "b", "bd", 1 / 127)
    nodes.append(h.make_node("MatMul", ["ad", "bd"], ["y"]))
    return _save(
        path,
        nodes,
        inits,
        [h.make_tensor_value_info("a", T.FLOAT, [1, 64, k]), h.make_tensor_value_info("b", T.FLOAT, [1, k, 256])],
        [h.make_tensor_value_info("y", T.FLOAT, [1, 64, 256])],
    )


def residual_graph(path: Path, dynamic: bool = True, qdq_in: bool = True, bias2: bool = True, seed: int = 0) -> str:
    """x -> [Q/DQ] -> Conv(3x3, INT8 weights, no bias) = r;  y = r + Conv1x1(Relu(r)) [+ bias] (A4)."""
    rng = np.random.default_rng(seed)
    c = 16
    w = rng.normal(0, 0.2, (c, c, 3, 3)).astype(np.float32)
    ws = (np.abs(w).reshape(c, -1).max(1) / 63).astype(np.float32)
    inits = [nh.from_array(np.clip(np.round(w / ws[:, None, None, None]), -63, 63).astype(np.int8), "wq"),
             nh.from_array(ws, "ws"), nh.from_array(np.zeros(c, np.int8), "wz"),
             nh.from_array(rng.normal(0, 0.2, (c, c, 1, 1)).astype(np.float32), "w2")]
    nodes: list = [h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0)]
    src = "x"
    if qdq_in:
        _qdq(nodes, inits, "x", "xd", 1 / 127)
        src = "xd"
    conv2_in = ["h", "w2"]
    if bias2:
        inits.append(nh.from_array(rng.normal(0, 0.2, c).astype(np.float32), "b2"))
        conv2_in.append("b2")
    nodes += [h.make_node("Conv", [src, "w"], ["r"], pads=[1, 1, 1, 1]), h.make_node("Relu", ["r"], ["h"]),
              h.make_node("Conv", conv2_in, ["a"]), h.make_node("Add", ["r", "a"], ["y"])]
    dims = ["N", c, "H", "W"] if dynamic else [1, c, 32, 32]
    return _save(path, nodes, inits, [h.make_tensor_value_info("x", T.FLOAT, dims)],
                 [h.make_tensor_value_info("y", T.FLOAT, dims)])


def part_a(work: Path) -> None:
    rng = np.random.default_rng(1)
    print("A. hand-built graphs: PSNR of OpenVINO against ONNX Runtime without optimisation (ONNX semantics)")
    for cin in (3, 16):
        x = rng.uniform(0, 1, (1, cin, 16, 16)).astype(np.float32)
        row = []
        for wmax in (127, 63):
            p = conv_graph(work / "a1.onnx", cin=cin, wmax=wmax, bias=False, qdq_out=False)
            row.append(psnr(run_ort(p, {"x": x}, optimise=False), run_ov(p, x)))
        print(
            f"  A1 INT8 Conv {cin:2d}->16, weights in [-127,127]: {db(row[0])}   in [-63,63] (reduce_range): "
            f"{db(row[1])}"
        )
    p = matmul_graph(work / "a2.onnx")
    model = CORE.compile_model(CORE.read_model(p), "CPU", {"INFERENCE_NUM_THREADS": 1})
    for bmax, what in ((1.0, "B in [0,1]   (B codes 0..127)"), (0.49, "B in [0,0.49] (B codes 0..62)")):
        a = rng.uniform(0, 1, (1, 64, 16)).astype(np.float32)
        b = (rng.uniform(0, 1, (1, 16, 256)) * bmax).astype(np.float32)
        ref = run_ort(p, {"a": a, "b": b}, optimise=False)
        got = model({"a": a, "b": b})[model.outputs[0]]
        print(
            f"  A2 activation x activation Q/DQ MatMul, K=16, A in [0,1], {what}: {db(psnr(ref / 16, got / 16))} "
            f"(max rel. error {np.abs(ref - got).max() / np.abs(ref).max():.2g})"
        )
    x = rng.uniform(0, 1, (1, 3, 16, 16)).astype(np.float32)
    cases = [
        ("dynamic N,H,W + Shape->Reshape", {"dynamic": True, "shape_reshape": True}),
        ("static shapes  + Shape->Reshape", {"dynamic": False, "shape_reshape": True}),
        ("dynamic, no Shape->Reshape", {"dynamic": True}),
        ("dynamic + Shape->Reshape, no bias", {"dynamic": True, "shape_reshape": True, "bias": False}),
        ("dynamic + Shape->Reshape, no output Q/DQ", {"dynamic": True, "shape_reshape": True, "qdq_out": False}),
        ("dynamic + Shape->Reshape, float input", {"dynamic": True, "shape_reshape": True, "qdq_in": False}),
    ]
    for name, kw in cases:
        p = conv_graph(work / "a3.onnx", cin=3, wmax=63, **kw)  # 7-bit weights: no saturation
        ref, got = run_ort(p, {"x": x}, optimise=False), run_ov(p, x)
        line = f"  A3 biased Conv -> Q/DQ, {name:42s}: {db(psnr(ref, got))}"
        if kw.get("bias", True) and psnr(ref, got) < 60:
            bias = nh.to_array(next(i for i in onnx.load(p).graph.initializer if i.name == "b"))
            offset = (got - ref).mean(axis=(0, 2, 3))
            line += f"  (error per channel == bias[0] - bias[c]: max dev {np.abs(offset - (bias[0] - bias)).max():.4f})"
        print(line)
    x = rng.uniform(-1, 1, (1, 16, 32, 32)).astype(np.float32)
    for name, kw, static in [
        ("dynamic N,H,W", {}, False),
        ("the same graph reshaped static before compiling", {}, True),
        ("static shapes in the file", {"dynamic": False}, False),
        ("dynamic, float input (no Q/DQ)", {"qdq_in": False}, False),
        ("dynamic, second Conv without bias", {"bias2": False}, False),
    ]:
        p = residual_graph(work / "a4.onnx", **kw)
        ref, got = run_ort(p, {"x": x}, optimise=False), run_ov(p, x, static=static)
        peak = float(np.abs(ref).max())
        print(f"  A4 INT8 Conv as residual + input of a biased Conv, {name:48s}: {db(psnr(ref / peak, got / peak))}")


# -- part B: the tiny real architecture ---------------------------------------------------------
def export_tiny(path: Path) -> None:
    import torch

    from ndr_edge.model import NDRRestore, RestorationOnly, get_preset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = NDRRestore(get_preset("ndr-edge-xs")).eval()
    exit_conv = model.restoration_net.reconstruction  # as tests/models.py: not the identity at start
    torch.nn.init.normal_(exit_conv.weight, std=0.05)
    torch.nn.init.normal_(exit_conv.bias, std=0.01)
    net = RestorationOnly(model.restoration_net).eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            net,
            torch.rand(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)),
            str(path),
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": axes, "output": axes},
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,
        )
    import onnxsim  # the export pipeline's simplify stage

    simplified, ok = onnxsim.simplify(onnx.load(str(path)))
    if ok:
        onnx.save(simplified, str(path))


def noisy_crops(count: int, split: str, seed: int) -> list[np.ndarray]:
    from ndr_edge.imageio import demo_images

    rng = np.random.default_rng(seed)
    images = demo_images(split)
    crops = []
    for i in range(count):
        img = images[i % len(images)][1]
        y, x = rng.integers(0, img.shape[0] - SIZE), rng.integers(0, img.shape[1] - SIZE)
        crop = img[y : y + SIZE, x : x + SIZE, ::-1].astype(np.float32) / 255.0  # BGR, as the artifacts
        crop = np.clip(crop + rng.normal(0, 25 / 255, crop.shape), 0, 1).astype(np.float32)
        crops.append(np.ascontiguousarray(crop.transpose(2, 0, 1)[None]))
    return crops


class Reader:
    def __init__(self, batches: list[np.ndarray]) -> None:
        self.batches = iter(batches)

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {"input": batch}


def squeeze_matmul_weights(model: onnx.ModelProto) -> list[str]:
    """Constant MatMul B operands of shape [1, K, N] -> [K, N] (same product by broadcasting)."""
    graph = model.graph
    uses: dict[str, list] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, index))
    done = []
    for init in graph.initializer:
        users = uses.get(init.name, [])
        if (
            len(init.dims) == 3
            and init.dims[0] == 1
            and users
            and all(n.op_type == "MatMul" and i == 1 for n, i in users)
        ):
            init.CopyFrom(nh.from_array(nh.to_array(init)[0], init.name))
            done.append(init.name)
    keep = [v for v in graph.value_info if v.name not in done]
    del graph.value_info[:]
    graph.value_info.extend(keep)
    return done


def float_inputs(model: onnx.ModelProto, exclude: set[str]) -> None:
    """As calibration/quantize.py: excluded nodes read x, not DQ(Q(x)); unread Q/DQ dropped."""
    graph = model.graph
    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name for i in graph.initializer}
    for node in graph.node:
        if node.name in exclude:
            for k, name in enumerate(node.input):
                dq = producers.get(name)
                if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] not in inits:
                    q = producers.get(dq.input[0])
                    if q is not None and q.op_type == "QuantizeLinear":
                        node.input[k] = q.input[0]
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [
            n
            for n in graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in read for o in n.output)
        ]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)


def quantize(
    pre: Path,
    out: Path,
    calib: list[np.ndarray],
    *,
    fixed_axis: bool,
    reduce_range: bool,
    float_actact: bool,
    no_output_qdq: bool,
    op_types: tuple[str, ...] = ("Conv", "MatMul"),
) -> None:
    """quantize_static with calibration/quantize.py's settings, plus the given fixes."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    model = onnx.load(str(pre))
    if fixed_axis:
        squeeze_matmul_weights(model)
    src = out.with_suffix(".src.onnx")
    onnx.save(model, str(src))
    inits = {i.name for i in model.graph.initializer}
    exclude = [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    ]  # float_depthwise
    if float_actact:
        exclude += [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in inits]
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "CalibPercentile": 99.999}
    if no_output_qdq:
        extra["OpTypesToExcludeOutputQuantization"] = ["Conv", "MatMul"]
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(
            str(src),
            str(out),
            Reader(calib),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(op_types),
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.Entropy,
            nodes_to_exclude=exclude,
            extra_options=extra,
        )
    quantized = onnx.load(str(out))
    float_inputs(quantized, set(exclude))
    onnx.save(quantized, str(out))


def part_b(work: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    print(f"\nB. tiny untrained ndr-edge-xs, {SIZE}x{SIZE}, dynamic axes; noisy photo (sigma 25); PSNR in dB")
    fp32, pre = work / "fp32.onnx", work / "fp32-pre.onnx"
    export_tiny(fp32)
    with contextlib.redirect_stdout(io.StringIO()):
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    calib = noisy_crops(4, "train", seed=0)
    x = noisy_crops(1, "heldout", seed=1)[0]
    ref = run_ort(str(fp32), {"input": x})
    all_fixes = {"fixed_axis": True, "reduce_range": True, "float_actact": True, "no_output_qdq": True}
    variants = [
        (
            "project default (issue 11)",
            {"fixed_axis": False, "reduce_range": False, "float_actact": False, "no_output_qdq": False},
        ),
        ("FIXED: all four changes", all_fixes),
        ("fixed, but reduce_range=False", {**all_fixes, "reduce_range": False}),
        ("fixed, but act x act MatMuls INT8", {**all_fixes, "float_actact": False}),
        ("fixed, but Q/DQ on Conv/MatMul outputs", {**all_fixes, "no_output_qdq": False}),
        ("fixed, but NDR weights per-channel on K", {**all_fixes, "fixed_axis": False}),
        (
            "alternative: Q/DQ on Conv only, rr, no out",
            {
                "fixed_axis": False,
                "reduce_range": True,
                "float_actact": False,
                "no_output_qdq": True,
                "op_types": ("Conv",),
            },
        ),
    ]
    print(
        f"  {'variant':43s} {'ORT-vs-OV':>9s} {'ORTref-vs-OV':>12s} {'ORTref-vs-OVst':>14s} {'ORT-vs-FP32':>11s} "
        f"{'ORTref-vs-FP32':>14s} {'OV-vs-FP32':>10s}"
    )
    for name, kw in variants:
        out = work / f"int8-{len(name)}.onnx"
        quantize(pre, out, calib, **kw)
        p = str(out)
        try:
            a = run_ort(p, {"input": x})
            ort_fp32, ort_ov = fmt(psnr(a, ref)), None
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime refuses the graph: report it
            a, ort_fp32 = None, "  fails"
            why = str(exc).strip().splitlines()[-1][-60:]
        a0 = run_ort(p, {"input": x}, optimise=False)
        b, s = run_ov(p, x), run_ov(p, x, static=True)
        ort_ov = fmt(psnr(a, b)) if a is not None else "      -"
        print(
            f"  {name:43s} {ort_ov:>9s} {fmt(psnr(a0, b)):>12s} {fmt(psnr(a0, s)):>14s} {ort_fp32:>11s} "
            f"{fmt(psnr(a0, ref)):>14s} {fmt(psnr(b, ref)):>10s}" + (f"   ORT: ...{why}" if a is None else "")
        )
    print(
        "  ORT = ONNX Runtime, all optimisations (fused integer kernels); ORTref = ONNX Runtime with optimisations off "
        "(ONNX semantics);\n  OV = OpenVINO CPU with the dynamic-shape model; OVst = reshaped to 1x3x64x64 before "
        "compiling."
    )


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    start = time.perf_counter()
    print(
        f"onnxruntime {ort.__version__}, openvino {ov.__version__}, CPU {CORE.get_property('CPU', 'FULL_DEVICE_NAME')}"
    )
    with tempfile.TemporaryDirectory(prefix="int8-xrt-") as tmp:
        part_a(Path(tmp))
        part_b(Path(tmp))
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
