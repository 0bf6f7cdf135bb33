"""Fixtures for the calibration tests: a micro NDR-Restore exported to ONNX (random weights:
these tests check mechanics, not restoration quality), a small calibration set and a tiny
held-out evaluation set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

CROP = 32


def export_micro(path: Path, dynamic: bool = True, size: int = CROP) -> Path:
    """A smaller-than-xs member of the family (one block per level), as ``ndr-export`` writes it:
    input ``input``, output ``output``, ndr_edge metadata (BGR) in ``metadata_props``."""
    import onnx
    import torch

    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.model import NDRConfig, NDRRestore, RestorationOnly

    torch.manual_seed(0)
    config = NDRConfig(dim=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=0, heads=(1, 1, 1, 1), degrad_dim=8)
    net = RestorationOnly(NDRRestore(config, with_degradation_net=False).eval().restoration_net).eval()
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(
        net, (torch.rand(1, 3, size, size),), str(path), input_names=["input"], output_names=["output"],
        dynamic_axes={"input": axes, "output": axes} if dynamic else None, opset_version=17, dynamo=False,
    )
    model = onnx.load(str(path))
    for key, value in ArtifactMeta(preset=None, config=config.to_dict()).to_props().items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def micro_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_micro(tmp_path_factory.mktemp("model") / "micro.onnx")


@pytest.fixture(scope="session")
def calib_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ndr_edge.calibration import CalibrationRecipe, build_set

    out = tmp_path_factory.mktemp("sets") / "demo-set"
    build_set(None, CalibrationRecipe(samples=6, crop=CROP, shard_size=4), out, progress=False)
    return out


@pytest.fixture(scope="session")
def eval_samples() -> list[Any]:
    from ndr_edge.data import synthetic_eval_set
    from ndr_edge.imageio import demo_images

    return synthetic_eval_set(demo_images("heldout"), ["noise25", "rain"], seed=0, max_side=CROP)
