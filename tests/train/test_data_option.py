"""ndr-train --data: the clean images come from the folders given (README, Training), and the
checkpoint records them."""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner
from PIL import Image

from ndr_edge.checkpoint import load_state
from ndr_edge.cli.train import main as ndr_train
from ndr_edge.train import TrainConfig, Trainer

COLOURS = [(200, 30, 40), (10, 220, 90)]


def _folder(tmp_path):
    folder = tmp_path / "clean"
    folder.mkdir()
    for i, colour in enumerate(COLOURS):
        Image.fromarray(np.full((48, 40, 3), colour, dtype=np.uint8)).save(folder / f"c{i}.png")
    return folder


def test_training_crops_come_from_the_data_folder(tmp_path):
    folder = _folder(tmp_path)
    trainer = Trainer(TrainConfig(preset="ndr-edge-xs", data=[str(folder)], steps=2, batch=4, crop=16, grey=0.0,
                                  val_every=0, save_every=0, threads=1, out=str(tmp_path / "x.safetensors")))
    assert len(trainer.images) == len(COLOURS)
    batch = next(iter(trainer._loader()))
    allowed = {tuple(np.array(c, dtype=np.float32)[::-1] / 255) for c in COLOURS}  # BGR, on [0, 1]
    for gt in batch["gt"].numpy():
        pixels = {tuple(p) for p in gt.reshape(3, -1).T.round(6)}
        assert len(pixels) == 1 and any(np.allclose(next(iter(pixels)), a, atol=1e-6) for a in allowed)


def test_ndr_train_data_records_the_folder_and_refuses_an_empty_one(tmp_path):
    folder = _folder(tmp_path)
    out = tmp_path / "x.safetensors"
    args = ["--data", str(folder), "--steps", "1", "--batch", "1", "--crop", "16", "--val-every", "0",
            "--save-every", "0", "--threads", "1", "--quiet", "-o", str(out)]
    result = CliRunner().invoke(ndr_train, args)
    assert result.exit_code == 0, result.output
    _, meta, _ = load_state(out)
    assert meta is not None and meta.training["config"]["data"] == [str(folder)]
    assert str(folder) in meta.training["data"]
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = CliRunner().invoke(ndr_train, [*args[:1], str(empty), *args[2:-1], str(tmp_path / "y.safetensors")])
    assert bad.exit_code != 0 and "ndr-train: error:" in bad.output
    assert not (tmp_path / "y.safetensors").exists()
