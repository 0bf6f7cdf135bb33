"""backend="auto" without a GPU backend: OpenVINO only where the export's own report timed
this very graph under both runtimes on this kind of CPU, and found OpenVINO faster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, sha256_file
from ndr_edge.cpu import cpu_features, usable_cores
from ndr_edge.runtime import backend_choice
from ndr_edge.runtime.restorer import Restorer, select_artifact

from .conftest import build_tiny

pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install -e '.[openvino]')")


@pytest.fixture
def export(tmp_path: Path) -> tuple[Path, str]:
    path = build_tiny("mix", tmp_path / "model-fp32.onnx", ArtifactMeta(preset="tiny-mix", channel_order="BGR"))
    sha = sha256_file(path)
    Manifest(source={"preset": "tiny-mix"},
             artifacts=[ArtifactEntry("onnx-fp32", "onnx", "fp32", path.name, sha)]).write(tmp_path)
    return tmp_path, sha


def _report(folder: Path, sha: str, ort_ms: float, ov_ms: float, *, cpu: str | None = None,
            cores: int | None = None, bf16_ms: float | None = None, ov_sha: str | None = None) -> None:
    def row(name: str, backend: str, precision: str, ms: float, digest: str) -> dict:
        return {"name": name, "backend": backend, "precision": precision, "status": "ok", "sha256": digest,
                "latency_ms": {"median": ms, "p90": ms * 1.1, "size": "256x256", "batch": 1}}

    variants = [row("onnx-fp32", "onnxruntime", "fp32", ort_ms, sha),
                row("onnx-fp32-openvino", "openvino", "fp32", ov_ms, ov_sha or sha)]
    if bf16_ms is not None:
        variants.append(row("onnx-fp32-openvino-bf16", "openvino", "bf16", bf16_ms, sha))
    machine = {"cpu": cpu if cpu is not None else cpu_features().model,
               "usable_cores": cores if cores is not None else usable_cores()}
    (folder / backend_choice.REPORT_FILE).write_text(json.dumps({"machine": machine, "variants": variants}))


def test_the_report_file_name_is_the_reports(export) -> None:
    from ndr_edge.report import REPORT_JSON

    assert backend_choice.REPORT_FILE == REPORT_JSON


def test_no_report_stays_with_onnxruntime(export) -> None:
    folder, _ = export
    selection = select_artifact(folder, backend="auto")
    assert selection.backend == "onnxruntime" and "report.json" in selection.reason


@pytest.mark.parametrize(("ort_ms", "ov_ms", "expected"), [(100.0, 80.0, "openvino"), (80.0, 100.0, "onnxruntime")])
def test_the_measured_faster_runtime_is_chosen(export, ort_ms, ov_ms, expected) -> None:
    folder, sha = export
    _report(folder, sha, ort_ms, ov_ms)
    selection = select_artifact(folder, backend="auto")
    assert selection.backend == expected
    assert f"{ov_ms:.1f} ms under OpenVINO" in selection.reason and f"{ort_ms:.1f} ms under ONNX Runtime" in selection.reason
    # an explicit backend is never overridden by the report
    assert select_artifact(folder, backend="onnxruntime").backend == "onnxruntime"


@pytest.mark.parametrize("mismatch", ["cpu", "cores", "sha"])
def test_a_report_of_another_machine_or_file_does_not_count(export, mismatch) -> None:
    folder, sha = export
    kwargs = {"cpu": "Some Other CPU"} if mismatch == "cpu" else {"cores": (usable_cores() or 1) + 7} \
        if mismatch == "cores" else {"ov_sha": "0" * 64}
    _report(folder, sha, 100.0, 10.0, **kwargs)
    assert select_artifact(folder, backend="auto").backend == "onnxruntime"


def test_the_bf16_hint_is_another_precision(export) -> None:
    folder, sha = export
    _report(folder, sha, 100.0, 120.0, bf16_ms=10.0)  # only bf16 is faster: it changes the numerics
    assert select_artifact(folder, backend="auto").backend == "onnxruntime"


def test_restorer_opens_what_was_chosen_and_providers_keep_onnxruntime(export) -> None:
    folder, sha = export
    _report(folder, sha, 100.0, 50.0)
    with Restorer.open(folder) as restorer:
        assert restorer.backend.name == "openvino"
    with Restorer.open(folder, providers=("cpu",)) as restorer:
        assert restorer.backend.name == "onnxruntime"


def test_an_unreadable_report_is_ignored(export) -> None:
    folder, _ = export
    (folder / backend_choice.REPORT_FILE).write_text("{not json")
    assert select_artifact(folder, backend="auto").backend == "onnxruntime"
