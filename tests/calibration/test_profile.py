"""Where a model spends its CPU time, per op type (what bounds the INT8 speed-up)."""

from __future__ import annotations

from pathlib import Path

from ndr_edge.calibration.evaluate import op_time_profile

from .conftest import CROP


def test_op_time_profile_names_the_convolutions(micro_onnx: Path) -> None:
    profile = op_time_profile(micro_onnx, shape=(1, 3, CROP, CROP), threads=1, runs=2)
    assert profile and all(ms >= 0 for ms in profile.values())
    assert list(profile.values()) == sorted(profile.values(), reverse=True)
    assert {"Conv", "FusedConv"} & set(profile)  # the network is mostly convolutions
    assert sum(profile.values()) > 0
