"""The report's decisions without measuring anything: the best artifact per degradation under
a latency budget, and the Pareto front."""

from __future__ import annotations

from pathlib import Path

from ndr_edge.report.config import ReportConfig
from ndr_edge.report.measure import QualityResult
from ndr_edge.report.pipeline import VariantResult, best_per_degradation
from ndr_edge.report.plan import VariantPlan
from ndr_edge.report.plot import pareto_front


def result(name: str, psnr: dict[str, float], latency_ms: float | None, fmt: str = "onnx",
           status: str = "ok") -> VariantResult:
    plan = VariantPlan(name, "pytorch" if fmt == "checkpoint" else "onnxruntime", "fp32", fmt, Path(name))
    quality = QualityResult(psnr=psnr, ssim=dict.fromkeys(psnr, 0.9), input_psnr={}, input_ssim={}, images={},
                            outputs=None, kept={}, fidelity=None, seconds=0.0)
    entries = [] if latency_ms is None else [{"size": "256x256", "batch": 1, "per_frame_median_ms": latency_ms,
                                              "per_frame_p90_ms": latency_ms * 1.1}]
    return VariantResult(plan, status=status, quality=quality,
                         latency={"entries": entries, "memory": {"model_peak_mb": 1.0}})


RESULTS = [
    result("pytorch-fp32", {"noise25": 31.0, "rain": 30.0}, 5.0, fmt="checkpoint"),  # the reference: never picked
    result("onnx-fp32", {"noise25": 30.001, "rain": 29.0}, 40.0),
    result("onnx-fp16", {"noise25": 30.004, "rain": 28.5}, 20.0),  # ties fp32 to 0.01 dB, and is faster
    result("onnx-int8", {"noise25": 29.0, "rain": 28.9}, 10.0),
    result("broken", {"noise25": 40.0, "rain": 40.0}, 1.0, status="failed"),
]


def test_best_without_budget_is_the_best_psnr_ties_to_the_faster() -> None:
    best = best_per_degradation(RESULTS, ["noise25", "rain"], ReportConfig())
    assert best["noise25"]["variant"] == "onnx-fp16"
    assert best["rain"]["variant"] == "onnx-fp32"


def test_budget_excludes_slower_artifacts() -> None:
    best = best_per_degradation(RESULTS, ["noise25", "rain"], ReportConfig(budget_ms=25.0))
    assert best["noise25"]["variant"] == "onnx-fp16" and best["rain"]["variant"] == "onnx-int8"
    best = best_per_degradation(RESULTS, ["noise25"], ReportConfig(budget_ms=12.0))
    assert best["noise25"] == {"variant": "onnx-int8", "psnr": 29.0, "latency_ms": 10.0}
    best = best_per_degradation(RESULTS, ["noise25"], ReportConfig(budget_ms=2.0))
    assert best["noise25"]["variant"] is None and "2 ms" in best["noise25"]["reason"]


def test_pareto_front() -> None:
    points = [(40.0, 30.0), (20.0, 30.0), (10.0, 28.9), (50.0, 31.0), (30.0, 29.0), (10.0, 28.0)]
    front = pareto_front(points)
    assert [points[i] for i in front] == [(10.0, 28.9), (20.0, 30.0), (50.0, 31.0)]
    assert pareto_front([]) == []


def test_plan_adds_openvino_rows_and_the_bf16_hint_only_where_the_cpu_has_bf16(tmp_path, monkeypatch) -> None:
    import pytest

    from ndr_edge import cpu
    from ndr_edge.artifact import ArtifactEntry, Manifest
    from ndr_edge.report.plan import plan_variants

    pytest.importorskip("openvino", reason="openvino not installed")
    for name in ("model-fp32.onnx", "model-int8.onnx"):
        (tmp_path / name).write_bytes(b"onnx")
    manifest = Manifest(source={}, artifacts=[ArtifactEntry("onnx-fp32", "onnx", "fp32", "model-fp32.onnx", ""),
                                              ArtifactEntry("onnx-int8", "onnx", "int8", "model-int8.onnx", "")])
    for flags, bf16_status in ((frozenset({"avx2"}), "skipped"), (frozenset({"avx512_bf16"}), "pending")):
        monkeypatch.setattr(cpu, "cpu_features", lambda f=flags: cpu.CpuFeatures("test cpu", f))
        plans = {p.name: p for p in plan_variants(tmp_path, manifest, reference=False)}
        assert list(plans) == ["onnx-fp32", "onnx-fp32-openvino", "onnx-fp32-openvino-bf16", "onnx-int8",
                               "onnx-int8-openvino", "onnx-int8-openvino-bf16"]
        assert plans["onnx-int8-openvino"].backend == "openvino" and plans["onnx-int8-openvino"].hint is None
        bf16 = plans["onnx-fp32-openvino-bf16"]
        assert (bf16.hint, bf16.precision, bf16.status) == ("bf16", "bf16", bf16_status)
        assert bf16.path == tmp_path / "model-fp32.onnx"
        if bf16_status == "skipped":
            assert "AVX512-BF16 or AMX" in bf16.reason
        int8_bf16 = plans["onnx-int8-openvino-bf16"]  # the INT8 graph's float layers in bf16
        assert (int8_bf16.hint, int8_bf16.precision, int8_bf16.status) == ("bf16", "int8+bf16", bf16_status)
        assert int8_bf16.path == tmp_path / "model-int8.onnx"
