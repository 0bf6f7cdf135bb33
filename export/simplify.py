"""Stage 3: simplify the traced graph with onnxsim (constant folding, shape inference,
dead-node removal), keeping the dynamic axes. When the simplifier fails or its result does
not check out, the verified graph is kept and the reason is recorded.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import onnx


@dataclass
class SimplifyResult:
    model: onnx.ModelProto
    simplified: bool
    nodes_before: int
    nodes_after: int
    reason: str = ""
    op_counts: dict[str, int] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "simplified": self.simplified,
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "op_counts": self.op_counts,
        }
        if self.reason:
            data["reason"] = self.reason
        return data


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    return dict(sorted(Counter(node.op_type for node in model.graph.node).items()))


def simplify(model: onnx.ModelProto) -> SimplifyResult:
    """Run onnxsim on a copy of ``model``; on any failure return ``model`` itself, with why."""
    before = len(model.graph.node)
    try:
        import onnxsim
    except ImportError:
        return SimplifyResult(model, False, before, before, "onnxsim is not installed (pip install onnxsim)",
                              op_counts(model))
    candidate = onnx.ModelProto()
    candidate.CopyFrom(model)
    try:
        simplified, ok = onnxsim.simplify(candidate)
    except Exception as exc:  # noqa: BLE001 - onnxsim raises bare RuntimeErrors from C++
        reason = f"onnxsim failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        return SimplifyResult(model, False, before, before, reason, op_counts(model))
    if not ok:
        return SimplifyResult(model, False, before, before, "onnxsim could not validate its result", op_counts(model))
    # onnxsim keeps metadata_props and producer fields; restore the exact header to stay deterministic
    simplified.producer_name, simplified.producer_version = model.producer_name, model.producer_version
    simplified.doc_string, simplified.graph.name = model.doc_string, model.graph.name
    del simplified.metadata_props[:]
    simplified.metadata_props.extend(model.metadata_props)
    return SimplifyResult(simplified, True, before, len(simplified.graph.node), "", op_counts(simplified))
