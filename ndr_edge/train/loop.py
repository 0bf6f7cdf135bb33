"""The training loop: bidirectional optimisation, validation, checkpoints, torchrun DDP."""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ..checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from ..data import CropConfig, SyntheticPairs, load_clean_folder, synthetic_eval_set
from ..degradations import parse_names
from ..errors import InputError
from ..evaluate import EvalResult, evaluate, torch_runner
from ..imageio import demo_images
from ..model import NDRRestore, get_preset
from .config import TrainConfig


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed() -> DistInfo:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo" if not torch.cuda.is_available() else "nccl")
    return DistInfo(rank=dist.get_rank(), world=dist.get_world_size())


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _optim_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".optim.pt")


class Trainer:
    def __init__(self, config: TrainConfig, command: str | None = None) -> None:
        self.cfg = config
        self.command = command or " ".join(sys.argv)
        self.dist = _init_distributed()
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed_everything(config.seed)
        self.degradations = list(parse_names(config.degradations))
        self.val_degradations = list(parse_names(config.val_degradations))
        self.images = self._train_images()
        self.step = 0
        self.model = self._build_model()
        self.net: nn.Module = self.model
        if self.dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=config.schedule != "joint")
        self.optimizers = self._build_optimizers()
        self._restore_optimizer_state()
        self.history: list[dict[str, float]] = []
        self.last_eval: EvalResult | None = None

    # -- construction -----------------------------------------------------------------
    def _build_model(self) -> NDRRestore:
        if self.cfg.resume:
            loaded = load_checkpoint(self.cfg.resume, with_degradation_net=True)
            self.step = int(loaded.meta.get("step", 0))
            if self.dist.main:
                print(f"resumed {loaded.kind} checkpoint {loaded.path} at step {self.step}", file=sys.stderr)
            model = loaded.model
        else:
            model = NDRRestore(get_preset(self.cfg.preset), with_degradation_net=True)
        return model.train()

    def _build_optimizers(self) -> list[torch.optim.Optimizer]:
        kw = {"lr": self.cfg.lr, "betas": self.cfg.betas, "weight_decay": self.cfg.weight_decay}
        if self.cfg.schedule == "joint":
            return [torch.optim.Adam(self.model.parameters(), **kw)]  # type: ignore[arg-type]
        assert self.model.degradation_net is not None
        restoration = list(self.model.restoration_net.parameters())  # includes the shared NDR
        return [
            torch.optim.Adam(restoration, **kw),  # type: ignore[arg-type]
            torch.optim.Adam(self.model.degradation_net.parameters(), **kw),  # type: ignore[arg-type]
        ]

    def _restore_optimizer_state(self) -> None:
        if not self.cfg.resume:
            return
        path = _optim_path(Path(self.cfg.resume))
        if not path.is_file():
            return
        state = torch.load(path, map_location="cpu", weights_only=True)
        if len(state["optimizers"]) == len(self.optimizers):
            for opt, s in zip(self.optimizers, state["optimizers"]):
                opt.load_state_dict(s)

    def _train_images(self) -> list[np.ndarray]:
        if self.cfg.data:
            images = [img for folder in self.cfg.data for _, img in load_clean_folder(folder)]
        else:
            images = [img for _, img in demo_images("train")]
        if not images:
            raise InputError("no training images found; pass --data FOLDER with clean images")
        return images

    def _loader(self) -> DataLoader:
        cfg = self.cfg
        remaining = max(cfg.steps - self.step, 0)
        samples = remaining * cfg.batch * self.dist.world
        dataset = SyntheticPairs(
            self.images,
            self.degradations,
            CropConfig(size=cfg.crop),
            samples=max(samples, 1),
            seed=cfg.seed + self.step,  # a resumed run continues with fresh samples
            channel_order=cfg.channel_order,
        )
        sampler = DistributedSampler(dataset, shuffle=False) if self.dist.world > 1 else None
        return DataLoader(dataset, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers, drop_last=True)

    # -- one step ---------------------------------------------------------------------
    def _losses(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        restored, fake_lq = self.net(lq, gt)
        return F.l1_loss(restored, gt), F.l1_loss(fake_lq, lq)

    def learning_rate(self) -> float:
        """Multi-step decay: ``lr * gamma ** (milestones passed)``, a function of the global step."""
        passed = sum(self.step >= m for m in self.cfg.milestone_steps())
        return self.cfg.lr * self.cfg.gamma**passed

    def train_step(self, lq: torch.Tensor, gt: torch.Tensor) -> dict[str, float]:
        if self.cfg.schedule == "joint":
            opt = self.optimizers[0]
            rest, deg = self._losses(lq, gt)
            loss = rest + deg
        else:
            restoring = self.step % 2 == 0
            opt = self.optimizers[0 if restoring else 1]
            assert self.model.degradation_net is not None
            self.model.degradation_net.requires_grad_(not restoring)
            self.model.restoration_net.requires_grad_(restoring)
            rest, deg = self._losses(lq, gt)
            loss = rest + deg if restoring else deg
        for group in opt.param_groups:
            group["lr"] = self.learning_rate()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in opt.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.cfg.clip)
        opt.step()
        if self.cfg.schedule != "joint":
            self.model.requires_grad_(True)
        self.step += 1
        return {"loss": loss.item(), "restore": rest.item(), "degrad": deg.item()}

    # -- validation and saving --------------------------------------------------------
    def validate(self, progress: bool = False) -> EvalResult:
        samples = synthetic_eval_set(demo_images("heldout"), self.val_degradations, seed=1234, max_side=128)
        self.model.eval()
        result = evaluate(torch_runner(self.model.restoration_net), samples, self.cfg.channel_order, progress=progress)
        self.model.train()
        self.last_eval = result
        return result

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path or self.cfg.out)
        metrics = {"val_psnr": {k: round(v.psnr, 3) for k, v in self.last_eval.scores.items()}} if self.last_eval else {}
        metrics["val_gain_db"] = (
            {k: round(v.gain_db, 3) for k, v in self.last_eval.scores.items()} if self.last_eval else {}
        )
        if self.history:
            metrics["last_losses"] = self.history[-1]
        meta = CheckpointMeta(
            preset=self.cfg.preset if not self.cfg.resume else None,
            config={},
            channel_order=self.cfg.channel_order,
            degradations=self.degradations,
            step=self.step,
            metrics=metrics,
            training={
                "command": self.command,
                "seed": self.cfg.seed,
                "data": self.cfg.data or "demo:train (scikit-image bundled photos)",
                "schedule": self.cfg.schedule,
                "config": self.cfg.to_dict(),
            },
        )
        from ..model import preset_name

        meta.preset = preset_name(self.model.config)
        save_checkpoint(target, self.model, meta)
        optim = {"optimizers": [o.state_dict() for o in self.optimizers]}
        tmp = _optim_path(target).with_suffix(".tmp")
        torch.save(optim, tmp)
        os.replace(tmp, _optim_path(target))
        return target

    # -- the loop -----------------------------------------------------------------------
    def fit(self, progress: bool = True) -> Path | None:
        cfg = self.cfg
        show = progress and self.dist.main
        loader = self._loader()
        bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="step", disable=not show, dynamic_ncols=True)
        started = time.time()
        running: dict[str, float] = {}
        for batch in loader:
            if self.step >= cfg.steps:
                break
            losses = self.train_step(batch["lq"], batch["gt"])
            running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in losses.items()}
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()}, refresh=False)
            if self.step % 50 == 0:
                self.history.append({"step": self.step, **running})
            if self.dist.main and cfg.val_every and self.step % cfg.val_every == 0:
                result = self.validate()
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v.psnr:.2f} dB ({v.gain_db:+.2f})" for k, v in result.scores.items()))
            if self.dist.main and cfg.save_every and self.step % cfg.save_every == 0:
                self.save()
        bar.close()
        out = None
        if self.dist.main:
            if self.last_eval is None or cfg.val_every == 0 or self.step % cfg.val_every:
                self.validate()
            out = self.save()
            print(f"trained {self.step} steps in {time.time() - started:.0f} s -> {out}", file=sys.stderr)
        if self.dist.world > 1:
            dist.barrier()
            dist.destroy_process_group()
        return out
