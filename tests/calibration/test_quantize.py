"""quantize_int8 on a micro model with random weights: the graph, the formats, the excluded
layers and the manifest record. (Restoration quality needs trained weights: see the benchmark.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.calibration import CalibrationSet, Quantizer, QuantSettings, quantize_int8
from ndr_edge.calibration.evaluate import open_cpu
from ndr_edge.errors import InputError

from .conftest import CROP, export_micro


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in model.graph.node for out in node.output}


def _is_depthwise(node: onnx.NodeProto) -> bool:
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


def _is_float_layer(model: onnx.ModelProto, name: str) -> bool:
    """The node reads its weight and its activation without DequantizeLinear in front."""
    producers = _producers(model)
    node = next(n for n in model.graph.node if n.name == name)
    initializers = {i.name for i in model.graph.initializer}
    weight = node.input[1]
    feeds = [producers.get(i) for i in node.input[:2]]
    return weight in initializers and not any(p is not None and p.op_type == "DequantizeLinear" for p in feeds)


@pytest.fixture(scope="module")
def full_int8(micro_onnx: Path, calib_dir: Path, eval_samples: list[Any], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("int8") / "micro-int8.onnx"
    result = quantize_int8(micro_onnx, out, calibration=calib_dir, method="minmax", budget_db=None,
                           eval_set=eval_samples, progress=False, latency_shape=(1, 3, CROP, CROP),
                           latency_repeats=2, threads=1)
    return out, result


def test_int8_graph_is_qdq_with_per_channel_symmetric_weights(full_int8: tuple[Path, Any]) -> None:
    out, _ = full_int8
    model = onnx.load(str(out))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 10 and ops.count("DequantizeLinear") > 10
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = _producers(model)
    per_channel = 0
    depthwise = [n for n in model.graph.node if _is_depthwise(n)]
    assert depthwise and all(_is_float_layer(model, n.name) for n in depthwise)  # float_depthwise (default)
    concat = {o for n in model.graph.node if n.op_type == "Concat" for o in n.output}
    after_concat = [n for n in model.graph.node if n.op_type == "Conv" and n.input[0] in concat]
    assert all(_is_float_layer(model, n.name) for n in after_concat)  # float_after_concat (default)
    for conv in (n for n in model.graph.node
                 if n.op_type == "Conv" and not _is_depthwise(n) and n.input[0] not in concat):
        dq = producers.get(conv.input[1])
        assert dq is not None and dq.op_type == "DequantizeLinear", f"{conv.name}: weight is not quantised"
        weight, scale, zero = (inits[i] for i in dq.input)
        assert weight.dtype == np.int8 and not zero.any()  # symmetric INT8 weights
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        if scale.size > 1:
            assert axis == 0 and scale.size == weight.shape[0]
            per_channel += 1
    assert per_channel > 0
    # activations: symmetric INT8 (zero point 0), what TensorRT needs
    act_q = [n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits]
    zero_points = [inits[n.input[2]] for n in act_q]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    # the default op types: every quantised activation is a Conv's or MatMul's input or output
    # (other readers of the same tensor share its DequantizeLinear)
    touching: dict[str, set[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            dq = producers.get(name)
            if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[0] in producers:
                touching.setdefault(producers[dq.input[0]].name, set()).add(node.op_type)
    for q in act_q:
        if q.input[0] in producers:
            touching.setdefault(q.name, set()).add(producers[q.input[0]].op_type)
    assert touching and all(ops & {"Conv", "MatMul"} for ops in touching.values())


def test_only_quantised_ops_read_dequantised_activations(full_int8: tuple[Path, Any]) -> None:
    """float_side_inputs (default): a layer norm or residual add beside a quantised Conv reads
    the float tensor, not its DequantizeLinear(QuantizeLinear(x)) copy."""
    out, _ = full_int8
    model = onnx.load(str(out))
    producers = _producers(model)
    inits = {i.name for i in model.graph.initializer}
    readers = {n.op_type for n in model.graph.node for name in n.input
               if (dq := producers.get(name)) is not None and dq.op_type == "DequantizeLinear"
               and dq.input[0] not in inits}
    assert readers and readers <= {"Conv", "MatMul"}, readers


def test_int8_model_keeps_metadata_and_records_choices(full_int8: tuple[Path, Any], micro_onnx: Path) -> None:
    out, result = full_int8
    props = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    meta = ArtifactMeta.from_props(props)
    source = ArtifactMeta.from_props({p.key: p.value for p in onnx.load(str(micro_onnx)).metadata_props})
    assert meta.precision == "int8" and meta.channel_order == source.channel_order == "BGR"
    assert meta.config == source.config
    record = json.loads(props["ndr_edge.quantization"])
    graph = onnx.load(str(out)).graph
    weights = {i.name for i in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}

    def act_matmul(n: onnx.NodeProto) -> bool:  # both inputs activations (the B input no weight, nor a weight's DQ)
        if n.op_type != "MatMul":
            return False
        b = producers.get(n.input[1])
        return n.input[1] not in weights and not (
            b is not None and b.op_type == "DequantizeLinear" and b.input[0] in weights)

    concat = {o for n in graph.node if n.op_type == "Concat" for o in n.output}

    def after_concat(n: onnx.NodeProto) -> bool:  # a Conv fed by a Concat (the decoder's skip joins)
        return n.op_type == "Conv" and n.input[0] in concat

    forced = [n.name for n in graph.node if _is_depthwise(n) or act_matmul(n) or after_concat(n)]
    assert any(_is_depthwise(n) for n in graph.node) and any(act_matmul(n) for n in graph.node)
    assert any(after_concat(n) for n in graph.node)
    assert record["method"] == "minmax" and sorted(record["excluded"]) == sorted(forced) and record["format"] == "QDQ"
    assert len(record["excluded"]) == len(set(record["excluded"]))
    assert record["op_types"] == ["Conv", "MatMul"] and record["float_depthwise"] is True
    assert record["float_act_matmul"] is True and record["reduce_range"] is True
    assert record["float_after_concat"] is True
    assert result.method == "minmax" and [e["node"] for e in result.excluded] == record["excluded"]
    assert all(e["reason"].startswith(("settings: depthwise", "settings: MatMul of two activations",
                                       "settings: Conv after a Concat"))
               for e in result.excluded)
    assert set(result.loss_db) == {"noise25", "rain"}
    assert set(result.latency["models"]) == {"fp32", "int8"} and result.latency["ratio"]["fp32"] == 1.0
    entry = result.manifest_entry()
    assert entry["method"] == "minmax" and entry["calibration"]["count"] == 6 and "loss_db" in entry
    json.dumps(result.to_dict())  # the export writes it into its manifest


# INT8 against FP32 on the degraded crops: 58.5 dB measured here (minmax, default settings).
# A quantiser off by little falls far below: every weight scale 10 % too large gives 37 dB,
# activation scales 4x too coarse 49.7 dB (and 4x too fine, clipping, 30 dB).
INT8_VS_FP32_FLOOR_DB = 52.0


def _psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (peak 1) after clipping both to [0, 1], as the spec scores images."""
    mse = float(np.mean((np.clip(a, 0, 1).astype(np.float64) - np.clip(b, 0, 1)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _psnr_per_crop(int8: Path, fp32: Path, samples: list[Any]) -> list[float]:
    """INT8 output against FP32 output on each degraded crop (BGR NCHW, the model's order)."""
    with open_cpu(fp32, 1) as ref, open_cpu(int8, 1) as got:
        scores = []
        for sample in samples:
            assert sample.lq.shape[0] % 8 == 0 == sample.lq.shape[1] % 8  # no padding needed
            batch = np.ascontiguousarray(sample.lq[..., ::-1].transpose(2, 0, 1)[None])
            scores.append(_psnr_db(got.infer(batch), ref.infer(batch)))
    return scores


def _scale_weight_scales(model_path: Path, factor: float, out: Path) -> Path:
    """A deliberately wrong quantiser: every INT8 weight's DequantizeLinear scale times ``factor``."""
    model = onnx.load(str(model_path))
    inits = {i.name: i for i in model.graph.initializer}
    scales = {n.input[1] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
              and numpy_helper.to_array(inits[n.input[0]]).dtype == np.int8}
    assert scales
    for name in scales:
        inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]) * np.float32(factor), name))
    onnx.save(model, str(out))
    return out


def test_int8_model_runs_and_tracks_fp32(full_int8: tuple[Path, Any], micro_onnx: Path, eval_samples: list[Any],
                                         tmp_path: Path) -> None:
    out, _ = full_int8
    x = np.random.default_rng(0).random((1, 3, 40, 48), dtype=np.float32)  # another size: axes stay dynamic
    with open_cpu(micro_onnx, 1) as fp32, open_cpu(out, 1) as int8:
        ref, got = fp32.infer(x), int8.infer(x)
    assert got.shape == ref.shape == (1, 3, 40, 48) and np.isfinite(got).all()
    assert np.abs(got - ref).max() > 0  # really quantised, not the FP32 graph again
    scores = _psnr_per_crop(out, micro_onnx, eval_samples)
    assert {s.degradation for s in eval_samples} == {"noise25", "rain"} and len(scores) == len(eval_samples)
    assert min(scores) >= INT8_VS_FP32_FLOOR_DB, scores
    # the floor tells a right quantiser from a slightly wrong one
    wrong = _scale_weight_scales(out, 1.1, tmp_path / "wrong-scales.onnx")
    assert max(_psnr_per_crop(wrong, micro_onnx, eval_samples)) < INT8_VS_FP32_FLOOR_DB


def test_excluded_nodes_stay_float(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    settings = QuantSettings(method="minmax", float_depthwise=False, float_act_matmul=False, float_after_concat=False)
    quantizer = Quantizer(micro_onnx, CalibrationSet.open(calib_dir), settings, tmp_path / "w", progress=False)
    convs = [name for name, op in quantizer.quantizable_nodes() if op == "Conv"]
    keep = [convs[0], convs[len(convs) // 2], convs[-1]]
    out = quantizer.write(tmp_path / "partial.onnx", exclude=keep)
    model = onnx.load(str(out))
    for name in keep:
        assert _is_float_layer(model, name), name
    assert not _is_float_layer(model, convs[1])
    assert json.loads({p.key: p.value for p in model.metadata_props}["ndr_edge.quantization"])["excluded"] == keep


@pytest.fixture(scope="module")
def strict_samples(micro_onnx: Path, eval_samples: list[Any]) -> list[Any]:
    """Random weights do not restore anything, so INT8 error may as well raise PSNR against the clean
    image. Score against the FP32 output plus independent noise instead: any INT8 error is then a loss."""
    from ndr_edge.data import EvalSample
    from ndr_edge.evaluate import restore_image

    run = open_cpu(micro_onnx, 1).infer
    rng = np.random.default_rng(0)
    samples = []
    for s in eval_samples:
        target = np.clip(restore_image(run, s.lq, "BGR"), 0, 1)
        target = np.clip(target + rng.normal(0, 0.01, target.shape), 0, 1).astype(np.float32)
        samples.append(EvalSample(s.degradation, s.name, s.lq, target))
    return samples


def test_quality_aware_mode_excludes_layers_under_a_tight_budget(
    micro_onnx: Path, calib_dir: Path, strict_samples: list[Any], tmp_path: Path
) -> None:
    out = tmp_path / "qa.onnx"
    result = quantize_int8(micro_onnx, out, calibration=calib_dir, method="minmax", budget_db=0.0,
                           eval_set=strict_samples, progress=False, max_groups=3, min_gain_db=0.0,
                           latency_shape=(1, 3, CROP, CROP), latency_repeats=1, threads=1)
    assert result.excluded, "a zero budget must keep some layers in float"
    assert all(set(e) == {"node", "op", "reason"} for e in result.excluded)
    assert any(e["reason"].startswith("quality") for e in result.excluded)
    assert all(e["reason"].startswith(("quality", "settings")) for e in result.excluded)
    assert result.details["budget_db"] == 0.0 and len(result.details["sensitivity"]) == 3
    full_worst = max(result.details["full_int8_loss_db"].values())
    assert max(result.loss_db.values()) < full_worst  # keeping layers in float helped
    model = onnx.load(str(out))
    for entry in result.excluded:
        if entry["op"] == "Conv":
            assert _is_float_layer(model, entry["node"])
    assert "int8_all_layers" in result.latency["models"]
    assert result.manifest_entry()["budget_db"] == 0.0


def test_bad_arguments_are_clear_errors(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="calibration method 'kl'"):
        quantize_int8(micro_onnx, tmp_path / "x.onnx", calibration=calib_dir, method="kl", progress=False)
    with pytest.raises(InputError, match="no such calibration set"):
        quantize_int8(micro_onnx, tmp_path / "x.onnx", calibration=tmp_path / "nope", progress=False)
    assert not (tmp_path / "x.onnx").exists()


def test_set_built_for_another_input_size(calib_dir: Path, tmp_path: Path) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fixed = export_micro(tmp_path / "fixed64.onnx", dynamic=False, size=64)
    with pytest.raises(InputError, match=f"built for {CROP}x{CROP}, fixed64.onnx exported for 64x64"):
        quantize_int8(fixed, tmp_path / "x.onnx", calibration=calib_dir, progress=False)
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_modelopt_backend_writes_a_qdq_int8_model(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from ndr_edge.calibration.modelopt_backend import modelopt_status, quantize_modelopt

    available, why = modelopt_status()
    if not available:
        pytest.skip(f"ModelOpt: {why}")
    out = tmp_path / "modelopt.onnx"
    seconds = quantize_modelopt(micro_onnx, CalibrationSet.open(calib_dir), out, method="minmax")
    model = onnx.load(str(out))
    assert seconds > 0 and any(n.op_type == "QuantizeLinear" for n in model.graph.node)
    props = {p.key: p.value for p in model.metadata_props}
    assert ArtifactMeta.from_props(props).precision == "int8"
    assert json.loads(props["ndr_edge.quantization"])["backend"] == "modelopt"
    x = np.random.default_rng(0).random((1, 3, CROP, CROP), dtype=np.float32)
    assert open_cpu(out, 1).infer(x).shape == (1, 3, CROP, CROP)
