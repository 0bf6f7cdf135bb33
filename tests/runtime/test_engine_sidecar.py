"""Engine checks as pure functions over a fake sidecar (no TensorRT, no GPU needed). Every
error's advice is checked against the real CLIs: the ndr-export command line it suggests
parses with ndr-export's own click command, and every other --flag is an ndr-restore option."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import click
import pytest

from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.export.cli import main as export_main
from ndr_edge.runtime import EngineSidecar, InputLimits, check_compatibility, pick_profile
from ndr_edge.runtime.cli import main as restore_main
from ndr_edge.runtime.engine_sidecar import REBUILD_HINT, union_limits

_SUGGESTED_EXPORT = re.compile(r"\bndr-export\b([^;()]*)")  # a suggested command line runs to ; ( ) or the end
_OTHER_TOOLS = re.compile(r"\btrtexec\b[^;()]*")  # not ours: its flags are TensorRT's
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def _options(command: click.Command) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts) if opt.startswith("--")}


def advice_works(message: str) -> list[dict[str, Any]]:
    """Parse every ``ndr-export ...`` command line ``message`` suggests with the real ndr-export
    (click raises UsageError on an unknown flag or a missing value) and check that every other
    ``--flag`` it names is an ndr-restore option. Returns the parsed ndr-export parameters."""
    parsed: list[dict[str, Any]] = []
    for tail in _SUGGESTED_EXPORT.findall(message):
        with export_main.make_context("ndr-export", shlex.split(tail)) as ctx:
            parsed.append(dict(ctx.params))
    rest = _OTHER_TOOLS.sub("", _SUGGESTED_EXPORT.sub("", message))
    unknown = set(_FLAG.findall(rest)) - _options(restore_main)
    assert not unknown, f"{message!r} names {sorted(unknown)}, which ndr-restore does not have"
    return parsed


def test_the_advice_checker_refuses_flags_the_clis_do_not_have() -> None:
    with pytest.raises(click.UsageError, match="--formats"):
        advice_works("rebuild the engine on this machine: ndr-export CHECKPOINT --formats engine")
    with pytest.raises(click.UsageError, match="--max-shape"):
        advice_works("rebuild it with a larger max shape (ndr-export --max-shape)")
    with pytest.raises(AssertionError, match="--tiles"):
        advice_works("use tiling (--tiles)")
    assert advice_works("use --tile, or ndr-export M --no-engine --max 1x3x8x8") == [
        {**advice_works("ndr-export M")[0], "engine": False, "max_shape": "1x3x8x8"}]


def test_the_rebuild_hint_is_a_real_ndr_export_command_that_builds_engines() -> None:
    (params,) = advice_works(REBUILD_HINT)
    assert params["engine"] is True  # --engine: build engines (and fail where TensorRT cannot)
    assert params["checkpoint"] == "CHECKPOINT"


SIDECAR = {
    "meta": {"preset": "ndr-edge-s", "channel_order": "BGR", "value_range": [0.0, 1.0], "size_multiple": 8,
             "precision": "fp16"},
    "tensorrt_version": "10.3.0.26",
    "gpu_name": "Orin (nvgpu)",
    "compute_capability": "8.7",
    "precision": "fp16",
    "profiles": [{"min": [1, 3, 64, 64], "opt": [1, 3, 512, 512], "max": [4, 3, 512, 512]},
                 {"min": [1, 3, 512, 512], "opt": [1, 3, 720, 1280], "max": [1, 3, 1088, 1920]}],
    "io": [{"name": "input", "dtype": "float32", "shape": [-1, 3, -1, -1]},
           {"name": "output", "dtype": "float32", "shape": [-1, 3, -1, -1]}],
    "onnx_sha256": "ab" * 32,
}


@pytest.fixture
def sidecar(tmp_path) -> EngineSidecar:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"engine bytes")
    (tmp_path / "model.engine.json").write_text(json.dumps(SIDECAR))
    return EngineSidecar.read(engine)


def test_sidecar_is_read(sidecar) -> None:
    assert sidecar.meta.channel_order == "BGR" and sidecar.meta.value_range == (0.0, 1.0)
    assert sidecar.meta.precision == "fp16" and sidecar.compute_capability == "8.7"
    assert sidecar.profiles[0] == InputLimits((1, 3, 64, 64), (1, 3, 512, 512), (4, 3, 512, 512))


def test_same_machine_is_accepted(sidecar) -> None:
    assert check_compatibility(sidecar, "10.3.0.26", "Orin (nvgpu)", "8.7") == []
    assert check_compatibility(sidecar, "10.3.0", "Orin (nvgpu)", "8.7") == []  # build number not needed


def test_another_tensorrt_release_is_refused(sidecar) -> None:
    with pytest.raises(ArtifactError, match=r"TensorRT 10\.3\.0\.26.*10\.7\.0.*rebuild the engine") as info:
        check_compatibility(sidecar, "10.7.0.23", "Orin (nvgpu)", "8.7")
    assert [p["engine"] for p in advice_works(str(info.value))] == [True]
    with pytest.raises(ArtifactError, match="rebuild") as info:
        check_compatibility(sidecar, "11.0.0.1", "Orin (nvgpu)", "8.7")
    assert [p["engine"] for p in advice_works(str(info.value))] == [True]


def test_another_gpu_architecture_is_refused_and_another_model_warned(sidecar) -> None:
    with pytest.raises(ArtifactError, match=r"compute capability 8\.7.*NVIDIA H100.*9\.0.*rebuild") as info:
        check_compatibility(sidecar, "10.3.0.26", "NVIDIA H100", "9.0")
    assert [p["engine"] for p in advice_works(str(info.value))] == [True]
    warnings = check_compatibility(sidecar, "10.3.0.26", "Jetson AGX Orin", "8.7")
    assert len(warnings) == 1 and "Jetson AGX Orin" in warnings[0]


def test_profiles_pick_and_refuse(sidecar) -> None:
    assert pick_profile((2, 3, 256, 256), sidecar.profiles) == 0
    assert pick_profile((1, 3, 720, 1280), sidecar.profiles) == 1
    with pytest.raises(InputError, match=r"1x3x2160x3840 is outside.*max 1x3x1088x1920.*--tile") as info:
        pick_profile((1, 3, 2160, 3840), sidecar.profiles, engine="model.engine")
    (params,) = advice_works(str(info.value))  # --tile is ndr-restore's; the rebuild sets --max
    assert params["engine"] is True and params["max_shape"] is not None
    assert "--tile" in str(info.value) and "--max" in str(info.value)
    with pytest.raises(InputError, match="outside"):
        pick_profile((8, 3, 256, 256), sidecar.profiles)  # batch too large for profile 0
    union = union_limits(sidecar.profiles)
    assert union.min == (1, 3, 64, 64) and union.max == (4, 3, 1088, 1920)
    with pytest.raises(ArtifactError, match="no optimisation profile") as no_profile:
        union_limits(())
    assert [p["engine"] for p in advice_works(str(no_profile.value))] == [True]


def test_missing_and_broken_sidecars(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    messages = []
    with pytest.raises(ArtifactError, match="sidecar is missing") as info:
        EngineSidecar.read(engine)
    messages.append(str(info.value))
    (tmp_path / "model.engine.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable") as info:
        EngineSidecar.read(engine)
    messages.append(str(info.value))
    (tmp_path / "model.engine.json").write_text("[1, 2]")
    with pytest.raises(ArtifactError, match="not a JSON object") as info:
        EngineSidecar.read(engine)
    messages.append(str(info.value))
    broken = dict(SIDECAR)
    del broken["compute_capability"]
    (tmp_path / "model.engine.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="incomplete") as info:
        EngineSidecar.read(engine)
    messages.append(str(info.value))
    for message in messages:
        assert [p["engine"] for p in advice_works(message)] == [True], message
