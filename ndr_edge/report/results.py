"""What a report holds per variant (:class:`VariantResult`) and the choices made from it;
shared by :mod:`.pipeline` (which fills it) and :mod:`.plot` / :mod:`.render` (which show it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ndr_edge.metrics import json_float
from ndr_edge.report.config import ReportConfig
from ndr_edge.report.measure import QualityResult
from ndr_edge.report.plan import VariantPlan


@dataclass
class VariantResult:
    plan: VariantPlan
    status: str = "pending"  # ok | failed | skipped
    reason: str = ""
    quality: QualityResult | None = None
    latency: dict[str, Any] | None = None
    is_reference: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.plan.name

    def primary_latency(self, config: ReportConfig) -> dict[str, Any] | None:
        """The entry at the first size and the smallest batch, if it was measured."""
        if not self.latency:
            return None
        (h, w), batch = config.primary
        for entry in self.latency["entries"]:
            if entry["size"] == f"{h}x{w}" and entry["batch"] == batch and "error" not in entry:
                return dict(entry)
        return None

    def latency_ms(self, config: ReportConfig) -> float | None:
        entry = self.primary_latency(config)
        return float(entry["per_frame_median_ms"]) if entry else None

    def to_dict(self, config: ReportConfig, reference: VariantResult | None, export_dir: Path) -> dict[str, Any]:
        plan, quality = self.plan, self.quality
        primary = self.primary_latency(config)
        entries = self.latency["entries"] if self.latency else []
        first_size = f"{config.sizes[0][0]}x{config.sizes[0][1]}"
        fps = [e["fps"] for e in entries if "error" not in e and e["size"] == first_size]
        path: str | None = None
        if plan.path is not None:
            try:
                path = str(plan.path.resolve().relative_to(export_dir.resolve()))
            except ValueError:
                path = str(plan.path)
        data: dict[str, Any] = {
            "name": plan.name, "backend": plan.backend, "precision": plan.precision, "format": plan.format,
            "status": self.status, "reason": self.reason or None, "reference": self.is_reference,
            "path": path, "sha256": plan.sha256 or None, "size_bytes": plan.size_bytes,
            "latency_ms": {"median": json_float(primary["per_frame_median_ms"], 4),
                           "p90": json_float(primary["per_frame_p90_ms"], 4),
                           "size": primary["size"], "batch": primary["batch"]} if primary else None,
            "throughput_fps": json_float(max(fps), 4) if fps else None,
            # how many camera streams of config.stream_fps this machine restores at the first size
            "streams": json_float(max(fps) / config.stream_fps, 4) if fps else None,
            "psnr": {k: json_float(v, 4) for k, v in quality.psnr.items()} if quality else {},
            "ssim": {k: json_float(v, 5) for k, v in quality.ssim.items()} if quality else {},
            "psnr_loss_db": {}, "ssim_loss": {},
            "fidelity_psnr_db": None, "fidelity_max_abs": None, "fidelity_psnr_db_by_degradation": {},
            "peak_memory_mb": self.latency["memory"]["model_peak_mb"] if self.latency else None,
            "memory": self.latency["memory"] if self.latency else None,
            "gpu_memory_mb": self.latency.get("gpu_memory_mb") if self.latency else None,
            "latency": [{k: json_float(v, 4) if isinstance(v, float) else v for k, v in e.items()} for e in entries],
            "describe": self.latency.get("describe") if self.latency else None,
            "eval_seconds": round(quality.seconds, 2) if quality else None,
            "notes": self.notes,
        }
        if quality is not None and reference is not None and reference.quality is not None and not self.is_reference:
            ref = reference.quality
            data["psnr_loss_db"] = {k: json_float(ref.psnr[k] - v, 4) for k, v in quality.psnr.items() if k in ref.psnr}
            data["ssim_loss"] = {k: json_float(ref.ssim[k] - v, 5) for k, v in quality.ssim.items() if k in ref.ssim}
        if quality is not None and quality.fidelity is not None:
            data["fidelity_psnr_db"] = json_float(quality.fidelity.psnr_db, 4)
            data["fidelity_max_abs"] = json_float(quality.fidelity.max_abs, 7)
            data["fidelity_psnr_db_by_degradation"] = {
                k: json_float(v, 4) for k, v in quality.fidelity.psnr_by_degradation().items()}
        return data


def best_per_degradation(results: list[VariantResult], degradations: list[str], config: ReportConfig
                         ) -> dict[str, dict[str, Any]]:
    """For each degradation the artifact with the highest PSNR (compared to 0.01 dB; ties go to
    the faster) among those measured whose per-frame latency fits the budget. The PyTorch
    checkpoint is the reference, not an artifact: it is never picked."""
    best: dict[str, dict[str, Any]] = {}
    for degradation in degradations:
        candidates = []
        for result in results:
            if result.status != "ok" or result.plan.is_reference or result.quality is None:
                continue
            if degradation not in result.quality.psnr:
                continue
            latency = result.latency_ms(config)
            if config.budget_ms is not None and (latency is None or latency > config.budget_ms):
                continue
            candidates.append((round(result.quality.psnr[degradation], 2), -(latency if latency is not None else math.inf),
                               result))
        if not candidates:
            why = (f"no artifact within {config.budget_ms:g} ms per frame" if config.budget_ms is not None
                   else "no artifact was measured")
            best[degradation] = {"variant": None, "reason": why}
            continue
        _, _, winner = max(candidates, key=lambda c: (c[0], c[1]))
        assert winner.quality is not None
        best[degradation] = {"variant": winner.name, "psnr": json_float(winner.quality.psnr[degradation], 4),
                             "latency_ms": json_float(winner.latency_ms(config), 4)}
    return best
