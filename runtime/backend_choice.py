"""``backend="auto"`` on a machine without a usable GPU backend: ONNX Runtime, or OpenVINO
where it is installed and *measured* faster for this graph on this kind of CPU.

The measurement is the export's own report (``ndr-report`` / ``ndr-export --report`` writes
``report.json`` into the export folder): it times each ONNX graph under ONNX Runtime and
OpenVINO in one run. A row counts only when it timed the very file the manifest lists (same
SHA-256), at the graph's own precision (not OpenVINO's bf16 hint, which changes the numerics),
on a CPU with the same model name and usable core count as this one. Without such a report
``auto`` stays with ONNX Runtime: a guess is not a measurement. Torch-free, cheap (reads one
JSON file).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ndr_edge.artifact import ArtifactEntry
from ndr_edge.cpu import cpu_features, usable_cores

#: the report's file name (ndr_edge.report.REPORT_JSON; a test checks the two agree)
REPORT_FILE = "report.json"


@dataclass(frozen=True)
class CpuChoice:
    backend: str  # "onnxruntime" | "openvino"
    reason: str


def _median(row: dict[str, Any]) -> float | None:
    latency = row.get("latency_ms") or {}
    value = latency.get("median")
    return float(value) if isinstance(value, (int, float)) else None


def measured_choice(directory: Path, entry: ArtifactEntry, cpu: str | None = None,
                    cores: int | None = None) -> CpuChoice | None:
    """The faster of ONNX Runtime and OpenVINO for ``entry`` according to ``directory``'s
    report, or None when the report is missing, unreadable, from another kind of CPU, or did
    not time this file under both."""
    path = Path(directory) / REPORT_FILE
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    machine = payload.get("machine") or {}
    cpu = cpu if cpu is not None else cpu_features().model
    cores = cores if cores is not None else usable_cores()
    if machine.get("cpu") != cpu or machine.get("usable_cores") != cores:
        return None
    rows = [v for v in payload.get("variants", []) if isinstance(v, dict) and v.get("status") == "ok"
            and v.get("sha256") == entry.sha256 and v.get("precision") == entry.precision and _median(v)]
    times = {}
    for backend in ("onnxruntime", "openvino"):
        found = [_median(v) for v in rows if v.get("backend") == backend]
        if found:
            times[backend] = min(t for t in found if t is not None)
    if len(times) < 2:
        return None
    faster = min(times, key=lambda b: times[b])
    return CpuChoice(faster, f"{path}: {entry.path} took {times['openvino']:.1f} ms under OpenVINO and "
                             f"{times['onnxruntime']:.1f} ms under ONNX Runtime per frame on this CPU ({cpu})")


def auto_cpu_backend(directory: Path, entry: ArtifactEntry) -> CpuChoice:
    """What ``backend="auto"`` runs an ONNX entry on when no GPU backend applies."""
    if importlib.util.find_spec("openvino") is None:
        return CpuChoice("onnxruntime", "OpenVINO is not installed")
    try:
        import onnxruntime

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return CpuChoice("onnxruntime", "ONNX Runtime has the CUDA execution provider here (a GPU backend)")
    except ImportError:
        return CpuChoice("openvino", "ONNX Runtime is not installed")
    choice = measured_choice(directory, entry)
    if choice is None:
        return CpuChoice("onnxruntime", f"no {REPORT_FILE} in {directory} timed {entry.path} under both on this CPU "
                                        "(ndr-report measures it)")
    return choice
