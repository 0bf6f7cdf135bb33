"""The quality-aware search on made-up losses: what it keeps in float and why."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from ndr_edge.calibration.sensitivity import LayerGroup, SensitivityRunner, excess


class FakeRunner(SensitivityRunner):
    """A runner whose variants' losses come from a table instead of quantised models."""

    def __init__(self, table: dict[frozenset[str], dict[str, float]], groups: Sequence[str]) -> None:
        self.groups = [LayerGroup(g, (f"{g}/Conv",), ("Conv",)) for g in groups]
        self.by_name = {g.name: g for g in self.groups}
        self.reference = SimpleNamespace(psnr={d: 30.0 for d in next(iter(table.values()))})
        self.progress = False
        self.table = table
        self.scored: list[frozenset[str]] = []

    def loss(self, excluded_groups: Sequence[str]) -> dict[str, float]:
        key = frozenset(excluded_groups)
        self.scored.append(key)
        return self.table[key]


def test_excess_is_the_loss_above_the_budget_summed() -> None:
    assert excess({"rain": 0.5, "noise": 0.1, "haze": -0.2}, 0.3) == pytest.approx(0.2)
    assert excess({"rain": 0.3}, 0.3) == 0.0


def test_two_degradations_over_budget_are_fixed_by_two_groups() -> None:
    # no single group lowers the worst loss (each fixes one degradation), so a worst-loss ranking
    # would stop at once; the excess over the budget sees both halves of the fix
    table = {
        frozenset(): {"rain": 0.6, "noise": 0.6},
        frozenset({"x"}): {"rain": 0.2, "noise": 0.6},
        frozenset({"y"}): {"rain": 0.6, "noise": 0.2},
        frozenset({"z"}): {"rain": 0.7, "noise": 0.7},
        frozenset({"x", "y"}): {"rain": 0.2, "noise": 0.2},
    }
    runner = FakeRunner(table, ["x", "y", "z"])
    result = runner.quality_aware(0.3)
    assert result.within_budget and sorted(result.excluded_groups) == ["x", "y"]
    assert result.loss_db == {"rain": 0.2, "noise": 0.2} and result.full_int8_loss_db == table[frozenset()]
    assert [e["node"] for e in result.excluded] == [f"{g}/Conv" for g in result.excluded_groups]
    assert all("budget" in e["reason"] for e in result.excluded)
    assert frozenset({"x", "y", "z"}) not in runner.scored  # z hurts alone: never tried in company
    assert [s["accepted"] for s in result.steps[1:]] == [True, True]


def test_a_group_that_does_not_lower_the_excess_is_rejected() -> None:
    table = {
        frozenset(): {"rain": 0.8},
        frozenset({"x"}): {"rain": 0.5},
        frozenset({"y"}): {"rain": 0.6},
        frozenset({"x", "y"}): {"rain": 0.55},  # together worse than x alone
    }
    result = FakeRunner(table, ["x", "y"]).quality_aware(0.3)
    assert not result.within_budget and result.excluded_groups == ["x"]
    assert result.loss_db == {"rain": 0.5} and result.steps[-1] == {
        "try": "y", "loss_db": {"rain": 0.55}, "worst_db": 0.55, "excess_db": pytest.approx(0.25), "accepted": False}


def test_within_budget_from_the_start_keeps_everything_int8() -> None:
    runner = FakeRunner({frozenset(): {"rain": 0.1, "noise": 0.2}}, ["x"])
    result = runner.quality_aware(0.3)
    assert result.within_budget and result.excluded == [] and result.sensitivity == []
    assert runner.scored == [frozenset()]  # no sensitivity pass was needed


def test_a_small_gain_that_meets_the_budget_is_kept() -> None:
    table = {
        frozenset(): {"noise": 0.3012},
        frozenset({"x"}): {"noise": 0.2990},  # gains 0.002 dB (< min_gain_db) but meets the budget
    }
    result = FakeRunner(table, ["x"]).quality_aware(0.3, min_gain_db=0.005)
    assert result.within_budget and result.excluded_groups == ["x"]
