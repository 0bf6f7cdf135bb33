"""ndr-average: the weight mean of checkpoints of one run, as a loadable checkpoint."""

from __future__ import annotations

import torch
from click.testing import CliRunner

from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, load_state, save_checkpoint
from ndr_edge.train.average import main
from tests.models import untrained


def _save(path, seed, preset="ndr-edge-xs", step=10):
    model = untrained(preset, seed=seed)
    save_checkpoint(path, model, CheckpointMeta(preset=preset, config={}, step=step, training={"command": "ndr-train"}))
    return path


def test_the_average_is_the_elementwise_mean_and_loads(tmp_path):
    paths = [_save(tmp_path / f"s{i}.safetensors", seed=i, step=100 * (i + 1)) for i in range(3)]
    result = CliRunner().invoke(main, [*map(str, paths), "-o", str(tmp_path / "avg.safetensors")])
    assert result.exit_code == 0, result.output
    states = [load_state(p)[0] for p in paths]
    avg, meta, _ = load_state(tmp_path / "avg.safetensors")
    for key, tensor in avg.items():
        expected = (states[0][key].double() + states[1][key].double() + states[2][key].double()) / 3
        assert torch.allclose(tensor.double(), expected, atol=1e-6), key
    assert meta is not None and meta.training["averaged"]["steps"] == [100, 200, 300]
    loaded = load_checkpoint(tmp_path / "avg.safetensors")
    x = torch.rand(1, 3, 32, 32)
    out = loaded.model.restoration_net(x)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_checkpoints_of_different_presets_are_refused(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    b = _save(tmp_path / "b.safetensors", 1, preset="ndr-edge-s")
    result = CliRunner().invoke(main, [str(a), str(b), "-o", str(tmp_path / "avg.safetensors")])
    assert result.exit_code != 0 and "ndr-average: error:" in result.output
    assert not (tmp_path / "avg.safetensors").exists()


def test_one_checkpoint_is_not_an_average(tmp_path):
    a = _save(tmp_path / "a.safetensors", 0)
    result = CliRunner().invoke(main, [str(a), "-o", str(tmp_path / "avg.safetensors")])
    assert result.exit_code != 0 and "at least two" in result.output
