"""Training: both schedules learn, checkpoints resume, CLIs report bad input, DDP over gloo."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ndr_edge.checkpoint import load_checkpoint
from ndr_edge.train import TrainConfig, Trainer

TINY = {"preset": "ndr-edge-xs", "batch": 2, "crop": 32, "val_every": 0, "save_every": 0, "threads": 1,
            "val_degradations": ["noise25"], "degradations": ["noise", "rain"]}


@pytest.mark.parametrize("schedule", ["joint", "alternating"])
def test_steps_reduce_loss_and_save(tmp_path, schedule):
    cfg = TrainConfig(out=str(tmp_path / "m.safetensors"), steps=12, lr=1e-3, schedule=schedule, **TINY)
    trainer = Trainer(cfg)
    first = trainer.train_step(*_batch(trainer))
    for _ in range(10):
        last = trainer.train_step(*_batch(trainer))
    assert last["restore"] < first["restore"]
    path = trainer.save()
    loaded = load_checkpoint(path, with_degradation_net=True)
    assert loaded.meta["step"] == 11 and loaded.meta["training"]["schedule"] == schedule
    assert (tmp_path / "m.safetensors.optim.pt").is_file()


def _batch(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(trainer.step)
    gt = torch.rand(2, 3, 32, 32)
    return (gt + 0.2 * torch.randn_like(gt)).clamp(0, 1), gt


def test_alternating_freezes_the_other_side(tmp_path):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "a.safetensors"), steps=4, schedule="alternating", **TINY))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train_step(*_batch(trainer))  # step 0: restoration side only
    after = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(not k.startswith("degradation_net.") for k in changed)
    trainer.train_step(*_batch(trainer))  # step 1: NDR-Degrad only
    changed2 = {k for k, v in trainer.model.state_dict().items() if not torch.equal(after[k], v)}
    assert changed2 and all(k.startswith("degradation_net.") for k in changed2)


def test_fit_validates_and_resumes(tmp_path):
    out = tmp_path / "fit.safetensors"
    Trainer(TrainConfig(out=str(out), steps=3, **TINY)).fit(progress=False)
    meta = load_checkpoint(out).meta
    assert meta["step"] == 3 and set(meta["metrics"]["val_psnr"]) == {"noise25"}
    resumed = Trainer(TrainConfig(out=str(tmp_path / "more.safetensors"), steps=5, resume=str(out), **TINY))
    assert resumed.step == 3
    resumed.fit(progress=False)
    assert load_checkpoint(tmp_path / "more.safetensors").meta["step"] == 5


def test_resume_from_authors_layout(tmp_path, conformance_dir):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "ft.safetensors"), steps=1, resume=str(conformance_dir / "official-small.pth"), **TINY))
    assert trainer.step == 0 and trainer.model.degradation_net is not None
    trainer.fit(progress=False)
    assert load_checkpoint(tmp_path / "ft.safetensors").config.dim == 16


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], check=False, capture_output=True, text=True, env=env,
                          timeout=600)


def test_train_cli_bad_input_is_one_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["--data", str(empty)], ["--preset", "huge"], ["--degradations", "snow"], ["--crop", "30"]):
        proc = _cli("ndr_edge.cli.train", "--steps", "1", "-o", str(tmp_path / "x.safetensors"), *args)
        assert proc.returncode != 0, args
        assert proc.stderr.strip().startswith("ndr-train: error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "x.safetensors").exists()


@pytest.mark.slow
def test_torchrun_two_gloo_processes(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
         "-m", "ndr_edge.cli.train", "--steps", "3", "--batch", "2", "--crop", "32", "--val-every", "0",
         "--save-every", "0", "--val-degradations", "noise25", "--quiet", "-o", str(out)],
        check=False, capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_checkpoint(out).meta["step"] == 3
