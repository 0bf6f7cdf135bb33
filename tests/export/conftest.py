"""Fixtures of the export tests: one ndr-edge-xs checkpoint (this project's format), a tiny
calibration set, and one full export of it made once per session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ndr_edge.artifact import Manifest
from ndr_edge.checkpoint import CheckpointMeta, LoadedCheckpoint, load_checkpoint, save_checkpoint
from tests.models import untrained

# small verification for tests: two sizes, batch 2 (the dynamic batch is exercised too)
TEST_SIZES = ((64, 96), (96, 128))
TEST_PER_SIZE = 2


@dataclass
class Exported:
    checkpoint: LoadedCheckpoint
    outdir: Path
    manifest: Manifest

    def entry(self, name: str):
        return next(e for e in self.manifest.artifacts if e.name == name)


def export_config(calibration: Path | None, **overrides):
    from ndr_edge.export.pipeline import ExportConfig

    base = {
        "fp16_converters": ("onnxconverter",), "calibration": calibration, "int8_budget_db": None,
        "int8_options": {"evaluate": False, "latency_shape": None}, "verify_sizes": TEST_SIZES,
        "verify_per_size": TEST_PER_SIZE, "progress": False,
    }
    base.update(overrides)
    return ExportConfig(**base)


@pytest.fixture(scope="session")
def xs_checkpoint_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = untrained("ndr-edge-xs", with_degradation_net=True)
    path = tmp_path_factory.mktemp("ckpt") / "xs.safetensors"
    # this project's format (it records the preset); test_cli exports the authors' layout
    save_checkpoint(path, model, CheckpointMeta(preset="ndr-edge-xs", config={}))
    return path


@pytest.fixture(scope="session")
def xs_checkpoint(xs_checkpoint_path: Path) -> LoadedCheckpoint:
    return load_checkpoint(xs_checkpoint_path)


@pytest.fixture(scope="session")
def calibration_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ndr_edge.calibration import CalibrationRecipe, build_set

    out = tmp_path_factory.mktemp("calib") / "set"
    build_set(None, CalibrationRecipe(samples=8, crop=64), out, progress=False)
    return out


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, xs_checkpoint: LoadedCheckpoint,
             calibration_set: Path) -> Exported:
    from ndr_edge.export.pipeline import Exporter

    outdir = tmp_path_factory.mktemp("export") / "xs"
    manifest = Exporter(xs_checkpoint, outdir, export_config(calibration_set)).run()
    return Exported(xs_checkpoint, outdir, manifest)
