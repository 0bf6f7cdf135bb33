"""Fixtures for the report tests: a tiny export folder as ``ndr-export`` lays it out -- an
ndr-edge-xs checkpoint with random weights (these tests check the mechanics and the numbers'
consistency, not restoration quality), its FP32 ONNX graph traced with torch.onnx.export, an
FP16 graph (onnxconverter-common; required), ndr_edge metadata and a manifest."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from ndr_edge.artifact import ArtifactEntry, ArtifactMeta, Manifest, sha256_file
from tests.models import untrained

PRESET = "ndr-edge-xs"


def _set_meta(model, meta: ArtifactMeta) -> None:  # type: ignore[no-untyped-def]
    keep = [p for p in model.metadata_props if not p.key.startswith("ndr_edge.")]
    del model.metadata_props[:]
    for prop in keep:
        model.metadata_props.add(key=prop.key, value=prop.value)
    for key, value in meta.to_props().items():
        model.metadata_props.add(key=key, value=value)


def build_export(directory: Path) -> Path:
    import onnx
    import torch

    from ndr_edge.checkpoint import CheckpointMeta, save_checkpoint
    from ndr_edge.model import RestorationOnly

    directory.mkdir(parents=True, exist_ok=True)
    model = untrained(PRESET, with_degradation_net=False)
    checkpoint = save_checkpoint(directory / "xs.safetensors", model, CheckpointMeta(preset=PRESET, config={}))
    checksum = sha256_file(checkpoint)
    meta = ArtifactMeta(preset=PRESET, source_sha256=checksum, config=model.config.to_dict())

    fp32 = directory / "model-fp32.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(RestorationOnly(model.restoration_net).eval(), (torch.rand(1, 3, 32, 32),), str(fp32),
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": axes, "output": axes}, opset_version=17, dynamo=False)
    graph = onnx.load(str(fp32))
    _set_meta(graph, meta)
    onnx.save(graph, str(fp32))
    entries = [ArtifactEntry("onnx-fp32", "onnx", "fp32", fp32.name, sha256_file(fp32))]
    # always an FP16 graph: the report's FP16 checks must run, not skip (onnxconverter-common
    # is in the [train] extra these tests need anyway; without it this fixture fails, loudly)
    from onnxconverter_common import float16

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = float16.convert_float_to_float16(graph, keep_io_types=True)
    _set_meta(half, ArtifactMeta(preset=PRESET, source_sha256=checksum, precision="fp16",
                                 config=model.config.to_dict()))
    onnx.save(half, str(directory / "model-fp16.onnx"))
    entries.append(ArtifactEntry("onnx-fp16", "onnx", "fp16", "model-fp16.onnx",
                                 sha256_file(directory / "model-fp16.onnx")))
    source = {"path": str(checkpoint), "sha256": checksum, "kind": "ndr-edge", "preset": PRESET,
              "channel_order": "BGR", "value_range": [0.0, 1.0], "config": model.config.to_dict()}
    Manifest(source=source, artifacts=entries).write(directory)
    return directory


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_export(tmp_path_factory.mktemp("export") / "xs")


@pytest.fixture()
def broken_export(export_dir: Path, tmp_path: Path) -> Path:
    """The FP32 graph, plus: an INT8 entry whose file is missing, an FP16 entry whose file is
    not an ONNX model (its checksum matches, so it fails when run), and an engine entry.
    The checkpoint is not copied: the PyTorch reference is then unavailable."""
    out = tmp_path / "broken"
    out.mkdir()
    shutil.copyfile(export_dir / "model-fp32.onnx", out / "model-fp32.onnx")
    (out / "model-fp16.onnx").write_bytes(b"this is not an ONNX model" * 10)
    (out / "model-fp16.engine").write_bytes(b"not an engine either")
    manifest = Manifest.read(export_dir)
    manifest.source["path"] = str(tmp_path / "elsewhere" / "xs.safetensors")
    manifest.artifacts = [
        ArtifactEntry("onnx-fp32", "onnx", "fp32", "model-fp32.onnx", sha256_file(out / "model-fp32.onnx")),
        ArtifactEntry("onnx-fp16", "onnx", "fp16", "model-fp16.onnx", sha256_file(out / "model-fp16.onnx")),
        ArtifactEntry("onnx-int8", "onnx", "int8", "model-int8.onnx", "0" * 64),
        ArtifactEntry("engine-fp16", "engine", "fp16", "model-fp16.engine", sha256_file(out / "model-fp16.engine")),
    ]
    manifest.write(out)
    return out
