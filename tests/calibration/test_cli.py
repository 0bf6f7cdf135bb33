"""ndr-calib build / info / quantize through click: what they write is read back without the
library (numpy, hashlib, onnx, ONNX Runtime) and compared with what they say."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from click.testing import CliRunner
from onnx import numpy_helper

from ndr_edge.calibration import CalibrationSet
from ndr_edge.calibration.cli import main


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_build_and_info(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = _run("build", "-o", str(out), "--samples", "5", "--crop", "32", "--seed", "3",
                  "--recipe", "noise=0.4,rain=0.3,haze=0.3", "--quiet")
    assert result.exit_code == 0, result.output
    assert "5 synthetic crops of 32x32 from 6 images, seed 3" in result.output
    calib = CalibrationSet.open(out)
    assert len(calib) == 5 and set(calib.labels) <= {"noise", "rain", "haze"}
    # the files themselves: five distinct uint8 RGB 32x32 crops, each shard's hash as recorded
    manifest = json.loads((out / "manifest.json").read_text())
    shards = [np.load(out / shard["file"]) for shard in manifest["shards"]]
    crops = np.concatenate(shards)
    assert crops.shape == (5, 32, 32, 3) and crops.dtype == np.uint8
    assert [len(a) for a in shards] == [shard["count"] for shard in manifest["shards"]]
    assert len({c.tobytes() for c in crops}) == 5 and all(c.std() > 1 for c in crops)  # real, distinct pictures
    for shard in manifest["shards"]:
        assert hashlib.sha256((out / shard["file"]).read_bytes()).hexdigest() == shard["sha256"]
    counts = Counter(manifest["labels"])
    assert sum(counts.values()) == 5 and set(counts) <= {"noise", "rain", "haze"}
    info = _run("info", str(out), "--verify")
    assert info.exit_code == 0
    line = info.output.strip()
    assert line.endswith(" -- verified") and "5 synthetic crops of 32x32" in line and "seed 3" in line
    assert all(f"{label}={n}" in line for label, n in counts.items())
    # --verify is what reads the shards: a shard changed after the build passes without it, fails with it
    np.save(out / manifest["shards"][0]["file"], shards[0][::-1].copy())  # same shape and dtype, other bytes
    plain = _run("info", str(out))
    assert plain.exit_code == 0 and "verified" not in plain.output
    tampered = _run("info", str(out), "--verify")
    assert tampered.exit_code == 2 and manifest["shards"][0]["file"] in tampered.stderr


def test_bad_recipe_is_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = _run("build", "-o", str(out), "--recipe", "noise=0.5,rain=0.2", "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("ndr-calib: error: calibration recipe: ratios sum to 0.7, not 1")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_empty_folder_and_bad_crop(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _run("build", str(tmp_path / "empty"), "-o", str(tmp_path / "set"), "--quiet")
    assert result.exit_code == 2 and "empty: no images found" in result.stderr
    result = _run("build", "-o", str(tmp_path / "set"), "--crop", "30", "--quiet")
    assert result.exit_code == 2 and "crop 30 must be a positive multiple of 8" in result.stderr
    assert not (tmp_path / "set").exists()


def test_info_names_a_corrupt_shard(calib_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(calib_dir, tmp_path / "set"))
    shard = copy / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")
    result = _run("info", str(copy), "--verify")
    assert result.exit_code == 2 and "shard-00000.npy: shard is corrupt" in result.stderr


def _forced_float(fp32: Path) -> set[str]:
    """Nodes the default settings keep in float, found in the FP32 graph: depthwise (grouped)
    convolutions, MatMuls of two activations (their B input no weight) and Convs fed by a Concat."""
    graph = onnx.load(str(fp32)).graph
    weights = {i.name for i in graph.initializer}
    concat = {o for n in graph.node if n.op_type == "Concat" for o in n.output}
    return {n.name for n in graph.node
            if (n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute))
            or (n.op_type == "MatMul" and n.input[1] not in weights)
            or (n.op_type == "Conv" and n.input[0] in concat)}


def _qdq_layout(path: Path) -> tuple[dict[str, bool], list[np.ndarray]]:
    """For each Conv / MatMul of an INT8 model: whether all its inputs come through
    DequantizeLinear (weights from INT8 initializers); and the activation zero points."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    quantised: dict[str, bool] = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "MatMul"):
            continue
        feeds = [producers.get(name) for name in node.input[:2]]
        through_dq = all(f is not None and f.op_type == "DequantizeLinear" for f in feeds)
        weight_dq = feeds[1]
        if through_dq and weight_dq is not None and weight_dq.input[0] in inits:  # a weight: symmetric INT8
            assert inits[weight_dq.input[0]].dtype == np.int8 and not inits[weight_dq.input[2]].any(), node.name
        quantised[node.name] = through_dq
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    return quantised, zero_points


def _psnr_db(restored: np.ndarray, clean: np.ndarray) -> float:
    mse = float(np.mean((np.clip(restored, 0, 1).astype(np.float64) - np.clip(clean, 0, 1)) ** 2))
    return 10.0 * np.log10(1.0 / mse)


def _mean_psnr(path: Path, samples: list[Any]) -> float:
    """Restored PSNR on the samples with ONNX Runtime directly (BGR model, reflect-pad to 8)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    scores = []
    for sample in samples:
        h, w = sample.lq.shape[:2]
        batch = sample.lq[..., ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        batch = np.pad(batch, ((0, 0), (0, 0), (0, (-h) % 8), (0, (-w) % 8)), mode="reflect")
        out = session.run(None, {"input": batch})[0][0, :, :h, :w].transpose(1, 2, 0)[..., ::-1]
        scores.append(_psnr_db(out, sample.gt))
    return float(np.mean(scores))


def test_quantize_command(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    from ndr_edge.calibration.evaluate import default_eval_set

    out = tmp_path / "int8.onnx"
    result = _run("quantize", str(micro_onnx), "-o", str(out), "--set", str(calib_dir), "--method", "minmax",
                  "--budget", "none", "--degradations", "noise25", "--eval-max-side", "32", "--latency-size", "0",
                  "--threads", "1", "--json", str(tmp_path / "int8.json"), "--quiet")
    assert result.exit_code == 0, result.output + result.stderr
    assert "noise25" in result.output and "by --float-depthwise/--float-act-matmul/--float-after-concat; 0 layer groups for quality" in result.output
    assert "kept in float: 0 nodes" not in result.output  # the micro model has depthwise convolutions
    report = json.loads((tmp_path / "int8.json").read_text())
    # what was asked for
    assert report["path"] == str(out) and report["method"] == "minmax" and report["within_budget"] is None
    assert report["latency"] == {} and report["notes"] == [] and report["details"]["budget_db"] is None
    settings = report["details"]["settings"]
    assert settings["method"] == "minmax" and settings["op_types"] == ["Conv", "MatMul"]
    assert settings["float_depthwise"] is True and settings["float_act_matmul"] is True
    assert settings["float_after_concat"] is True
    assert report["details"]["calibration"]["count"] == json.loads((calib_dir / "manifest.json").read_text())["count"]
    # the nodes it says it kept in float are the depthwise convs and activation MatMuls of the FP32 graph, and
    # the written model has them in float while every other Conv / MatMul reads DequantizeLinear
    forced = _forced_float(micro_onnx)
    assert forced and sorted(e["node"] for e in report["excluded"]) == sorted(forced)
    assert all(e["reason"].startswith("settings:") for e in report["excluded"])
    quantised, zero_points = _qdq_layout(out)
    assert {name for name, q in quantised.items() if not q} == forced
    assert sum(quantised.values()) > 10 and zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)
    record = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["ndr_edge.quantization"])
    assert sorted(record["excluded"]) == sorted(forced) and record["method"] == "minmax"
    # the PSNRs it reports, recomputed on the same held-out crops
    samples = default_eval_set(max_side=32, degradations=["noise25"])
    assert report["details"]["eval_set"]["per_degradation"] == {"noise25": len(samples)}
    fp32_db, int8_db = _mean_psnr(micro_onnx, samples), _mean_psnr(out, samples)
    assert abs(report["details"]["psnr_fp32"]["noise25"] - fp32_db) < 1e-3
    assert abs(report["details"]["psnr_int8"]["noise25"] - int8_db) < 1e-3
    assert abs(report["loss_db"]["noise25"] - (fp32_db - int8_db)) < 1e-3
    every = _run("quantize", str(micro_onnx), "-o", str(out), "--set", str(calib_dir), "--method", "minmax",
                 "--budget", "none", "--quantize-depthwise", "--quantize-act-matmul", "--quantize-after-concat", "--degradations", "noise25", "--eval-max-side", "32",
                 "--latency-size", "0", "--threads", "1", "--quiet")
    assert every.exit_code == 0 and "kept in float: 0 nodes" in every.output, every.output + every.stderr
    quantised, _ = _qdq_layout(out)
    assert quantised and all(quantised.values()), [name for name, q in quantised.items() if not q]
    typo = _run("quantize", str(micro_onnx), "-o", str(tmp_path / "y.onnx"), "--set", str(calib_dir),
                "--op-types", "Conv,Convv", "--quiet")
    assert typo.exit_code == 2 and "--op-types 'Conv,Convv': Convv" in typo.stderr
    assert not (tmp_path / "y.onnx").exists()
    bad = _run("quantize", str(micro_onnx), "-o", str(tmp_path / "x.onnx"), "--set", str(calib_dir),
               "--budget", "lots", "--quiet")
    assert bad.exit_code == 2 and "--budget 'lots' is not a number" in bad.stderr


def test_sensitivity_command(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    """README: ``ndr-calib sensitivity``. Its FP32 PSNR and all-INT8 loss are recomputed here:
    the FP32 graph and an all-INT8 graph from ``quantize --budget none`` (same method, same
    set), both run with raw ONNX Runtime."""
    from ndr_edge.calibration.evaluate import default_eval_set

    report_path = tmp_path / "sens.json"
    result = _run("sensitivity", str(micro_onnx), "--set", str(calib_dir), "--method", "minmax", "--max-groups", "3",
                  "--degradations", "noise25", "--eval-max-side", "32", "--threads", "1", "--json",
                  str(report_path), "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    samples = default_eval_set(max_side=32, degradations=["noise25"])
    fp32_db = _mean_psnr(micro_onnx, samples)
    assert abs(report["psnr_fp32"]["noise25"] - fp32_db) < 1e-3
    every = tmp_path / "all-int8.onnx"
    quantised = _run("quantize", str(micro_onnx), "-o", str(every), "--set", str(calib_dir), "--method", "minmax",
                     "--budget", "none", "--degradations", "noise25", "--eval-max-side", "32", "--latency-size", "0",
                     "--threads", "1", "--quiet")
    assert quantised.exit_code == 0, quantised.output
    assert abs(report["full_int8_loss_db"]["noise25"] - (fp32_db - _mean_psnr(every, samples))) < 1e-3
    groups = report["groups"]
    assert 1 <= len(groups) <= 3 and all(g["nodes"] >= 1 for g in groups)
    assert "(none: all INT8)" in result.output and all(g["group"] in result.output for g in groups)


def test_compare_command(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    """README: ``ndr-calib compare``. The FP32 PSNR is recomputed with raw ONNX Runtime, each
    method's loss against an all-INT8 graph of that method from ``quantize --budget none``,
    and ``best`` must be the method with the smallest worst loss."""
    from ndr_edge.calibration.evaluate import default_eval_set

    report_path = tmp_path / "cmp.json"
    result = _run("compare", str(micro_onnx), "--set", str(calib_dir), "--methods", "minmax,entropy",
                  "--degradations", "noise25", "--eval-max-side", "32", "--threads", "1", "--latency-size", "0",
                  "--no-modelopt", "--json", str(report_path), "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text())
    samples = default_eval_set(max_side=32, degradations=["noise25"])
    fp32_db = _mean_psnr(micro_onnx, samples)
    assert abs(report["psnr_fp32"]["noise25"] - fp32_db) < 1e-3
    scores = {s["method"]: s for s in report["scores"]}
    assert set(scores) == {"minmax", "entropy"}
    for method, score in scores.items():
        out = tmp_path / f"{method}.onnx"
        quantised = _run("quantize", str(micro_onnx), "-o", str(out), "--set", str(calib_dir), "--method", method,
                         "--budget", "none", "--degradations", "noise25", "--eval-max-side", "32",
                         "--latency-size", "0", "--threads", "1", "--quiet")
        assert quantised.exit_code == 0, quantised.output
        assert abs(score["loss_db"]["noise25"] - (fp32_db - _mean_psnr(out, samples))) < 1e-3, method
    smallest = min(round(s["loss_db"]["noise25"], 3) for s in scores.values())
    assert round(scores[report["best"]]["loss_db"]["noise25"], 3) == smallest  # one degradation: worst = its loss
