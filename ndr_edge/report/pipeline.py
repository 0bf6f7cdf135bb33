"""``run_report``: measure every variant of an export on the same evaluation set and the same
inputs, then write ``report.json`` (for scripts), ``report.md`` (for people),
``accuracy_latency.png`` and ``samples.png``.

Per variant: quality (in this process, :mod:`.measure`), then latency and memory (a fresh
process per variant, :mod:`.worker`). A variant that cannot run is recorded as ``failed``
(or ``skipped`` where its backend is absent) with the reason; the others are measured.
Everything is rendered in memory first and each file is written atomically, ``report.json``
last, so a failed run leaves no partial file behind.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ndr_edge.artifact import Manifest, atomic_write_bytes, atomic_write_json
from ndr_edge.errors import InputError, NDREdgeError
from ndr_edge.metrics import json_float
from ndr_edge.report.config import ReportConfig
from ndr_edge.report.evalset import EvalSet, build_eval_set
from ndr_edge.report.latency import LatencyError, measure_latency
from ndr_edge.report.machine import machine_info, versions
from ndr_edge.report.measure import measure_quality, shown_samples
from ndr_edge.report.plan import plan_variants
from ndr_edge.report.results import VariantResult, best_per_degradation
from ndr_edge.report.runners import open_variant
from ndr_edge.report.worker import error_line

REPORT_JSON = "report.json"
REPORT_MD = "report.md"
ACCURACY_PNG = "accuracy_latency.png"
SAMPLES_PNG = "samples.png"
REPORT_SCHEMA = 1


def _reason(exc: BaseException) -> str:
    """The first line of our own errors; others say their type too."""
    return str(exc).strip().partition("\n")[0] if isinstance(exc, NDREdgeError) else error_line(exc)


class ReportRun:
    """One report: plan, measure, render, write."""

    def __init__(self, export_dir: Path, config: ReportConfig, progress: bool = True) -> None:
        self.export_dir = Path(export_dir)
        self.config = config.check()
        self.progress = progress
        self.manifest = Manifest.read(self.export_dir)  # ArtifactError when there is none
        self.out = Path(config.out) if config.out is not None else self.export_dir
        self.results: list[VariantResult] = []
        self.reference: VariantResult | None = None
        self.eval_set: EvalSet | None = None
        self.started = time.perf_counter()
        self.machine: dict[str, Any] = {}

    def log(self, message: str) -> None:
        if self.progress:
            tqdm.write(f"ndr-report: {message}", file=sys.stderr)

    def measure(self) -> None:
        plans = plan_variants(self.export_dir, self.manifest, self.config.variants, self.config.reference,
                              self.config.device)
        self.eval_set = build_eval_set(self.config)
        samples = self.eval_set.samples
        reference_outputs: list[np.ndarray] | None = None
        with tqdm(total=2 * len(plans), desc="ndr-report", unit="step", disable=not self.progress,
                  file=sys.stderr) as bar:
            for plan in plans:
                result = VariantResult(plan, status=plan.status if plan.status != "pending" else "pending",
                                       reason=plan.reason)
                self.results.append(result)
                if plan.status != "pending":
                    self.log(f"{plan.name:<13} {plan.status}: {plan.reason}")
                    bar.update(2)
                    continue
                becomes_reference = self.reference is None and plan.precision == "fp32" and plan.format != "engine"
                bar.set_description(f"ndr-report {plan.name} quality")
                try:
                    opened = open_variant(plan, threads=self.config.threads, device=self.config.device)
                    try:
                        result.quality = measure_quality(opened, samples, reference_outputs,
                                                         keep_outputs=becomes_reference, progress=self.progress)
                    finally:
                        opened.close()
                except Exception as exc:  # noqa: BLE001 - any backend error fails this variant, the others go on
                    result.status, result.reason = "failed", f"quality: {_reason(exc)}"
                    self.log(f"{plan.name:<13} failed: {result.reason}")
                    bar.update(2)
                    continue
                if becomes_reference:
                    self.reference, result.is_reference = result, True
                    reference_outputs = result.quality.outputs
                    result.quality.outputs = None
                bar.update(1)
                bar.set_description(f"ndr-report {plan.name} latency")
                try:
                    result.latency = measure_latency(plan, self.config, progress=self.progress)
                    result.status = "ok"
                    failed = [f"{e['size']} batch {e['batch']}: {e['error']}" for e in result.latency["entries"]
                              if "error" in e]
                    if failed:
                        result.notes.append("latency not measured at " + "; ".join(failed))
                except LatencyError as exc:
                    result.status, result.reason = "failed", f"latency: {exc}"
                    self.log(f"{plan.name:<13} failed: {result.reason}")
                bar.update(1)
                latency = result.latency_ms(self.config)
                if result.status == "ok":
                    mean = np.mean(list(result.quality.psnr.values()))
                    self.log(f"{plan.name:<13} mean PSNR {mean:.2f} dB"
                             + (f", {latency:.1f} ms/frame" if latency is not None else ""))
        if self.reference is not None and self.reference.plan.format != "checkpoint":
            skipped = next((r for r in self.results if r.plan.format == "checkpoint"), None)
            why = f" ({skipped.reason})" if skipped is not None and skipped.reason else ""
            self.reference.notes.append(f"reference for fidelity: the PyTorch checkpoint was not measured{why}")

    def payload(self) -> dict[str, Any]:
        assert self.eval_set is not None
        config = self.config
        degradations = self.eval_set.degradations
        ref = self.reference
        variants = [r.to_dict(config, ref, self.export_dir) for r in self.results]
        best = best_per_degradation(self.results, degradations, config)
        first = next((r.quality for r in self.results if r.quality is not None), None)
        (h, w), batch = config.primary
        return {
            "schema": REPORT_SCHEMA,
            "export_dir": str(self.export_dir),
            "source": self.manifest.source,
            "reference": ref.name if ref is not None else None,
            "evaluation": {
                **self.eval_set.description, "samples": len(self.eval_set.samples),
                "protocol": "reflect-pad right/bottom to a multiple of 8, run, crop back; PSNR (peak 1) and SSIM "
                            "(Gaussian 11x11, sigma 1.5) on all RGB channels on [0, 1] after clipping; mean per degradation",
                "fidelity": "each variant's restored images against the reference's on the same samples, unclipped: "
                            "PSNR over all pixels of all samples, and the largest absolute difference",
                "input_psnr": {k: json_float(v, 4) for k, v in first.input_psnr.items()} if first else {},
                "input_ssim": {k: json_float(v, 5) for k, v in first.input_ssim.items()} if first else {},
                "images_per_degradation": first.images if first else {},
            },
            "latency_method": {
                "headline": f"per frame at {h}x{w}, batch {batch}: median and p90 of {config.repeats} timed calls after "
                            f"{config.warmup} warm-up calls",
                "timing": "time.perf_counter around the backend's synchronous infer on a seeded random float32 batch, "
                          "each variant in a fresh process; per frame = per call / batch; "
                          "throughput = frames / summed call time",
                "memory": "peak resident set of that process while opening the model and running every timed call, "
                          "above its resident set after importing the backend library",
                "sizes": [f"{a}x{b}" for a, b in config.sizes], "batches": list(config.batches),
                "warmup": config.warmup, "repeats": config.repeats, "threads": config.threads,
                "onnxruntime_provider": "CPUExecutionProvider",
            },
            "budget_ms": config.budget_ms,
            "best": best,
            "variants": variants,
            "machine": self.machine,
            "versions": versions(),
            "config": config.to_dict(),
            "seconds": round(time.perf_counter() - self.started, 1),
        }

    def run(self) -> Path:
        from ndr_edge.report.plot import accuracy_latency_png, samples_png
        from ndr_edge.report.render import render_markdown

        self.started = time.perf_counter()
        self.machine = machine_info(self.config.device)
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{self.out}: cannot write the report there ({exc.strerror}); choose another --out") from None
        self.measure()
        assert self.eval_set is not None
        payload = self.payload()
        plot_png = accuracy_latency_png(payload)
        crops_png = samples_png(self.eval_set.samples, shown_samples(self.eval_set.samples), self.results,
                                self.config.crop)
        markdown = render_markdown(payload, figures={"accuracy": ACCURACY_PNG, "samples": SAMPLES_PNG})
        atomic_write_bytes(self.out / ACCURACY_PNG, plot_png)
        atomic_write_bytes(self.out / SAMPLES_PNG, crops_png)
        atomic_write_bytes(self.out / REPORT_MD, markdown.encode())
        atomic_write_json(self.out / REPORT_JSON, payload)
        return self.out / REPORT_JSON


def run_report(outdir: str | Path, *, config: ReportConfig | None = None, progress: bool = True) -> Path:
    """Measure every variant of the export in ``outdir`` (its ``manifest.json``) and write
    ``report.json``, ``report.md``, ``accuracy_latency.png`` and ``samples.png`` (into
    ``config.out``, default ``outdir``). Returns the ``report.json`` path.

    Raises ``ArtifactError`` when ``outdir`` has no manifest or nothing in it can be measured;
    a single variant that fails is recorded in the report with the reason instead."""
    return ReportRun(Path(outdir), config or ReportConfig(), progress=progress).run()


def write_report(outdir: str | Path, progress: bool = True) -> Path:
    """``ndr-export --report``: :func:`run_report` with the default configuration."""
    return run_report(outdir, progress=progress)
