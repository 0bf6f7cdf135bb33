"""Training: both schedules learn, checkpoints resume, CLIs report bad input, DDP over gloo."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from ndr_edge.checkpoint import load_checkpoint
from ndr_edge.errors import InputError
from ndr_edge.train import TrainConfig, Trainer
from ndr_edge.train.validation import VAL_SET

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
    # the checkpoint holds exactly the trained weights, the optimiser file exactly the optimisers' state
    assert_same_tensors(_states(loaded.model), _states(trainer.model))
    saved = torch.load(tmp_path / "m.safetensors.optim.pt", map_location="cpu", weights_only=True)
    assert saved["step"] == 11 and len(saved["optimizers"]) == len(trainer.optimizers) == (1 if schedule == "joint" else 2)
    for on_disk, optimizer in zip(saved["optimizers"], trainer.optimizers):
        assert_same_optimizer_state(on_disk, optimizer.state_dict())


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
    first = Trainer(TrainConfig(out=str(out), steps=3, **TINY))
    initial = _states(first)
    first.fit(progress=False)
    meta = load_checkpoint(out).meta
    assert meta["step"] == 3 and set(meta["metrics"]["val_psnr"]) == {"noise25"}
    resumed = Trainer(TrainConfig(out=str(tmp_path / "more.safetensors"), steps=5, resume=str(out), **TINY))
    assert resumed.step == 3
    # resuming restores the trained weights (not the seeded initial ones) and the Adam moments
    trained = _states(first)
    assert any(not torch.equal(trained[k], initial[k]) for k in trained)
    assert_same_tensors(_states(resumed), trained)
    assert_same_optimizer_state(resumed.optimizers[0].state_dict(), first.optimizers[0].state_dict())
    resumed.fit(progress=False)
    assert load_checkpoint(tmp_path / "more.safetensors").meta["step"] == 5


def test_snapshots_keep_every_periodic_save(tmp_path):
    out, snap = tmp_path / "s.safetensors", tmp_path / "snap"
    Trainer(TrainConfig(out=str(out), steps=4, snapshots=str(snap), **{**TINY, "save_every": 2})).fit(progress=False)
    assert sorted(p.name for p in snap.iterdir()) == ["step-2.safetensors", "step-4.safetensors"]
    assert load_checkpoint(snap / "step-2.safetensors").meta["step"] == 2
    assert load_checkpoint(snap / "step-4.safetensors").meta["step"] == 4 and not list(snap.glob("*.tmp"))


def test_resume_from_authors_layout(tmp_path, conformance_dir):
    no_preset = {k: v for k, v in TINY.items() if k != "preset"}  # the checkpoint fixes the model
    trainer = Trainer(TrainConfig(out=str(tmp_path / "ft.safetensors"), steps=1, resume=str(conformance_dir / "official-small.pth"), **no_preset))
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


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_on_the_same_global_batch(tmp_path):
    """torchrun, 2 processes x batch 2 (gloo) == one process x batch 4: each rank takes every
    other sample of the same stream and DDP averages the gradients, so the weights and the Adam
    moments after 3 steps agree up to the order of float sums."""
    run = ["--steps", "3", "--crop", "32", "--lr", "1e-3", "--precision", "fp32", "--threads", "1", "--val-every", "0",
           "--save-every", "0", "--val-degradations", "noise25", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ddp, one = tmp_path / "ddp.safetensors", tmp_path / "one.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
         "--master_port", str(_free_port()), "-m", "ndr_edge.cli.train", *run, "--batch", "2", "-o", str(ddp)],
        check=False, capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _cli("ndr_edge.cli.train", *run, "--batch", "4", "-o", str(one), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a, b = (load_checkpoint(p, with_degradation_net=True) for p in (ddp, one))
    assert a.meta["step"] == b.meta["step"] == 3
    start = _states(Trainer(TrainConfig(out=str(tmp_path / "start.safetensors"), steps=3, **TINY)))  # the seeded start
    got, want = _states(a.model), _states(b.model)
    moved = max(float((want[k] - start[k]).abs().max()) for k in want)
    assert moved > 1e-3  # three steps of lr 1e-3 really moved the weights
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=1e-5, msg=key)
    moments = [torch.load(p.with_name(p.name + ".optim.pt"), map_location="cpu", weights_only=True) for p in (ddp, one)]
    for idx, state in moments[1]["optimizers"][0]["state"].items():
        other = moments[0]["optimizers"][0]["state"][idx]
        assert float(other["step"]) == float(state["step"]) == 3
        torch.testing.assert_close(other["exp_avg"], state["exp_avg"], rtol=1e-3, atol=1e-7)
        torch.testing.assert_close(other["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-3, atol=1e-10)


def _states(source) -> dict[str, torch.Tensor]:
    """A copy of the weights of a Trainer's model or of a model."""
    model = source.model if isinstance(source, Trainer) else source
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_tensors(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert torch.equal(got[key], value), key


def assert_same_optimizer_state(got: dict, want: dict) -> None:
    """Adam's state, tensor by tensor (step, exp_avg, exp_avg_sq per parameter), and its settings."""
    assert got["state"].keys() == want["state"].keys() and want["state"], "no optimiser state to compare"
    for idx, state in want["state"].items():
        assert got["state"][idx].keys() == state.keys()
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(got["state"][idx][name]), torch.as_tensor(value)), (idx, name)
    assert any(bool(s["exp_avg"].abs().max() > 0) for s in want["state"].values())  # real moments, not zeros
    settings = [[{k: v for k, v in group.items() if k != "params"} for group in s["param_groups"]] for s in (got, want)]
    assert [g["params"] for g in got["param_groups"]] == [g["params"] for g in want["param_groups"]]
    assert settings[0] == settings[1]


def test_resume_continues_exactly(tmp_path):
    """N steps in one run == N/2 steps, save, --resume, N/2 more: weights, optimiser moments,
    the data stream and the schedule all continue; the metadata records both commands."""
    kw = {**TINY, "steps": 4, "lr": 1e-3, "procedural": 0.5, "procedural_images": 2, "loss": "relative",
          "milestones": [0.5], "gamma": 0.1}
    straight = Trainer(TrainConfig(out=str(tmp_path / "s.safetensors"), **kw), command="straight")
    straight.fit(progress=False)
    half = Trainer(TrainConfig(out=str(tmp_path / "h.safetensors"), **kw), command="first half")
    half.fit(progress=False, until=2)
    assert load_checkpoint(tmp_path / "h.safetensors").meta["step"] == 2
    resumed = Trainer(TrainConfig(out=str(tmp_path / "r.safetensors"), resume=str(tmp_path / "h.safetensors"), **kw),
                      command="second half")
    assert resumed.learning_rate() == pytest.approx(1e-4)  # step 2 is past the 0.5 milestone of 4 steps
    resumed.fit(progress=False)
    a, b = _states(straight), _states(resumed)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
    moments_a = straight.optimizers[0].state_dict()["state"]
    moments_b = resumed.optimizers[0].state_dict()["state"]
    for idx in moments_a:
        torch.testing.assert_close(moments_b[idx]["exp_avg_sq"], moments_a[idx]["exp_avg_sq"], rtol=1e-5, atol=1e-12)
        assert float(moments_b[idx]["step"]) == 4
    meta = load_checkpoint(tmp_path / "r.safetensors").meta
    assert meta["training"]["commands"] == ["first half", "second half"]
    assert [h["step"] for h in meta["metrics"]["val_history"]] == [2, 4]
    assert "degrad" in meta["metrics"]["last_losses"]  # NDR-Degrad's loss is recorded


def test_resume_refuses_another_preset_and_a_corrupt_optimiser(tmp_path):
    from ndr_edge.errors import CheckpointError, InputError

    out = tmp_path / "xs.safetensors"
    Trainer(TrainConfig(out=str(out), steps=1, **TINY)).fit(progress=False)
    with pytest.raises(InputError, match="ndr-edge-xs checkpoint cannot resume as --preset ndr-edge-s"):
        Trainer(TrainConfig(out=str(tmp_path / "s.safetensors"), steps=2, resume=str(out), **{**TINY, "preset": "ndr-edge-s"}))
    optim = tmp_path / "xs.safetensors.optim.pt"
    optim.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match=r"optim\.pt: unreadable optimiser state.*delete"):
        Trainer(TrainConfig(out=str(tmp_path / "next.safetensors"), steps=2, resume=str(out), **TINY))
    before = out.read_bytes()
    proc = _cli("ndr_edge.cli.train", "--resume", str(out), "-o", str(out), "--steps", "2", "--quiet")
    assert proc.returncode != 0 and proc.stderr.strip().startswith("ndr-train: error:"), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "optim.pt" in proc.stderr
    assert out.read_bytes() == before  # the last good checkpoint stays


@pytest.mark.parametrize("kind", ["relative", "psnr"])
def test_per_sample_losses_balance_easy_and_hard_samples(kind):
    from ndr_edge.train.loop import restoration_loss

    gt = torch.full((2, 3, 8, 8), 0.5)
    lq = gt.clone()
    lq[0] += 0.2  # a hard sample (dense haze)
    lq[1] += 0.02  # an easy one (light noise)
    halved = gt + (lq - gt) / 2  # each restored half way
    loss = restoration_loss(kind, halved, gt, lq)
    if kind == "relative":
        # each sample scores half its input error (errors above the 0.02 floor)
        assert loss.item() == pytest.approx((0.1 / 0.2 + 0.01 / 0.02) / 2, rel=1e-4)
    else:
        expected = 10 * torch.log10(torch.tensor([0.1**2, 0.01**2])).mean()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
    # the plain L1 is dominated by the hard sample; the per-sample losses weigh both alike
    restored = halved.clone().requires_grad_(True)
    restoration_loss(kind, restored, gt, lq).backward()
    g = restored.grad.abs().flatten(1).sum(1)
    assert g[1] > g[0]  # the easy sample's pixels get larger gradients, not smaller


def test_psnr_ceiling_stops_a_clean_crop_from_outweighing_the_batch():
    from ndr_edge.train.loop import restoration_loss

    gt = torch.full((2, 3, 8, 8), 0.5)
    lq = gt.clone()
    lq[0] += 0.1  # degraded
    restored = gt.clone()
    restored[0] += 0.05  # half restored
    restored[1] += 0.001  # a clean crop, almost the identity (60 dB)
    assert restoration_loss("psnr", gt, gt, gt, psnr_ceiling=40.0).item() == pytest.approx(-40.0, abs=1e-3)
    grads = {}
    for ceiling in (80.0, 40.0):
        x = restored.clone().requires_grad_(True)
        restoration_loss("psnr", x, gt, lq, psnr_ceiling=ceiling).backward()
        grads[ceiling] = x.grad.abs().flatten(1).sum(1)
    assert grads[80.0][1] > 10 * grads[80.0][0]  # without a ceiling the near-identity crop dominates
    assert grads[40.0][1] < grads[40.0][0]  # with one it pulls less than the degraded crop
    assert grads[40.0][0] == pytest.approx(grads[80.0][0].item(), rel=0.05)  # the degraded crop barely notices


def test_psnr_ceiling_is_checked():
    with pytest.raises(InputError, match="psnr_ceiling"):
        TrainConfig(psnr_ceiling=5.0)


def test_every_procedural_pool_has_its_own_seed():
    from ndr_edge.cli.evaluate import PROCEDURAL_EVAL_SEED
    from ndr_edge.train.loop import OBJECTS_TRAIN_SEED, PROCEDURAL_TRAIN_SEED, STRUCTURED_TRAIN_SEED
    from ndr_edge.train.validation import OBJECTS_VAL_SEED, PROCEDURAL_VAL_SEED, STRUCTURED_VAL_SEED

    seeds = [PROCEDURAL_TRAIN_SEED, PROCEDURAL_VAL_SEED, STRUCTURED_TRAIN_SEED, STRUCTURED_VAL_SEED, OBJECTS_TRAIN_SEED,
             OBJECTS_VAL_SEED, PROCEDURAL_EVAL_SEED]
    assert len(set(seeds)) == len(seeds)  # no evaluation or validation image is drawn by a training pool


def test_structured_share_is_checked_against_the_procedural_one():
    TrainConfig(procedural=0.3, structured=0.15)
    with pytest.raises(InputError, match="structured"):
        TrainConfig(procedural=0.9, structured=0.2)
    TrainConfig(procedural=0.3, structured=0.35, objects=0.35)
    with pytest.raises(InputError, match="objects"):
        TrainConfig(procedural=0.3, structured=0.35, objects=0.4)


def test_bf16_and_fp32_steps_move_the_loss_the_same_way(tmp_path):
    from ndr_edge.train.loop import resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("auto", "cuda") == "bf16"
    deltas, losses = {}, {}
    for precision in ("fp32", "bf16"):
        trainer = Trainer(TrainConfig(out=str(tmp_path / f"{precision}.safetensors"), steps=4, lr=1e-3,
                                      precision=precision, **TINY))
        trainer.model.restoration_net.reconstruction.weight.data.normal_(0, 0.02, generator=torch.Generator().manual_seed(0))
        before = torch.cat([p.detach().flatten().clone() for p in trainer.model.parameters()])
        lq, gt = _batch(trainer)
        first = trainer.train_step(lq, gt)["restore"]
        after = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        trainer.step = 0
        losses[precision] = (first, trainer.train_step(lq, gt)["restore"])
        deltas[precision] = after - before
    cosine = torch.nn.functional.cosine_similarity(deltas["fp32"], deltas["bf16"], dim=0)
    assert cosine > 0.9, cosine
    (f32_before, f32_after), (bf_before, bf_after) = losses["fp32"], losses["bf16"]
    assert (f32_after - f32_before) * (bf_after - bf_before) > 0  # the step moves the loss the same way
    assert abs(bf_before - f32_before) < 0.02 * f32_before and abs(bf_after - f32_after) < 0.02 * f32_after


def test_keep_best_keeps_the_step_with_the_best_mean_validation_gain(tmp_path):
    trainer = Trainer(TrainConfig(out=str(tmp_path / "k.safetensors"), steps=3, lr=1e-3,
                                  **{**TINY, "val_every": 1}))
    trainer.fit(progress=False)
    history = trainer.val_history
    assert {h["set"] for h in history} == {VAL_SET}
    gains = [[v for k, v in h.items() if k not in ("step", "set")] for h in history]
    means = [sum(g) / len(g) for g in gains]
    best_step = history[max(range(len(means)), key=lambda i: (means[i], -i))]["step"]
    best = load_checkpoint(trainer.best_path())
    assert trainer.best_path().name == "k.best.safetensors"
    assert best.meta["step"] == best_step
