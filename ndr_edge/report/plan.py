"""Which variants a report measures: the PyTorch FP32 checkpoint (the reference) and every
artifact of the export's manifest, each with its backend and file, or the reason it cannot
be measured here. Torch-free (whether torch is installed is only asked)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..artifact import Manifest
from ..errors import ArtifactError, InputError

REFERENCE_NAME = "pytorch-fp32"
BACKEND_OF_FORMAT = {"onnx": "onnxruntime", "engine": "tensorrt"}


@dataclass
class VariantPlan:
    """One thing to measure. ``status`` is ``pending`` until measured, or already
    ``skipped`` (cannot run on this machine) / ``failed`` (broken input) with ``reason``."""

    name: str
    backend: str  # pytorch | onnxruntime | tensorrt
    precision: str
    format: str  # checkpoint | onnx | engine
    path: Path | None
    sha256: str = ""
    size_bytes: int | None = None
    status: str = "pending"
    reason: str = ""
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)

    @property
    def is_reference(self) -> bool:
        return self.format == "checkpoint"


def _checkpoint_path(manifest: Manifest, export_dir: Path) -> Path | None:
    recorded = manifest.source.get("path")
    if not recorded:
        return None
    path = Path(recorded).expanduser()
    for candidate in (path, export_dir / path, export_dir / path.name):
        if candidate.is_file():
            return candidate
    return None


def reference_plan(manifest: Manifest, export_dir: Path) -> VariantPlan:
    source = manifest.source
    order, value_range = source.get("channel_order", "BGR"), tuple(source.get("value_range", (0.0, 1.0)))
    plan = VariantPlan(REFERENCE_NAME, "pytorch", "fp32", "checkpoint", None, str(source.get("sha256", "")),
                       channel_order=order, value_range=value_range)  # type: ignore[arg-type]
    path = _checkpoint_path(manifest, export_dir)
    if importlib.util.find_spec("torch") is None:
        plan.status, plan.reason = "skipped", "torch is not installed here (pip install ndr-edge[train])"
    elif path is None:
        plan.status = "skipped"
        plan.reason = (f"the exported checkpoint {source.get('path', '(not recorded)')!r} is not on this machine; "
                       "copy it beside the manifest to measure PyTorch")
    else:
        plan.path, plan.size_bytes = path, path.stat().st_size
    return plan


def _backend_unavailable(backend: str, device: int) -> str | None:
    if backend == "tensorrt":
        from ..runtime.tensorrt_backend import tensorrt_unavailable_reason

        return tensorrt_unavailable_reason(device)
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed here (pip install ndr-edge[ort])"
    return None


def plan_variants(export_dir: Path, manifest: Manifest, names: tuple[str, ...] | None = None,
                  reference: bool = True, device: int = 0) -> list[VariantPlan]:
    """The reference first (when asked for), then the manifest's artifacts in its order."""
    available = [e.name for e in manifest.artifacts]
    if names is not None:
        unknown = [n for n in names if n not in available and n != REFERENCE_NAME]
        if unknown:
            raise InputError(f"{export_dir}: no variant {', '.join(unknown)} in the manifest; "
                             f"it lists {', '.join(available) or 'nothing'}")
    plans: list[VariantPlan] = []
    if reference:  # the reference for fidelity, whatever subset of artifacts is measured
        plans.append(reference_plan(manifest, export_dir))
    unavailable: dict[str, str | None] = {}
    for entry in manifest.artifacts:
        if names is not None and entry.name not in names:
            continue
        backend = BACKEND_OF_FORMAT.get(entry.format)
        plan = VariantPlan(entry.name, backend or entry.format, entry.precision, entry.format, None, entry.sha256,
                           channel_order=manifest.source.get("channel_order", "BGR"),
                           value_range=tuple(manifest.source.get("value_range", (0.0, 1.0))))  # type: ignore[arg-type]
        plans.append(plan)
        if backend is None:
            plan.status, plan.reason = "failed", f"unknown artifact format {entry.format!r} (expected onnx or engine)"
            continue
        try:
            plan.path = manifest.resolve(export_dir, entry)
            plan.size_bytes = plan.path.stat().st_size
        except ArtifactError as exc:
            plan.status, plan.reason = "failed", str(exc)
            continue
        if backend not in unavailable:
            unavailable[backend] = _backend_unavailable(backend, device)
        if unavailable[backend]:
            plan.status, plan.reason = "skipped", str(unavailable[backend])
    if not any(p.status == "pending" for p in plans):
        reasons = "; ".join(f"{p.name}: {p.reason}" for p in plans) or "the manifest lists no artifact"
        raise ArtifactError(f"{export_dir}: nothing can be measured here ({reasons})")
    return plans
