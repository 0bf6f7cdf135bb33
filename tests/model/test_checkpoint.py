"""Checkpoint loading: both layouts, strictness, corruption, our metadata."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from ndr_edge.errors import CheckpointError
from ndr_edge.model import NDRRestore, get_preset

# The authors' layout cannot record a global residual (the public code has none), so
# a .pth always loads without one: the xs widths in that layout are this configuration.
AUTHORS_XS = replace(get_preset("ndr-edge-xs"), global_residual=False)


@pytest.fixture(scope="module")
def xs_model() -> NDRRestore:
    torch.manual_seed(0)
    return NDRRestore(AUTHORS_XS)


def test_module_prefix_and_full_layout(tmp_path, xs_model):
    path = tmp_path / "ddp.pth"
    torch.save({"module." + k: v for k, v in xs_model.state_dict().items()}, path)
    loaded = load_checkpoint(path, with_degradation_net=True)
    assert loaded.kind == "official" and loaded.model.config == AUTHORS_XS
    assert loaded.model.degradation_net is not None
    assert load_checkpoint(path).model.degradation_net is None


def test_bare_restoration_state_dict(tmp_path, xs_model):
    path = tmp_path / "bare.pth"
    torch.save(xs_model.restoration_net.state_dict(), path)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.model.degradation_representations, xs_model.degradation_representations)


def test_mismatch_names_missing_and_unexpected(tmp_path, xs_model):
    state = dict(xs_model.state_dict())
    state.pop("restoration_net.reconstruction.bias")
    state["restoration_net.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"missing .*reconstruction.bias.*unexpected .*extra.weight"):
        load_checkpoint(path)


def test_nan_weights_rejected(tmp_path, xs_model):
    state = {k: v.clone() for k, v in xs_model.state_dict().items()}
    state["restoration_net.extractor.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="non-finite"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_not_a_checkpoint(tmp_path, content):
    path = tmp_path / "junk.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_native_roundtrip_and_hash(tmp_path, xs_model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, xs_model, CheckpointMeta(preset="ndr-edge-xs", config={}, step=7, degradations=["rain"]))
    loaded = load_checkpoint(path, with_degradation_net=True)
    assert loaded.kind == "ndr-edge" and loaded.meta["step"] == 7 and loaded.meta["weights_sha256"]
    for key, value in xs_model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value)
    assert not list(tmp_path.glob("*.tmp"))


def test_native_truncated_and_corrupted(tmp_path, xs_model):
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, xs_model, CheckpointMeta(preset="ndr-edge-xs", config={}))
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.safetensors"):
        load_checkpoint(tmp_path / "cut.safetensors")
    flipped = bytearray(data)
    flipped[-100] ^= 0xFF
    (tmp_path / "flip.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tmp_path / "flip.safetensors")
