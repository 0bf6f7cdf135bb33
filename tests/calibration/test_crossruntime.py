"""Our INT8 graph means the same in two runtimes: ONNX Runtime (optimised and reference
semantics) and OpenVINO agree on it, and its Q/DQ follow the placement rules that make that
true (7-bit weights, per-channel axes on the output channels, activation-by-activation
MatMuls in float)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.calibration.conftest import CROP

pytest.importorskip("openvino", reason="openvino not installed (pip install 'ndr-edge[openvino]')")


@pytest.fixture(scope="module")
def xs_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ndr-edge-xs architecture (random weights, random exit conv): big enough that
    full-range INT8 sums overflow on CPUs without VNNI, which the micro model does not show."""
    import warnings

    import onnx
    import torch

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.model import RestorationOnly
    from tests.models import untrained

    model = untrained("ndr-edge-xs", with_degradation_net=False)
    path = tmp_path_factory.mktemp("xs") / "xs.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(RestorationOnly(model.restoration_net).eval(), torch.rand(1, 3, CROP, CROP), str(path),
                          input_names=["input"], output_names=["output"], dynamic_axes={"input": axes, "output": axes},
                          opset_version=17, dynamo=False)
    proto = onnx.load(str(path))
    for key, value in ArtifactMeta(preset="ndr-edge-xs", config=model.config.to_dict()).to_props().items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def int8_graph(xs_onnx: Path, calib_dir: Path, eval_samples: list[Any], tmp_path_factory: pytest.TempPathFactory):
    from ndr_edge.calibration import quantize_int8

    out = tmp_path_factory.mktemp("xrt") / "xs-int8.onnx"
    quantize_int8(xs_onnx, out, calibration=calib_dir, budget_db=None, eval_set=eval_samples, progress=False,
                  latency_shape=(1, 3, CROP, CROP), latency_repeats=1, threads=1)
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    from ndr_edge.metrics import psnr_between

    return psnr_between(a, b)


def test_placement_rules(int8_graph: Path) -> None:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(int8_graph)).graph
    producers = {o: n for n in graph.node for o in n.output}
    inits = {i.name: i for i in graph.initializer}
    consumers: dict[str, list[Any]] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    quantised = 0
    for node in graph.node:
        if node.op_type not in ("Conv", "MatMul"):
            continue
        fed = [producers.get(i) for i in node.input[:2]]
        if all(p is not None and p.op_type == "DequantizeLinear" for p in fed):
            quantised += 1
            dq_weight = fed[1]
            values = numpy_helper.to_array(inits[dq_weight.input[0]]) if dq_weight.input[0] in inits else None
            if values is not None:
                assert np.abs(values.astype(np.int32)).max() <= 64, node.name  # reduce_range: 7-bit weights
                axis = next((a.i for a in dq_weight.attribute if a.name == "axis"), 1)
                scales = numpy_helper.to_array(inits[dq_weight.input[1]])
                if scales.size > 1:  # per channel: along the output channels
                    out_axis = 0 if node.op_type == "Conv" else values.ndim - 1
                    assert axis % values.ndim == out_axis, (node.name, axis, values.shape)
    assert quantised > 0
    # no MatMul of two activations takes a quantised input (they overflow 16-bit sums)
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1] not in inits:
            second = producers.get(node.input[1])
            assert second is None or second.op_type != "DequantizeLinear" or second.input[0] in inits, node.name


def test_onnxruntime_and_openvino_agree(int8_graph: Path, xs_onnx: Path, eval_samples: list[Any]) -> None:
    import onnxruntime as ort

    from ndr_edge.runtime.openvino_backend import OpenVinoBackend, OpenVinoSettings

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the ONNX semantics
    options.intra_op_num_threads = 1
    reference = ort.InferenceSession(str(int8_graph), options, providers=["CPUExecutionProvider"])
    fast = ort.InferenceSession(str(int8_graph), providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(xs_onnx), providers=["CPUExecutionProvider"])
    with OpenVinoBackend(int8_graph, OpenVinoSettings(threads=1)) as ov:
        for sample in eval_samples:
            batch = np.ascontiguousarray(sample.lq[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
            ref = reference.run(None, {"input": batch})[0]
            assert _psnr(ov.infer(batch), ref) >= 35.0, sample.name
            assert _psnr(fast.run(None, {"input": batch})[0], ref) >= 35.0, sample.name
            assert _psnr(ref, fp32.run(None, {"input": batch})[0]) >= 25.0  # and it is still the model
