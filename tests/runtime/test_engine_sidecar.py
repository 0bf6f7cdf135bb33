"""Engine checks as pure functions over a fake sidecar (no TensorRT, no GPU needed)."""

from __future__ import annotations

import json

import pytest

from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.runtime import EngineSidecar, InputLimits, check_compatibility, pick_profile
from ndr_edge.runtime.engine_sidecar import union_limits

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
    with pytest.raises(ArtifactError, match=r"TensorRT 10\.3\.0\.26.*10\.7\.0.*rebuild the engine"):
        check_compatibility(sidecar, "10.7.0.23", "Orin (nvgpu)", "8.7")
    with pytest.raises(ArtifactError, match="rebuild"):
        check_compatibility(sidecar, "11.0.0.1", "Orin (nvgpu)", "8.7")


def test_another_gpu_architecture_is_refused_and_another_model_warned(sidecar) -> None:
    with pytest.raises(ArtifactError, match=r"compute capability 8\.7.*NVIDIA H100.*9\.0.*rebuild"):
        check_compatibility(sidecar, "10.3.0.26", "NVIDIA H100", "9.0")
    warnings = check_compatibility(sidecar, "10.3.0.26", "Jetson AGX Orin", "8.7")
    assert len(warnings) == 1 and "Jetson AGX Orin" in warnings[0]


def test_profiles_pick_and_refuse(sidecar) -> None:
    assert pick_profile((2, 3, 256, 256), sidecar.profiles) == 0
    assert pick_profile((1, 3, 720, 1280), sidecar.profiles) == 1
    with pytest.raises(InputError, match=r"1x3x2160x3840 is outside.*max 1x3x1088x1920.*--tile"):
        pick_profile((1, 3, 2160, 3840), sidecar.profiles, engine="model.engine")
    with pytest.raises(InputError, match="outside"):
        pick_profile((8, 3, 256, 256), sidecar.profiles)  # batch too large for profile 0
    union = union_limits(sidecar.profiles)
    assert union.min == (1, 3, 64, 64) and union.max == (4, 3, 1088, 1920)


def test_missing_and_broken_sidecars(tmp_path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    with pytest.raises(ArtifactError, match="sidecar is missing"):
        EngineSidecar.read(engine)
    (tmp_path / "model.engine.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        EngineSidecar.read(engine)
    broken = dict(SIDECAR)
    del broken["compute_capability"]
    (tmp_path / "model.engine.json").write_text(json.dumps(broken))
    with pytest.raises(ArtifactError, match="incomplete"):
        EngineSidecar.read(engine)
