"""The bundled checkpoint (README, "The bundled checkpoint"): it loads as the ndr-edge-xs
preset, restoration network only, its weights hash is checked, its metadata records the
training commands the README shows (and they parse as real ``ndr-train`` invocations whose
options match the recorded run), and it restores: a noisy photo comes back closer to the clean one."""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil

import numpy as np
import pytest
import torch

from ndr_edge import BUNDLED_CHECKPOINT
from ndr_edge.checkpoint import load_checkpoint
from ndr_edge.errors import CheckpointError
from ndr_edge.model import get_preset
from ndr_edge.train.validation import VAL_SET
from tests.conftest import REPO


def _header() -> dict:
    """The safetensors header read by hand: 8-byte little-endian length, then JSON."""
    raw = BUNDLED_CHECKPOINT.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + length])


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("### The bundled checkpoint", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", "", section)
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip().startswith("ndr-train")]


@pytest.fixture(scope="module")
def bundled():
    return load_checkpoint(BUNDLED_CHECKPOINT)


def test_it_is_the_xs_preset_restoration_network_only(bundled) -> None:
    header = _header()
    meta = json.loads(header["__metadata__"]["ndr_edge"])
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    assert not any(k.startswith("degradation_net.") for k in tensors)  # NDR-Degrad removed
    assert bundled.kind == "ndr-edge" and bundled.preset == meta["preset"] == "ndr-edge-xs"
    assert bundled.config == get_preset("ndr-edge-xs")  # global residual included
    assert bundled.model.degradation_net is None
    # every tensor of the file is in the model, with the header's shape, and nothing else
    state = bundled.model.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == {k: v["shape"] for k, v in tensors.items()}
    params = sum(math.prod(v["shape"]) for k, v in tensors.items() if k.startswith("restoration_net."))
    assert round(params / 1e6, 2) == 1.57  # the README's preset table
    assert (bundled.channel_order, bundled.value_range) == ("BGR", (0.0, 1.0))


def test_the_weights_hash_is_verified(tmp_path) -> None:
    copy = tmp_path / "bundled.safetensors"
    shutil.copy(BUNDLED_CHECKPOINT, copy)
    raw = bytearray(copy.read_bytes())
    raw[-3] ^= 0x55  # one byte of the last tensor's data
    copy.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="do not match their recorded SHA-256"):
        load_checkpoint(copy)


def test_metadata_records_the_readme_commands_and_they_parse(bundled) -> None:
    from ndr_edge.cli.train import main as ndr_train

    training = bundled.meta["training"]
    commands = training["commands"]
    assert commands == _readme_commands()
    assert training["command"] == commands[-1]
    from click.core import ParameterSource

    parsed, given = [], set()
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "ndr-train"
        context = ndr_train.make_context("ndr-train", argv[1:])  # unknown options or bad values raise here
        parsed.append(context.params)
        given = {k for k in context.params if context.get_parameter_source(k) == ParameterSource.COMMANDLINE}
    first, last = parsed[0], parsed[-1]
    assert first["preset"] == "ndr-edge-xs" and first["steps"] == 2000 and first["resume"] is None
    assert all(p["resume"] for p in parsed[1:])  # each later run continues the one before
    # the recorded run configuration of the last run is what its command line says (options
    # it does not give come from the checkpoint it resumed, as --resume documents)
    config = training["config"]
    for key in ("steps", "lr", "val_every", "save_every", "threads", "resume"):
        if key in given:
            assert config[key] == last[key], key
    if last["grey"] is not None and "--grey" in commands[-1]:
        assert config["grey"] == last["grey"]
    assert config["compile"] is last["compile_"] is True
    if last["until"] is not None:
        assert bundled.meta["step"] <= last["until"]  # keep-best or an interrupted run ships an earlier step
    assert bundled.meta["step"] <= config["steps"]
    assert bundled.meta["degradations"] == config["degradations"]


def _shipped_row() -> tuple[str, list[str], list[float]]:
    """(label, degradations, gains) of the README's shipped validation row: "| **N (shipped)** |"
    for a keep-best step, "| **mean of A-B (shipped)** |" for a weight average of saves."""
    text = (REPO / "README.md").read_text()
    section = text.split("### The bundled checkpoint", 1)[1]
    row = re.search(r"^\| \*\*(\d+|mean of \d+-\d+) \(shipped\)\*\* \|(.*)\|$", section, re.MULTILINE)
    assert row is not None
    table = section[:row.start()].rsplit("\n\n", 1)[-1]  # the shipped row's own table
    head = re.search(r"^\| (?:step|model[^|]*) \|(.*)\|$", table, re.MULTILINE)
    assert head is not None
    names = [c.strip() for c in head.group(1).split("|")]
    cells = [c.strip() for c in row.group(2).split("|")]
    return row.group(1), names[:len(cells)], [float(c.strip("*")) for c in cells]


def test_validation_history_is_the_readme_table(bundled) -> None:
    """README: the "(shipped)" row is the checkpoint's own validation. A keep-best step: its
    recorded validation gains, the best mean of its validation set. A weight average: the
    ship rule's row recorded at bundling (validation set, gains, a passed verdict), over the
    steps the average was made from."""
    label, names, gains = _shipped_row()
    metrics = bundled.meta["metrics"]
    averaged = bundled.meta["training"].get("averaged")
    if averaged:
        steps = averaged["steps"]
        assert label == f"mean of {min(steps)}-{max(steps)}"
        entry = metrics["ship_validation"]
        assert entry["beats_incumbent"] is True and entry["set"] == VAL_SET
    else:
        step = int(label)
        assert bundled.meta["step"] == step
        entry = next(h for h in metrics["val_history"] if h["step"] == step)
        # keep-best shipped the step with the best mean gain of its validation set
        same_set = [h for h in metrics["val_history"] if h.get("set") == entry.get("set")]
        mean = lambda h: sum(v for k, v in h.items() if k not in ("step", "set")) / (len(h) - 1 - ("set" in h))
        assert mean(entry) == max(mean(h) for h in same_set)
    for name, gain in zip(names, gains, strict=True):
        key = {"mean": "mean_gain_db", "clean": "clean_psnr"}.get(name, name)
        assert abs(entry[key] - gain) <= 0.005 + 1e-9, name  # the README rounds to 0.01 (4.385 -> +4.39)


def test_it_restores_a_noisy_photo() -> None:
    """Sigma-25 noise on a held-out photo crop: the bundled network gains several dB (README:
    +6.00 dB on the evaluation set); a wrongly loaded network (or channel order) would not."""
    from ndr_edge.imageio import demo_images

    loaded = load_checkpoint(BUNDLED_CHECKPOINT)
    photo = demo_images("heldout")[0][1][64:128, 64:128].astype(np.float32) / 255.0
    noisy = np.clip(photo + np.random.default_rng(0).normal(0, 25 / 255, photo.shape), 0, 1).astype(np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(noisy[..., ::-1].transpose(2, 0, 1))[None])  # BGR NCHW
    with torch.no_grad():
        out = loaded.model.restoration_net(batch)
    out = (out[0] if isinstance(out, (tuple, list)) else out)[0].numpy().transpose(1, 2, 0)[..., ::-1]
    score = lambda x: 10 * math.log10(1.0 / float(np.mean((np.clip(x, 0, 1) - photo) ** 2)))
    assert score(out) > score(noisy) + 3.0
