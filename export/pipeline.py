"""The exporter: one checkpoint in, every deployable artifact out, each verified, with a
manifest. One method per stage, driven by the table in :mod:`.variants`:

1. ``trace``     restoration network -> ONNX (opset >= 17, dynamic N/H/W, metadata)
2. ``verify``    ONNX Runtime vs PyTorch on degraded real crops at two or more sizes
3. ``simplify``  onnxsim; node counts before/after; the verified graph is kept if it fails
4. ``fp16``      mixed-precision graph, PSNR against FP32 (goal >= 50 dB)
5. ``int8``      explicit Q/DQ from ``ndr_edge.calibration`` (excluded layers listed)
   ``int8_trt``  the same Q/DQ with FP16 compute elsewhere, the graph TensorRT builds INT8
                 engines from (:mod:`.qdq_fp16`), its loss per degradation checked under ORT
6. ``opcheck``   static TensorRT parser / Q/DQ check of every ONNX artifact
7. ``engines``   TensorRT engines of the FP16/INT8 graphs (skipped, with the reason, where
                 TensorRT or a GPU is absent), each run and compared with ONNX Runtime

Everything is written into a staging folder beside OUTDIR and moved into place at the
end; ``manifest.json`` is written last, atomically. A failure leaves OUTDIR as it was.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
from tqdm import tqdm

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, publish, sha256_file
from ndr_edge.errors import ArtifactError, BackendUnavailableError, ConfigError, InputError
from ndr_edge.export import variants as table
from ndr_edge.export.compare import (
    DEFAULT_PER_SIZE,
    DEFAULT_SIZES,
    VerificationSet,
    build_verification_set,
    compare_outputs,
    format_db,
    onnx_outputs,
    run_batches,
)
from ndr_edge.export.onnx_export import (
    OnnxExportOptions,
    export_onnx,
    restoration_graph,
    save_onnx,
    serialize,
    set_metadata,
)
from ndr_edge.export.opcheck import check_model, parse_release
from ndr_edge.export.profiles import Profile
from ndr_edge.export.qdq_compat import fold_int32_bias_dequantize
from ndr_edge.export.simplify import simplify
from ndr_edge.export.variants import BY_NAME, PRECISIONS, Variant

ENGINE_MODES = ("auto", "require", "off")
TIMING_CACHE_NAME = "timing.cache"
STAGES = ("trace", "verify", "simplify", "fp16", "int8", "int8_trt", "opcheck", "engines")


class CheckpointLike(Protocol):
    """What the exporter needs of a loaded checkpoint (``ndr_edge.checkpoint.LoadedCheckpoint``)."""

    path: Path
    sha256: str
    kind: str
    preset: str | None
    model: Any
    channel_order: str
    value_range: tuple[float, float]


@dataclass
class ExportConfig:
    precisions: tuple[str, ...] = PRECISIONS
    engines: str = "auto"  # auto: build where TensorRT + GPU exist; require: fail if not; off
    profiles: tuple[Profile, ...] = (Profile(),)
    workspace_mb: int = table.DEFAULT_WORKSPACE_MB
    timing_cache: Path | None = None  # None: OUTDIR/timing.cache, reused by the next export there
    tensorrt_target: str = "10.3"  # the oldest TensorRT release the graphs must parse on (JetPack 6: 10.3)
    calibration: Path | None = None  # a calibration set folder; None: the default demo recipe
    int8_method: str = table.DEFAULT_INT8_METHOD
    int8_budget_db: float | None = table.DEFAULT_BUDGET_DB
    int8_options: dict[str, Any] = field(default_factory=dict)  # passed on to quantize_int8
    fp16_converters: tuple[str, ...] = table.FP16_CONVERTERS
    verify_sizes: tuple[tuple[int, int], ...] | None = None  # None: 64x96 and 128x128, or fitted to the profile
    verify_per_size: int | None = None  # None: 3, or fitted to the profile's batch range
    fp32_tolerance: float = 1e-4
    #: the FP32 graph rewrites of export/graph_speed.py (its DEFAULT_PASSES), each export checked
    #: against PyTorch within ``fp32_tolerance``; every variant (FP16, INT8) is built on the result
    speed_passes: bool = True
    onnx: OnnxExportOptions = field(default_factory=OnnxExportOptions)
    size_multiple: int = 8
    seed: int = 0
    progress: bool = True

    def check(self) -> ExportConfig:
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown:
            raise InputError(f"precision {', '.join(unknown)}: unknown; choose from {', '.join(PRECISIONS)}")
        if "fp32" not in self.precisions:
            self.precisions = ("fp32", *self.precisions)
        if self.engines not in ENGINE_MODES:
            raise InputError(f"engines={self.engines!r}: choose one of {', '.join(ENGINE_MODES)}")
        if self.verify_sizes is not None and len(self.verify_sizes) < 2:
            raise InputError("verification needs two or more sizes (dynamic H/W is part of what it checks)")
        try:
            parse_release(self.tensorrt_target)
        except ConfigError as exc:
            raise InputError(f"--tensorrt-target: {exc}") from None
        if self.workspace_mb < 16:
            raise InputError(f"--workspace-mb {self.workspace_mb}: too small; give at least 16 MiB")
        for profile in self.profiles:
            profile.check(self.size_multiple)
        if self.calibration is not None and not Path(self.calibration).exists():
            raise InputError(f"--calibration {self.calibration}: no such calibration set; build one with ndr-calib build")
        return self


@dataclass
class _Stage:
    status: str = "pending"
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


class Exporter:
    """``Exporter(checkpoint, outdir, config).run()`` -> the written :class:`Manifest`."""

    def __init__(self, checkpoint: CheckpointLike, outdir: str | os.PathLike[str], config: ExportConfig | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.checkpoint = checkpoint
        self.outdir = Path(outdir)
        self.config = (config or ExportConfig()).check()
        self._log = log
        self.stages: dict[str, _Stage] = {name: _Stage() for name in STAGES}
        self.entries: dict[str, ArtifactEntry] = {}
        self.staging: Path | None = None
        self._models: dict[str, onnx.ModelProto] = {}
        self._outputs: dict[str, list[np.ndarray]] = {}
        self._data: VerificationSet | None = None
        self._graph: Any = None
        self._bar: Any = None
        self._engines_wanted = False
        self._int8_result: Any = None  # what the INT8 stage chose and measured (int8_trt reuses its FP32 scores)

    # -- helpers ----------------------------------------------------------------------
    @property
    def verification_data(self) -> VerificationSet | None:
        """The degraded crops every artifact was verified on (after ``run``)."""
        return self._data

    def log(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        elif self.config.progress:
            tqdm.write(f"ndr-export: {message}", file=sys.stderr)

    def meta(self, precision: str) -> ArtifactMeta:
        ckpt = self.checkpoint
        lo, hi = ckpt.value_range
        return ArtifactMeta(
            preset=ckpt.preset, channel_order=ckpt.channel_order, value_range=(float(lo), float(hi)),
            size_multiple=self.config.size_multiple, source_sha256=ckpt.sha256, precision=precision,
            config=_config_dict(ckpt),
        )

    def _path(self, variant: Variant) -> Path:
        assert self.staging is not None
        return self.staging / variant.filename

    def _entry(self, variant: Variant, verification: dict[str, Any], details: dict[str, Any]) -> ArtifactEntry:
        path = self._path(variant)
        entry = ArtifactEntry(name=variant.name, format=variant.format, precision=variant.precision,
                              path=variant.filename, sha256=sha256_file(path), verification=verification,
                              details=details)
        self.entries[variant.name] = entry
        return entry

    @contextmanager
    def _stage(self, name: str) -> Iterator[_Stage]:
        stage = self.stages[name]
        if self._bar is not None:
            self._bar.set_description(f"ndr-export {name}")
        start = time.perf_counter()
        try:
            yield stage
        except BaseException:
            stage.status = "failed"
            raise
        finally:
            stage.seconds = round(time.perf_counter() - start, 2)
            if self._bar is not None:
                self._bar.update(1)
        if stage.status == "pending":
            stage.status = "ran"
        summary = stage.info.get("summary", stage.info.get("reason", ""))
        self.log(f"{name:<8} {stage.status:<7} {stage.seconds:6.1f} s  {summary}")

    def _skip(self, stage: _Stage, reason: str) -> None:
        stage.status = "skipped"
        stage.info["reason"] = reason

    # -- preflight --------------------------------------------------------------------
    def _preflight(self) -> None:
        self._engines_wanted = preflight(self.outdir, self.config)

    # -- stages -----------------------------------------------------------------------
    def trace(self) -> None:
        with self._stage("trace") as stage:
            graph = restoration_graph(self.checkpoint.model)
            model = export_onnx(graph, self.meta("fp32"), self.config.onnx)
            self._models["traced"] = model
            self._graph = graph
            opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
            stage.info = {"nodes": len(model.graph.node), "opset": opset,
                          "exporter": next((p.value for p in model.metadata_props if p.key.endswith(".exporter")), ""),
                          "summary": f"{len(model.graph.node)} nodes, opset {opset}"}

    def verify(self) -> None:
        with self._stage("verify") as stage:
            ckpt = self.checkpoint
            sizes, per_size = verification_shapes(self.config, self._engines_wanted)
            self._data = build_verification_set(
                sizes, per_size, ckpt.channel_order,
                tuple(ckpt.value_range), self.config.size_multiple, self.config.seed,  # type: ignore[arg-type]
            )
            from ndr_edge.torch_backend import TorchBackend

            with TorchBackend(self._graph, self.meta("fp32")) as reference:
                self._outputs["torch"] = run_batches(reference.infer, self._data)
            traced = onnx_outputs(serialize(self._models["traced"]), self._data)
            comparison = compare_outputs(self._outputs["torch"], traced)
            stage.info = {"data": self._data.describe(), **comparison.to_dict("traced_vs_torch_"),
                          "tolerance": self.config.fp32_tolerance,
                          "summary": f"max abs {comparison.max_abs:.2e} vs PyTorch at "
                                     f"{', '.join(self._data.describe()['sizes'])}"}
            if not comparison.max_abs <= self.config.fp32_tolerance:
                raise ArtifactError(
                    f"traced ONNX disagrees with PyTorch: max abs {comparison.max_abs:.3g} > "
                    f"{self.config.fp32_tolerance:g}; the checkpoint's model does not trace faithfully (report it)"
                )

    def simplify(self) -> None:
        """onnxsim, then the speed passes of :mod:`.graph_speed`; each result is kept only if
        it still agrees with PyTorch within the FP32 tolerance on the verification data."""
        assert self._data is not None
        with self._stage("simplify") as stage:
            from ndr_edge.export.graph_speed import DEFAULT_PASSES, speed_up
            from ndr_edge.export.simplify import op_counts

            traced = self._models["traced"]
            result = simplify(traced)
            final = traced
            outputs = None
            tolerance = self.config.fp32_tolerance
            if result.simplified:
                outputs = onnx_outputs(serialize(result.model), self._data)
                check = compare_outputs(self._outputs["torch"], outputs)
                if check.max_abs <= tolerance:
                    final = result.model
                else:
                    result.simplified, result.nodes_after = False, result.nodes_before
                    result.reason = (f"simplified graph disagrees with PyTorch (max abs {check.max_abs:.3g}); "
                                     "kept the verified traced graph")
                    outputs = None
            # the speed passes; without the LayerNorm rewrite (the one that moves a sum's rounding
            # most) if the whole set misses the tolerance, and not at all if that misses it too
            speed: dict[str, Any] = {"applied": False, "passes": {}, "attempts": []}
            tries = (DEFAULT_PASSES, tuple(p for p in DEFAULT_PASSES if p != "channel_layernorm"))
            for passes in tries if self.config.speed_passes else ():
                fast = speed_up(final, passes, size_multiple=self.config.size_multiple)
                attempt: dict[str, Any] = {"passes": dict(fast.counts)}
                if fast.errors:
                    attempt["errors"] = dict(fast.errors)
                speed["attempts"].append(attempt)
                if not fast.changed:
                    break
                fast_outputs = onnx_outputs(serialize(fast.model), self._data)
                check = compare_outputs(self._outputs["torch"], fast_outputs)
                attempt["vs_torch_max_abs"] = check.max_abs
                if check.max_abs <= tolerance:
                    final, outputs = fast.model, fast_outputs
                    speed.update(applied=True, passes=dict(fast.counts), nodes_before=fast.nodes_before,
                                 nodes_after=fast.nodes_after)
                    break
            if not self.config.speed_passes:
                speed["reason"] = "turned off (ndr-export --no-speed-passes)"
            elif not speed["applied"]:
                misses = [a["vs_torch_max_abs"] for a in speed["attempts"] if "vs_torch_max_abs" in a]
                speed["reason"] = (f"the rewritten graph disagrees with PyTorch (max abs {min(misses):.3g} > "
                                   f"{tolerance:g}); kept the graph before" if misses else "no pattern to rewrite")
            if outputs is None:
                outputs = onnx_outputs(serialize(final), self._data)
            variant = BY_NAME["onnx-fp32"]
            save_onnx(final, self._path(variant))
            self._models["onnx-fp32"] = final
            self._outputs["fp32"] = outputs
            comparison = compare_outputs(self._outputs["torch"], outputs)
            # nodes_after / op_counts describe the saved graph; onnxsim's own count is kept beside them
            details = {**result.details(), "onnxsim_nodes_after": result.nodes_after,
                       "nodes_after": len(final.graph.node), "op_counts": op_counts(final), "speed": speed}
            self._entry(variant, {**comparison.to_dict("vs_torch_"), "tolerance": self.config.fp32_tolerance,
                                  "passed": comparison.max_abs <= self.config.fp32_tolerance,
                                  "data": self._data.describe()},
                        {"simplify": details, "opset": self.stages["trace"].info["opset"],
                         "exporter": self.stages["trace"].info["exporter"]})
            rewrites = ", ".join(f"{name} {count}" for name, count in speed["passes"].items() if count)
            stage.info = {**details, "summary": (
                (f"{result.nodes_before} -> {len(final.graph.node)} nodes" if result.simplified
                 else f"kept the traced graph: {result.reason}")
                + (f" (speed passes: {rewrites})" if speed["applied"] else ""))}
            if result.reason:
                stage.info["reason"] = result.reason

    def fp16(self) -> None:
        assert self._data is not None
        with self._stage("fp16") as stage:
            if "fp16" not in self.config.precisions:
                return self._skip(stage, "not requested (--precision)")
            from ndr_edge.export.fp16 import convert_fp16

            result = convert_fp16(self._models["onnx-fp32"], self._data, self._outputs["fp32"],
                                  self.config.fp16_converters)
            model = result.model
            set_metadata(model, self.meta("fp16"))
            variant = BY_NAME["onnx-fp16"]
            save_onnx(model, self._path(variant))
            self._models["onnx-fp16"] = model
            self._entry(variant, result.comparison, result.details())
            psnr = result.comparison["vs_fp32_psnr_db"]
            others = ", ".join(f"{name} " + (format_db(info["psnr_db_vs_fp32"]) if "psnr_db_vs_fp32" in info
                                             else str(info.get("status")))
                               for name, info in result.candidates.items() if name != result.backend)
            stage.info = {"backend": result.backend, "candidates": result.candidates,
                          "summary": f"{result.backend}: {format_db(psnr)} vs FP32"
                                     + (f" (goal {result.comparison['goal_db']:.0f} dB not met)"
                                        if not result.comparison["meets_goal"] else "")
                                     + (f"; also tried {others}" if others else "")}

    def int8(self) -> None:
        assert self._data is not None and self.staging is not None
        with self._stage("int8") as stage:
            if "int8" not in self.config.precisions:
                return self._skip(stage, "not requested (--precision)")
            try:
                from ndr_edge.calibration import quantize_int8
            except ImportError as exc:
                return self._skip(stage, f"calibration unavailable ({exc})")
            variant = BY_NAME["onnx-int8"]
            out = self._path(variant)
            if self.config.calibration is not None:
                from ndr_edge.calibration import check_calibration_for

                check_calibration_for(self.config.calibration, self._path(BY_NAME["onnx-fp32"]))
            result = self._int8_result = quantize_int8(
                self._path(BY_NAME["onnx-fp32"]), out, calibration=self.config.calibration,
                method=self.config.int8_method, budget_db=self.config.int8_budget_db,
                progress=self.config.progress, **{"workdir": self.staging, **self.config.int8_options},
            )
            model = onnx.load(str(out))
            folded = fold_int32_bias_dequantize(model)  # TensorRT takes float biases, not INT32 DQ
            set_metadata(model, self.meta("int8"))
            model.producer_name = self._models["onnx-fp32"].producer_name
            model.producer_version = self._models["onnx-fp32"].producer_version
            save_onnx(model, out)
            self._models["onnx-int8"] = model
            outputs = onnx_outputs(out, self._data)
            comparison = compare_outputs(self._outputs["fp32"], outputs)
            entry = result.manifest_entry() if hasattr(result, "manifest_entry") else {
                "method": result.method, "excluded": result.excluded, "loss_db": result.loss_db}
            self._entry(variant, {**comparison.to_dict("vs_fp32_"), "loss_db": result.loss_db},
                        {"int8": entry, "excluded": result.excluded, "int32_bias_dq_folded": folded, "qdq_nodes": sum(
                            1 for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear"))})
            stage.info = {"method": result.method, "excluded": len(result.excluded),
                          "summary": f"{result.method}, {len(result.excluded)} layer(s) kept in float, "
                                     f"{format_db(comparison.psnr_db)} vs FP32"}

    def int8_trt(self) -> None:
        """The INT8 graph for TensorRT: the CPU INT8 graph's Q/DQ, FP16 compute elsewhere
        (FP32 for the FP16 stage's sensitive list); its PSNR loss per degradation against FP32
        is measured under ONNX Runtime on the INT8 evaluation set. Over the budget, the layers
        the INT8 search kept in float are kept in FP32 too, and that graph is measured."""
        assert self._data is not None
        with self._stage("int8_trt") as stage:
            source = self.entries.get("onnx-int8")
            if source is None:
                return self._skip(stage, "no INT8 graph (not requested with --precision, or skipped)")
            try:
                from ndr_edge.calibration.evaluate import PSNRByDegradation, default_eval_set, evaluate_onnx
                from ndr_edge.calibration.quantize import SETTINGS_REASON
                from ndr_edge.export.qdq_fp16 import to_int8_fp16
            except ImportError as exc:
                return self._skip(stage, f"FP16 conversion unavailable ({exc})")
            variant = BY_NAME["onnx-int8-trt"]
            out = self._path(variant)
            budget = self.config.int8_budget_db
            samples = self.config.int8_options.get("eval_set") or default_eval_set()
            threads = self.config.int8_options.get("threads")
            # the INT8 stage already scored FP32 on this evaluation set: reuse it
            known = self._int8_result.details.get("psnr_fp32") if self._int8_result is not None else None
            reference = (PSNRByDegradation(dict(known), {}) if known
                         else evaluate_onnx(self._path(BY_NAME["onnx-fp32"]), samples, threads=threads))
            searched = [e["node"] for e in source.details.get("excluded", [])
                        if not str(e.get("reason", "")).startswith(SETTINGS_REASON)]
            attempts: list[dict[str, Any]] = []
            for extra in ([], searched) if searched else ([],):
                model, info = to_int8_fp16(self._models["onnx-int8"], keep_fp32_extra=extra)
                set_metadata(model, self.meta("int8"))
                save_onnx(model, out)
                loss = evaluate_onnx(out, samples, threads=threads).loss_against(reference)
                worst = max(loss.values())
                attempts.append({"searched_layers_fp32": bool(extra), "loss_db": loss, "worst_db": round(worst, 4)})
                if budget is None or worst <= budget:
                    break
            self._models[variant.name] = model
            outputs = onnx_outputs(out, self._data)
            comparison = compare_outputs(self._outputs["fp32"], outputs)
            within = None if budget is None else attempts[-1]["worst_db"] <= budget
            kept = info.pop("kept_fp32")
            self._entry(variant, {**comparison.to_dict("vs_fp32_"), "loss_db": attempts[-1]["loss_db"]},
                        {"int8_trt": {**info, "kept_fp32_count": len(kept), "kept_fp32": kept, "budget_db": budget,
                                      "within_budget": within, "attempts": attempts,
                                      "eval_set": f"{len(samples)} frames (the INT8 evaluation set)"}})
            stage.info = {"attempts": len(attempts), "within_budget": within,
                          "summary": f"FP16 compute, {len(kept)} node(s) FP32, worst loss "
                                     f"{attempts[-1]['worst_db']:+.3f} dB, {format_db(comparison.psnr_db)} vs FP32"
                                     + ("" if within in (None, True) else f" (budget {budget} dB NOT met)")}

    def opcheck(self) -> None:
        with self._stage("opcheck") as stage:
            results = {}
            for name, entry in self.entries.items():
                if entry.format != "onnx":
                    continue
                report = check_model(self._models[name], target=self.config.tensorrt_target)
                entry.details["tensorrt_opcheck"] = {k: v for k, v in report.to_dict().items() if k != "ops"}
                results[name] = report.ok
                if not report.ok:
                    self.log(f"opcheck {name}: {report.summary()}")
            stage.info = {"ok": results, "summary": ", ".join(f"{n} {'ok' if ok else 'FAILED'}"
                                                              for n, ok in results.items())}

    def engines(self) -> None:
        assert self._data is not None and self.staging is not None
        with self._stage("engines") as stage:
            wanted = [v for v in (BY_NAME["engine-fp16"], BY_NAME["engine-int8"])
                      if v.precision in self.config.precisions and BY_NAME[v.source or ""].name in self.entries]
            if self.config.engines == "off":
                return self._skip(stage, "not requested (--no-engine)")
            if not wanted:
                return self._skip(stage, "no FP16 or INT8 graph to build from")
            if not self._engines_wanted:
                from ndr_edge.export.tensorrt_build import tensorrt_status

                return self._skip(stage, tensorrt_status()[1])
            from ndr_edge.export.tensorrt_build import EngineBuildOptions, build_engine
            from ndr_edge.runtime.backends import open_backend

            cache = self.config.timing_cache
            if cache is None:
                cache = self.staging / TIMING_CACHE_NAME
                if (self.outdir / TIMING_CACHE_NAME).is_file():
                    shutil.copyfile(self.outdir / TIMING_CACHE_NAME, cache)
            options = EngineBuildOptions(profiles=self.config.profiles, workspace_mb=self.config.workspace_mb,
                                         timing_cache=cache)
            built = []
            for variant in wanted:
                source = self.entries[variant.source or ""]
                if not source.details.get("tensorrt_opcheck", {}).get("ok", True):
                    raise ArtifactError(f"{source.path}: fails the TensorRT operator check "
                                        f"({source.details['tensorrt_opcheck']['errors'][0]}); cannot build {variant.name}")
                info = build_engine(self.staging / source.path, self._path(variant), variant.precision,
                                    self.meta(variant.precision), options)
                with open_backend(self._path(variant), "tensorrt") as engine:
                    outputs = run_batches(engine.infer, self._data)
                vs_fp32 = compare_outputs(self._outputs["fp32"], outputs)
                vs_onnx = compare_outputs(onnx_outputs(self.staging / source.path, self._data), outputs)
                self._entry(variant, {**vs_fp32.to_dict("vs_fp32_onnx_"), **vs_onnx.to_dict("vs_same_onnx_")},
                            {"sidecar": variant.filename + ".json", "tensorrt_version": info.tensorrt_version,
                             "gpu_name": info.gpu_name, "compute_capability": info.compute_capability,
                             "profiles": info.to_dict()["profiles"], "build_seconds": info.extra["build_seconds"],
                             "onnx_sha256": info.onnx_sha256})
                built.append(f"{variant.name} {format_db(vs_fp32.psnr_db)} vs FP32")
            stage.info = {"timing_cache": str(cache if self.config.timing_cache else TIMING_CACHE_NAME),
                          "summary": "; ".join(built)}

    # -- the whole run ----------------------------------------------------------------
    def manifest(self) -> Manifest:
        ckpt = self.checkpoint
        source = {"path": str(ckpt.path), "sha256": ckpt.sha256, "kind": ckpt.kind, "preset": ckpt.preset,
                  "channel_order": ckpt.channel_order, "value_range": list(ckpt.value_range),
                  "config": _config_dict(ckpt)}
        stages = {name: {"status": s.status, "seconds": s.seconds,
                         **{k: v for k, v in s.info.items() if k != "summary"},
                         **({"summary": s.info["summary"]} if "summary" in s.info else {})}
                  for name, s in self.stages.items()}
        order = [v.name for v in BY_NAME.values()]
        artifacts = sorted(self.entries.values(), key=lambda e: order.index(e.name))
        return Manifest(source=source, artifacts=artifacts, stages=stages)

    def run(self) -> Manifest:
        self._preflight()
        created = [p for p in (self.outdir, *self.outdir.parents) if not p.exists()]
        try:
            self.outdir.parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.outdir.name}.staging-", dir=self.outdir.parent))
        except OSError as exc:
            _remove_empty(created)
            raise InputError(f"{self.outdir}: cannot write there ({exc.strerror}); choose another -o") from None
        try:
            with tqdm(total=len(STAGES), disable=not self.config.progress, file=sys.stderr, leave=False,
                      unit="stage") as self._bar:
                for stage in STAGES:
                    getattr(self, stage)()
            manifest = self.manifest()
            self._publish(manifest)
            return manifest
        except BaseException:
            self._remove_staging()
            _remove_empty(created)
            raise
        finally:
            self._bar = None
            self._remove_staging()

    def _remove_staging(self) -> None:
        if self.staging is not None and self.staging.exists():
            shutil.rmtree(self.staging, ignore_errors=True)

    def _publish(self, manifest: Manifest) -> None:
        """Move the staged files into OUTDIR; the manifest goes last."""
        assert self.staging is not None
        files = [Path(e.path) for e in manifest.artifacts]
        files += [Path(e.path + ".json") for e in manifest.artifacts if e.format == "engine"]
        if self.config.timing_cache is None and (self.staging / TIMING_CACHE_NAME).is_file():
            files.append(Path(TIMING_CACHE_NAME))
        self.outdir.mkdir(parents=True, exist_ok=True)
        for name in files:
            publish(self.staging / name, self.outdir / name)
        manifest.write(self.outdir)


def preflight(outdir: str | os.PathLike[str], config: ExportConfig) -> bool:
    """Check, before any work, that OUTDIR can be written and the engine request can be met;
    return whether engines will be built."""
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder; choose another -o")
    probe = out if out.exists() else out.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{out}: not writable ({probe} is not a writable folder); choose another -o or fix permissions")
    if config.engines == "off":
        return False
    from ndr_edge.export.tensorrt_build import check_sizes_in_profiles, tensorrt_status

    wanted, reason = tensorrt_status()
    if config.engines == "require" and not wanted:
        raise BackendUnavailableError(f"engines requested but {reason}")
    if wanted and {"fp16", "int8"} & set(config.precisions):
        sizes, per_size = verification_shapes(config, True)
        shapes = [(per_size, 3, h, w) for h, w in sizes]
        check_sizes_in_profiles(config.profiles, shapes, "verification batch (--verify-sizes)")
    return wanted


def verification_shapes(config: ExportConfig, engines: bool) -> tuple[tuple[tuple[int, int], ...], int]:
    """The verification sizes and batch: as configured; unset ones are the defaults, or, when
    engines are built and the defaults fall outside the first profile, two sizes from it (its
    min H x W and 1.5 times that, capped at max) and a batch within its N range."""
    sizes = config.verify_sizes or DEFAULT_SIZES
    per_size = config.verify_per_size or DEFAULT_PER_SIZE
    if not engines:
        return sizes, per_size
    profile = config.profiles[0]
    if config.verify_per_size is None:
        per_size = min(max(per_size, profile.min[0]), profile.max[0])
    if config.verify_sizes is None and not all(profile.contains((per_size, 3, h, w)) for h, w in sizes):
        m = config.size_multiple
        h, w = profile.min[2], profile.min[3]
        larger = (min(profile.max[2], (h * 3 // 2 + m - 1) // m * m), min(profile.max[3], (w * 3 // 2 + m - 1) // m * m))
        sizes = ((h, w), larger)
    return sizes, per_size


def _config_dict(checkpoint: CheckpointLike) -> dict[str, Any]:
    config = getattr(checkpoint, "config", None)
    to_dict = getattr(config, "to_dict", None)
    return dict(to_dict()) if callable(to_dict) else {}


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass


def export(checkpoint: str | os.PathLike[str] | CheckpointLike, outdir: str | os.PathLike[str],
           config: ExportConfig | None = None) -> Manifest:
    """Load ``checkpoint`` (a path: this project's or the authors' layout) and export it."""
    if isinstance(checkpoint, (str, os.PathLike)):
        from ndr_edge.checkpoint import load_checkpoint

        checkpoint = load_checkpoint(Path(checkpoint))
    return Exporter(checkpoint, outdir, config).run()


__all__ = ["CheckpointLike", "ExportConfig", "Exporter", "export"]
