"""Which variants a report measures: the PyTorch FP32 checkpoint (the reference) and every
artifact of the export's manifest, each with its backend and file, or the reason it cannot
be measured here. Torch-free (whether torch is installed is only asked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ndr_edge.artifact import Manifest
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.variants import FORMAT_BY_NAME, REFERENCE, backend_of_format
from ndr_edge.runtime.backends import backend_unavailable_reason


@dataclass
class VariantPlan:
    """One thing to measure. ``status`` is ``pending`` until measured, or already
    ``skipped`` (cannot run on this machine) / ``failed`` (broken input) with ``reason``."""

    name: str
    backend: str  # pytorch | onnxruntime | tensorrt | openvino
    precision: str
    format: str  # checkpoint | onnx | engine
    path: Path | None
    sha256: str = ""
    size_bytes: int | None = None
    status: str = "pending"
    reason: str = ""
    channel_order: str = "BGR"
    value_range: tuple[float, float] = (0.0, 1.0)
    hint: str | None = None  # OpenVINO inference precision hint (bf16 rows)

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
    plan = VariantPlan(REFERENCE.name, REFERENCE.backends[0], REFERENCE.precision, REFERENCE.format, None,
                       str(source.get("sha256", "")), channel_order=order, value_range=value_range)  # type: ignore[arg-type]
    path = _checkpoint_path(manifest, export_dir)
    unavailable = backend_unavailable_reason(plan.backend)
    if unavailable:
        plan.status, plan.reason = "skipped", unavailable
    elif path is None:
        plan.status = "skipped"
        plan.reason = (f"the exported checkpoint {source.get('path', '(not recorded)')!r} is not on this machine; "
                       "copy it beside the manifest to measure PyTorch")
    else:
        plan.path, plan.size_bytes = path, path.stat().st_size
    return plan


def plan_variants(export_dir: Path, manifest: Manifest, names: tuple[str, ...] | None = None,
                  reference: bool = True, device: int = 0) -> list[VariantPlan]:
    """The reference first (when asked for), then the manifest's artifacts in its order."""
    available = [e.name for e in manifest.artifacts]
    available += [f"{e.name}-{b}{hint}" for e in manifest.artifacts if e.format in FORMAT_BY_NAME
                  for b in FORMAT_BY_NAME[e.format].backends[1:]
                  for hint in ("", "-bf16") if not hint or bf16_hint_precision(b, e.precision)]
    if names is not None:
        unknown = [n for n in names if n not in available and n != REFERENCE.name]
        if unknown:
            raise InputError(f"{export_dir}: no variant {', '.join(unknown)} in the manifest; "
                             f"it lists {', '.join(available) or 'nothing'}")
    plans: list[VariantPlan] = []
    if reference:  # the reference for fidelity, whatever subset of artifacts is measured
        plans.append(reference_plan(manifest, export_dir))
    unavailable: dict[str, str | None] = {}
    for entry in manifest.artifacts:
        extra_names = [n for n in available if n.startswith(entry.name + "-")]
        if names is not None and entry.name not in names and not set(extra_names) & set(names):
            continue
        backend = backend_of_format(entry.format) if entry.format != REFERENCE.format else None
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
            unavailable[backend] = backend_unavailable_reason(backend, device)
        if unavailable[backend]:
            plan.status, plan.reason = "skipped", str(unavailable[backend])
        plans.extend(p for p in _other_backends(plan, unavailable, device) if names is None or p.name in names)
        if names is not None and entry.name not in names:
            plans.remove(plan)
    if not any(p.status == "pending" for p in plans):
        reasons = "; ".join(f"{p.name}: {p.reason}" for p in plans) or "the manifest lists no artifact"
        raise ArtifactError(f"{export_dir}: nothing can be measured here ({reasons})")
    return plans


def bf16_hint_precision(backend: str, precision: str) -> str | None:
    """The precision of a graph run with OpenVINO's bf16 inference hint (None: no such row):
    the FP32 graph becomes ``bf16``, the INT8 graph's float layers ``int8+bf16``."""
    if backend != "openvino":
        return None
    return {"fp32": "bf16", "int8": "int8+bf16"}.get(precision)


def _other_backends(plan: VariantPlan, unavailable: dict[str, str | None], device: int) -> list[VariantPlan]:
    """The same file on the format's other backends (ONNX on OpenVINO: ``onnx-fp32-openvino``),
    and OpenVINO's bf16 inference hint on the FP32 graph (``onnx-fp32-openvino-bf16``,
    precision ``bf16``) and on the INT8 graph, whose float layers it then runs in bf16
    (``onnx-int8-openvino-bf16``, precision ``int8+bf16``), each measured only where the CPU
    has native bf16. Their precisions differ from the graphs', so ``backend="auto"`` never
    takes their times for the graph's own."""
    from dataclasses import replace

    from ndr_edge.cpu import cpu_features

    extra = []
    for backend in FORMAT_BY_NAME[plan.format].backends[1:]:
        if backend not in unavailable:
            unavailable[backend] = backend_unavailable_reason(backend, device)
        other = replace(plan, name=f"{plan.name}-{backend}", backend=backend)
        if plan.status == "pending" and unavailable[backend]:
            other.status, other.reason = "skipped", str(unavailable[backend])
        extra.append(other)
        precision = bf16_hint_precision(backend, plan.precision)
        if precision:
            bf16 = replace(other, name=f"{other.name}-bf16", precision=precision, hint="bf16")
            if bf16.status == "pending" and not cpu_features().bf16:
                bf16.status, bf16.reason = "skipped", f"bf16 needs AVX512-BF16 or AMX; this CPU: {cpu_features().summary()}"
            extra.append(bf16)
    return extra
