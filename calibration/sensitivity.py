"""Which layers' quantisation costs the most restored PSNR, and a quality-aware INT8 that keeps
the worst of them in float until the loss against FP32 is within a budget on every degradation.

Layers with weights (Conv, MatMul, Gemm) are grouped by the module they belong to (coarser
when there are many), so the analysis costs one quantised evaluation per group. A group's
sensitivity is what keeping it alone in float recovers. The greedy search measures both against
the budget: the *excess*, the sum over degradations of the loss above the budget, is what has to
reach zero. Groups are tried in order of the excess they recover alone and kept in float only if
the excess really drops (a worst-loss-only ranking stalls when two degradations are over budget
and no single group helps both).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from ndr_edge.calibration.evaluate import PSNRByDegradation, evaluate_onnx
from ndr_edge.calibration.quantize import WEIGHTED_OPS, Quantizer


@dataclass(frozen=True)
class LayerGroup:
    name: str
    nodes: tuple[str, ...]
    ops: tuple[str, ...]


def _module_path(node_name: str) -> list[str]:
    """``/net/block1/block1.0/attn/qkv/Conv`` -> ``['net', 'block1', 'block1.0', 'attn', 'qkv']``."""
    parts = [p for p in node_name.split("/") if p]
    return parts[:-1] if len(parts) > 1 else parts


def group_layers(nodes: Sequence[tuple[str, str]], max_groups: int = 32) -> list[LayerGroup]:
    """Group (name, op) nodes by module path: the finest path depth that gives at most
    ``max_groups`` groups (one transformer block, one skip's DQ, ... for ndr-edge-xs at 32).
    When only a single group would be left, consecutive groups of the next finer depth are
    merged into ``max_groups`` runs instead."""
    if not nodes:
        return []
    paths = [_module_path(name) for name, _ in nodes]
    finer: OrderedDict[str, list[int]] | None = None
    for depth in range(max(len(p) for p in paths), 0, -1):
        grouped: OrderedDict[str, list[int]] = OrderedDict()
        for index, path in enumerate(paths):
            key = "/" + "/".join(path[:depth]) if path else nodes[index][0]
            grouped.setdefault(key, []).append(index)
        if len(grouped) <= max_groups:
            break
        finer = grouped
    if len(grouped) == 1 and finer is not None and max_groups > 1:
        keys = list(finer)
        runs = [keys[i * len(keys) // max_groups : (i + 1) * len(keys) // max_groups] for i in range(max_groups)]
        grouped = OrderedDict(
            (run[0] if len(run) == 1 else f"{run[0]} .. {run[-1]}", [i for key in run for i in finer[key]])
            for run in runs
            if run
        )
    return [
        LayerGroup(key, tuple(nodes[i][0] for i in idx), tuple(nodes[i][1] for i in idx))
        for key, idx in grouped.items()
    ]


def worst(loss: dict[str, float]) -> float:
    return max(loss.values()) if loss else 0.0


def excess(loss: dict[str, float], budget_db: float) -> float:
    """Sum over degradations of the loss above the budget (0 when every degradation is within it)."""
    return sum(max(0.0, value - budget_db) for value in loss.values())


@dataclass
class GroupSensitivity:
    group: str
    nodes: int
    loss_db: dict[str, float]  # loss against FP32 with this group alone kept in float
    recovers_db: float  # worst-degradation loss of full INT8 minus that of this variant
    recovers_excess_db: float | None = None  # excess over the budget of full INT8 minus that of this variant

    def to_dict(self) -> dict[str, Any]:
        data = {"group": self.group, "nodes": self.nodes, "loss_db": self.loss_db,
                "recovers_db": round(self.recovers_db, 4)}
        if self.recovers_excess_db is not None:
            data["recovers_excess_db"] = round(self.recovers_excess_db, 4)
        return data


@dataclass
class QualityAwareResult:
    budget_db: float | None
    excluded_groups: list[str]
    excluded: list[dict[str, str]]  # {"node", "op", "reason"}
    loss_db: dict[str, float]
    full_int8_loss_db: dict[str, float]
    psnr_fp32: dict[str, float]
    psnr_int8: dict[str, float]
    within_budget: bool
    sensitivity: list[GroupSensitivity] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget_db": self.budget_db,
            "within_budget": self.within_budget,
            "excluded_groups": self.excluded_groups,
            "excluded": self.excluded,
            "loss_db": self.loss_db,
            "full_int8_loss_db": self.full_int8_loss_db,
            "psnr_fp32": self.psnr_fp32,
            "psnr_int8": self.psnr_int8,
            "sensitivity": [s.to_dict() for s in self.sensitivity],
            "steps": self.steps,
        }


class SensitivityRunner:
    """Writes INT8 variants with a :class:`Quantizer` and scores them on an evaluation set;
    results are cached by the set of excluded groups, so no variant is scored twice."""

    def __init__(
        self,
        quantizer: Quantizer,
        eval_set: Sequence[Any],
        *,
        reference: PSNRByDegradation | None = None,
        max_groups: int = 32,
        threads: int | None = None,
        progress: bool = True,
    ) -> None:
        self.quantizer = quantizer
        self.eval_set = eval_set
        self.threads = threads
        self.progress = progress
        nodes = quantizer.quantizable_nodes(WEIGHTED_OPS)
        self.groups = group_layers(nodes, max_groups)
        self.by_name = {g.name: g for g in self.groups}
        self.reference = reference or evaluate_onnx(
            quantizer.source, eval_set, threads=threads, channel_order=quantizer.channel_order
        )
        self._cache: dict[frozenset[str], dict[str, float]] = {}
        self._scratch = quantizer.workdir / "variant.onnx"

    def nodes_of(self, groups: Sequence[str]) -> list[str]:
        return [node for g in groups for node in self.by_name[g].nodes]

    def loss(self, excluded_groups: Sequence[str]) -> dict[str, float]:
        """Loss (dB) per degradation against FP32 of INT8 with ``excluded_groups`` kept in float."""
        key = frozenset(excluded_groups)
        if key not in self._cache:
            path = self.quantizer.write(self._scratch, self.nodes_of(sorted(key)))
            result = evaluate_onnx(path, self.eval_set, threads=self.threads,
                                   channel_order=self.quantizer.channel_order)
            self._cache[key] = result.loss_against(self.reference)
        return self._cache[key]

    def sensitivity(self, budget_db: float | None = None) -> list[GroupSensitivity]:
        """Per group: the loss when that group alone stays in float; sorted, most sensitive first
        (by the excess over ``budget_db`` it recovers when a budget is given, else by worst loss)."""
        full = self.loss([])
        rows = []
        for group in tqdm(self.groups, desc="sensitivity", unit="group", disable=not self.progress, leave=False):
            loss = self.loss([group.name])
            rows.append(GroupSensitivity(
                group.name, len(group.nodes), loss, worst(full) - worst(loss),
                None if budget_db is None else excess(full, budget_db) - excess(loss, budget_db),
            ))
        rows.sort(key=lambda r: (-(r.recovers_excess_db if r.recovers_excess_db is not None else r.recovers_db),
                                 -r.recovers_db, sum(r.loss_db.values())))
        return rows

    def quality_aware(
        self, budget_db: float, *, min_gain_db: float = 0.005, log: Callable[[str], None] | None = None
    ) -> QualityAwareResult:
        """Keep the most sensitive groups in float, one at a time, until every degradation's loss
        is <= ``budget_db`` (or no group lowers the excess over the budget any more)."""
        full_loss = self.loss([])
        result_psnr = {k: self.reference.psnr[k] - v for k, v in full_loss.items()}
        steps: list[dict[str, Any]] = [{"excluded": [], "loss_db": full_loss, "worst_db": worst(full_loss),
                                        "excess_db": excess(full_loss, budget_db)}]
        excluded: list[str] = []
        reasons: dict[str, str] = {}
        ranking: list[GroupSensitivity] = []
        current = full_loss
        if excess(current, budget_db) > 0:
            ranking = self.sensitivity(budget_db)
            for row in ranking:
                if excess(current, budget_db) <= 0:
                    break
                if (row.recovers_excess_db or 0.0) <= 0:
                    continue  # alone it does not help; neither will it in company, usually
                trial = self.loss([*excluded, row.group])
                gain = excess(current, budget_db) - excess(trial, budget_db)
                accepted = gain > min_gain_db or (gain > 0 and excess(trial, budget_db) <= 0)  # small but final
                steps.append({"try": row.group, "loss_db": trial, "worst_db": worst(trial),
                              "excess_db": excess(trial, budget_db), "accepted": accepted})
                if log:
                    log(f"float {row.group}: worst loss {worst(current):.3f} -> {worst(trial):.3f} dB, over budget "
                        f"{excess(current, budget_db):.3f} -> {excess(trial, budget_db):.3f} dB"
                        f"{'' if accepted else ' (rejected)'}")
                if not accepted:
                    continue
                worst_deg = max(current, key=lambda k: current[k])
                reasons[row.group] = (
                    f"quality: keeping it in float lowers the loss over the {budget_db} dB budget (summed over "
                    f"degradations) from {excess(current, budget_db):.3f} to {excess(trial, budget_db):.3f} dB and "
                    f"the worst loss from {worst(current):.3f} to {worst(trial):.3f} dB ({worst_deg} was worst)"
                )
                excluded.append(row.group)
                current = trial
            result_psnr = {k: self.reference.psnr[k] - v for k, v in current.items()}
        nodes = [
            {"node": node, "op": op, "reason": reasons[g]}
            for g in excluded
            for node, op in zip(self.by_name[g].nodes, self.by_name[g].ops, strict=True)
        ]
        return QualityAwareResult(
            budget_db=budget_db,
            excluded_groups=excluded,
            excluded=nodes,
            loss_db=current,
            full_int8_loss_db=full_loss,
            psnr_fp32={k: round(v, 4) for k, v in self.reference.psnr.items()},
            psnr_int8={k: round(v, 4) for k, v in result_psnr.items()},
            within_budget=worst(current) <= budget_db,
            sensitivity=ranking,
            steps=steps,
        )
