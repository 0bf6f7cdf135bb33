"""Stage 4: a mixed-precision FP16 graph: FP16 weights and activations where it is safe,
the numerically sensitive operations in FP32, float32 inputs and outputs.

Kept in FP32 (one table, :data:`KEEP_FP32`, used by both converters):

- the channel LayerNorm's statistics (mean, centring, variance, square root, division), and
  the fused ``LayerNormalization`` nodes the speed passes (``export/graph_speed.py``) write;
- the L2 normalisation of q and k in the transposed attention;
- every softmax (channel attention and the degradation query over the NDR entries);
- the means that feed the low-rank transform's factors;
- the exit convolution that produces the output image.

Two converters are offered and the better one (higher PSNR against the FP32 graph on the
degraded verification images) is kept: NVIDIA ModelOpt's AutoCast
(``modelopt.onnx.autocast.convert_to_mixed_precision``, which TensorRT 11's migration guide
names as the replacement of the FP16 builder flag) and onnxconverter-common's
``convert_float_to_float16``. Either may be absent; the stage records what each gave.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ndr_edge.artifact import INPUT_NAME
from ndr_edge.errors import ArtifactError
from ndr_edge.export.compare import VerificationSet, compare_outputs, onnx_outputs
from ndr_edge.export.variants import FP16_CONVERTERS

GOAL_DB = 50.0


@dataclass(frozen=True)
class KeepFP32Rule:
    """Nodes kept in FP32: op type in ``op_types`` and name matching ``pattern``."""

    name: str
    op_types: tuple[str, ...]
    pattern: str
    reason: str


KEEP_FP32: tuple[KeepFP32Rule, ...] = (
    KeepFP32Rule("layernorm", ("ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div", "Pow"), r"/norm\d*/[A-Za-z]+(_\d+)?$",
                 "channel LayerNorm statistics: the variance of wide features overflows or loses digits in FP16"),
    KeepFP32Rule("layernorm-fused", ("LayerNormalization",), r".*",
                 "LayerNormalization (the speed passes' fused channel norm): its variance overflows FP16 too"),
    KeepFP32Rule("l2norm", ("ReduceL2", "Clip", "Expand", "Div"), r"/attn/[A-Za-z0-9]+(_\d+)?$",
                 "L2 normalisation over H*W pixels: the sum of squares overflows FP16 at large frames"),
    KeepFP32Rule("softmax", ("Softmax",), r".*", "softmax: small logit errors shift the attention weights"),
    KeepFP32Rule("lrt-means", ("ReduceMean",), r"/low_rank_transform\d*/ReduceMean(_\d+)?$",
                 "means over whole rows/columns/frames for the low-rank transform lose digits in FP16"),
    KeepFP32Rule("sensitive-ops", ("ReduceMean", "ReduceL2", "Sqrt", "Softmax"), r".*",
                 "reductions and square roots anywhere (catches graphs whose node names carry no module scope)"),
)
OUTPUT_RULE = "output: the exit convolution that produces the image stays FP32, so the output carries no FP16 rounding"


@dataclass
class Fp16Result:
    model: onnx.ModelProto
    backend: str
    kept_fp32: list[dict[str, str]]
    comparison: dict[str, Any]
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for item in self.kept_fp32:
            counts[item["rule"]] = counts.get(item["rule"], 0) + 1
        return {
            "backend": self.backend,
            "kept_fp32_count": len(self.kept_fp32),
            "kept_fp32_by_rule": counts,
            "kept_fp32_rules": {rule.name: rule.reason for rule in KEEP_FP32} | {"output": OUTPUT_RULE},
            "kept_fp32": self.kept_fp32,
            "candidates": self.candidates,
        }


def sensitive_nodes(model: onnx.ModelProto) -> list[dict[str, str]]:
    """Nodes of ``model`` that :data:`KEEP_FP32` keeps in FP32, with the rule that keeps each."""
    outputs = {o.name for o in model.graph.output}
    kept: list[dict[str, str]] = []
    for node in model.graph.node:
        rule_name = ""
        if outputs.intersection(node.output):
            rule_name = "output"
        else:
            for rule in KEEP_FP32:
                if node.op_type in rule.op_types and re.search(rule.pattern, node.name):
                    rule_name = rule.name
                    break
        if rule_name:
            kept.append({"node": node.name, "op": node.op_type, "rule": rule_name})
    if any(not item["node"] for item in kept):
        raise ArtifactError("fp16: the graph has unnamed nodes; re-export it with ndr-export")
    return kept


@contextlib.contextmanager
def _quiet() -> Any:
    """Silence the converters' chatter (they print and log at INFO)."""
    import warnings

    prefixes = ("modelopt", "autocast", "polygraphy", "onnxconverter_common")
    names = [n for n in list(logging.root.manager.loggerDict) if n.startswith(prefixes)]
    loggers = [logging.getLogger(name) for name in {*prefixes, *names}]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnxconverter-common warns for every clipped tiny weight
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def convert_modelopt(model: onnx.ModelProto, data: VerificationSet | None = None) -> onnx.ModelProto:
    """ModelOpt AutoCast: FP16 except :func:`sensitive_nodes`; the verification batches are its
    reference data (so its own range check sees real activations, not random ones)."""
    from modelopt.onnx.autocast import convert_to_mixed_precision

    names = [item["node"] for item in sensitive_nodes(model)]
    with tempfile.TemporaryDirectory(prefix="ndr-fp16-") as tmp:
        source = Path(tmp) / "fp32.onnx"
        source.write_bytes(model.SerializeToString())
        calibration = None
        if data is not None:
            folder = Path(tmp) / "calib"
            folder.mkdir()
            for index, batch in enumerate(data.batches):
                arrays: dict[str, Any] = {INPUT_NAME: batch}
                np.savez(folder / f"{index:03d}.npz", **arrays)
            calibration = str(folder)
        with _quiet():
            converted = convert_to_mixed_precision(
                onnx_path=str(source), low_precision_type="fp16", keep_io_types=True,
                nodes_to_exclude=[f"^{re.escape(name)}$" for name in names], calibration_data=calibration,
                providers=["cpu"],
            )
    return converted


def convert_onnxconverter(model: onnx.ModelProto, data: VerificationSet | None = None) -> onnx.ModelProto:
    """onnxconverter-common: FP16 except :func:`sensitive_nodes` and its own default block list."""
    from onnxconverter_common import float16

    names = [item["node"] for item in sensitive_nodes(model)]
    with _quiet():
        converted = float16.convert_float_to_float16(
            model, keep_io_types=True, op_block_list=list(float16.DEFAULT_OP_BLOCK_LIST), node_block_list=names,
        )
    return converted


def ensure_float32_io(model: onnx.ModelProto) -> int:
    """Make every graph input/output float32 (casts at the boundary), in place; returns how
    many were changed. onnxconverter-common leaves an FP16 output when the node producing it
    is in its block list, whatever ``keep_io_types`` says."""
    changed = 0
    graph = model.graph
    for value in graph.output:
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        producer = next((n for n in graph.node if value.name in n.output), None)
        if producer is not None and producer.op_type == "Cast":
            for attr in producer.attribute:
                if attr.name == "to":
                    attr.i = onnx.TensorProto.FLOAT
        else:
            inner = f"{value.name}_fp16"
            for node in graph.node:
                node.output[:] = [inner if o == value.name else o for o in node.output]
            graph.node.append(onnx.helper.make_node("Cast", [inner], [value.name], name=f"{value.name}_to_fp32",
                                                    to=onnx.TensorProto.FLOAT))
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        changed += 1
    for value in graph.input:
        if value.type.tensor_type.elem_type != onnx.TensorProto.FLOAT16:
            continue
        inner = f"{value.name}_fp16"
        for node in graph.node:
            node.input[:] = [inner if i == value.name else i for i in node.input]
        graph.node.insert(0, onnx.helper.make_node("Cast", [value.name], [inner], name=f"{value.name}_to_fp16",
                                                   to=onnx.TensorProto.FLOAT16))
        value.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
        changed += 1
    return changed


def nodes_not_in_fp32(model: onnx.ModelProto, names: Sequence[str]) -> list[str]:
    """Of the nodes ``names``, those that read or write an FP16 tensor (after type inference)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type
             for v in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    types.update({i.name: i.data_type for i in inferred.graph.initializer})
    wanted = set(names)
    return [node.name for node in inferred.graph.node if node.name in wanted
            and any(types.get(t) == onnx.TensorProto.FLOAT16 for t in (*node.input, *node.output))]


CONVERTERS: dict[str, Callable[[onnx.ModelProto, VerificationSet | None], onnx.ModelProto]] = {
    "modelopt": convert_modelopt,
    "onnxconverter": convert_onnxconverter,
}


def _finish(converted: onnx.ModelProto, source: onnx.ModelProto) -> onnx.ModelProto:
    """Same header and metadata as the source; deterministic node names."""
    converted.producer_name, converted.producer_version = source.producer_name, source.producer_version
    converted.doc_string, converted.graph.name = source.doc_string, source.graph.name
    del converted.metadata_props[:]
    converted.metadata_props.extend(source.metadata_props)
    for index, node in enumerate(converted.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_fp16_{index}"
    return converted


def convert_fp16(
    model: onnx.ModelProto,
    data: VerificationSet,
    reference: Sequence[np.ndarray],
    backends: Sequence[str] = FP16_CONVERTERS,
) -> Fp16Result:
    """Convert with every available backend, run each under ONNX Runtime (CPU) on ``data``,
    compare with the FP32 outputs ``reference`` and keep the best. Raises ArtifactError only
    when no backend gave a graph that runs."""
    candidates: dict[str, dict[str, Any]] = {}
    best: tuple[float, str, onnx.ModelProto, dict[str, Any]] | None = None
    for backend in backends:
        if backend not in CONVERTERS:
            raise ArtifactError(f"fp16: unknown converter {backend!r}; choose from {', '.join(CONVERTERS)}")
        start = time.perf_counter()
        try:
            converted = _finish(CONVERTERS[backend](model, data), model)
        except ImportError as exc:
            candidates[backend] = {"status": "unavailable", "reason": f"not installed ({exc.name or exc})"}
            continue
        except Exception as exc:  # noqa: BLE001 - a converter's own failure: record it, try the other
            candidates[backend] = {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
            continue
        fixed_io = ensure_float32_io(converted)
        in_fp16 = nodes_not_in_fp32(converted, [item["node"] for item in sensitive_nodes(model)])
        if in_fp16:
            candidates[backend] = {"status": "rejected", "reason": f"{len(in_fp16)} node(s) meant to stay FP32 "
                                   f"compute in FP16 (e.g. {in_fp16[0]})"}
            continue
        try:
            with tempfile.TemporaryDirectory(prefix="ndr-fp16-") as tmp:
                path = Path(tmp) / "fp16.onnx"
                path.write_bytes(converted.SerializeToString())
                outputs = onnx_outputs(path, data)
        except Exception as exc:  # noqa: BLE001 - ORT's own error, whatever its type
            candidates[backend] = {"status": "does not run", "reason": f"ONNX Runtime CPU: {str(exc)[:300]}"}
            continue
        comparison = compare_outputs(reference, outputs).to_dict("vs_fp32_")
        fp16_nodes = sum(1 for node in converted.graph.node if node.op_type == "Cast")
        candidates[backend] = {"status": "ok", "seconds": round(time.perf_counter() - start, 2),
                               "psnr_db_vs_fp32": comparison["vs_fp32_psnr_db"],
                               "max_abs_vs_fp32": comparison["vs_fp32_max_abs"], "casts": fp16_nodes,
                               "nodes": len(converted.graph.node), "io_casts_added": fixed_io}
        score = comparison["vs_fp32_psnr_db"]
        score_value = float("inf") if score == "inf" else float(score)
        if best is None or score_value > best[0]:
            best = (score_value, backend, converted, comparison)
    if best is None:
        reasons = "; ".join(f"{name}: {info['reason']}" for name, info in candidates.items())
        raise ArtifactError(f"fp16: no converter produced a graph that runs ({reasons}); "
                            "pip install nvidia-modelopt onnxconverter-common, or drop fp16 from --precision")
    _, backend, converted, comparison = best
    comparison["goal_db"] = GOAL_DB
    comparison["meets_goal"] = best[0] >= GOAL_DB
    return Fp16Result(converted, backend, sensitive_nodes(model), comparison, candidates)
