"""The training loop: bidirectional optimisation, validation, checkpoints, torchrun DDP."""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from ndr_edge.cpu import cpu_features
from ndr_edge.data import CropConfig, SyntheticPairs, load_clean_folder
from ndr_edge.data.procedural import dead_leaves_set, objects_set, structured_set
from ndr_edge.degradations import parse_names
from ndr_edge.errors import CheckpointError, InputError
from ndr_edge.evaluate import EvalResult, evaluate, torch_runner
from ndr_edge.imageio import demo_images
from ndr_edge.model import NDRRestore, get_preset, preset_name
from ndr_edge.train.config import TrainConfig
from ndr_edge.train.validation import VAL_SET, validation_samples

DEFAULT_PRESET = "ndr-edge-xs"
#: The ``relative`` loss divides by max(input L1 error, this). Without a floor (1e-3 was
#: tried) nearly clean crops (noise sigma 1, L1 error 0.003) weigh 100x more than the rest,
#: and the network stays at the identity: 500 steps, every gain within 0.03 dB of zero.
RELATIVE_FLOOR = 0.02
#: Seed of the dead-leaves training pool; validation draws from others
#: (``ndr_edge.train.validation``), so no validation image is ever a training image.
PROCEDURAL_TRAIN_SEED = 1000
#: Seed of the structured pool (walls, tiles, lines): training only, distinct from every other pool seed.
STRUCTURED_TRAIN_SEED = 4000
#: Seed of the objects pool (coins, moons on flat backgrounds): training only, distinct from every other.
OBJECTS_TRAIN_SEED = 4500


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


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``auto`` -> ``bf16`` on CUDA or a CPU with native bf16, else ``fp32``."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cuda" or cpu_features().bf16 else "fp32"


def restoration_loss(
    kind: str, restored: torch.Tensor, gt: torch.Tensor, lq: torch.Tensor, psnr_ceiling: float = 80.0
) -> torch.Tensor:
    """The restoration loss ``kind`` (``TrainConfig.loss``) of a batch; see ``LOSSES``
    (``psnr_ceiling``: ``TrainConfig.psnr_ceiling``)."""
    if kind == "l1":
        return F.l1_loss(restored, gt)
    if kind == "relative":
        err = (restored - gt).abs().flatten(1).mean(1)
        base = (lq - gt).abs().flatten(1).mean(1).detach()
        return (err / base.clamp(min=RELATIVE_FLOOR)).mean()
    mse = (restored - gt).square().flatten(1).mean(1)
    return (10.0 * torch.log10(mse + 10.0 ** (-psnr_ceiling / 10.0))).mean()


def _rounded(value: float) -> float | None:
    """A validation number for the checkpoint's JSON metadata: None for a clean group's NaN gain."""
    return round(value, 3) if math.isfinite(value) else None


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
        self.procedural = _pool(dead_leaves_set, config.procedural, config.procedural_images, PROCEDURAL_TRAIN_SEED)
        self.structured = _pool(structured_set, config.structured, config.structured_images, STRUCTURED_TRAIN_SEED)
        self.objects = _pool(objects_set, config.objects, config.objects_images, OBJECTS_TRAIN_SEED)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.running: dict[str, float] = {}  # exponentially smoothed losses (the progress bar's)
        self.val_history: list[dict[str, float]] = []
        self.commands: list[str] = []
        self.model = self._build_model()
        self.commands.append(self.command)
        self.device = torch.device(config.device if config.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
        if self.device.type == "cuda" and self.dist.world > 1:
            self.device = torch.device("cuda", self.dist.rank % torch.cuda.device_count())
        self.precision = resolve_precision(config.precision, self.device.type)
        self.model = self.model.to(self.device)
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.dist.world > 1:
            self.net = nn.parallel.DistributedDataParallel(self.model, find_unused_parameters=config.schedule != "joint")
        self.forward: nn.Module = torch.compile(self.net) if config.compile else self.net  # type: ignore[assignment]
        self.optimizers = self._build_optimizers()
        self._restore_optimizer_state()
        self.last_eval: EvalResult | None = None
        self._val_samples: list | None = None  # validation frames, made once (``validate``)
        if config.resume and self.dist.main:
            print(f"resumed {config.resume} at step {self.step}", file=sys.stderr)

    # -- construction -----------------------------------------------------------------
    def _build_model(self) -> NDRRestore:
        if self.cfg.resume:
            loaded = load_checkpoint(self.cfg.resume, with_degradation_net=True)
            # the tensors fix every field but the parameter-free global residual
            if self.cfg.preset and replace(get_preset(self.cfg.preset), global_residual=False) != replace(
                    loaded.config, global_residual=False):
                raise InputError(
                    f"{loaded.path}: a {loaded.preset or 'custom'} checkpoint cannot resume as --preset "
                    f"{self.cfg.preset}; drop --preset (the checkpoint fixes the model) or start a new run"
                )
            self.step = int(loaded.meta.get("step", 0))
            training = loaded.meta.get("training") or {}
            self.commands = list(training.get("commands") or ([training["command"]] if "command" in training else []))
            metrics = loaded.meta.get("metrics") or {}
            self.history = list(metrics.get("loss_history") or [])
            self.running = {k: v for k, v in (metrics.get("last_losses") or {}).items() if k != "step"}
            self.val_history = list(metrics.get("val_history") or [])
            model = loaded.model
        else:
            model = NDRRestore(get_preset(self.cfg.preset or DEFAULT_PRESET), with_degradation_net=True)
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
        """Load the optimiser state saved beside the resumed checkpoint. A checkpoint without
        one (the authors' files, a bundled model) starts fresh moments; one that is corrupt,
        of another schedule or of another step is refused, naming the file."""
        if not self.cfg.resume:
            return
        path = _optim_path(Path(self.cfg.resume))
        if not path.is_file():
            return
        fix = f"delete {path} to resume with fresh optimiser moments"
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            saved = state["optimizers"]
        except Exception as exc:
            raise CheckpointError(f"{path}: unreadable optimiser state ({str(exc)[:120]}); {fix}") from exc
        if len(saved) != len(self.optimizers):
            raise CheckpointError(f"{path}: optimiser state of another schedule ({len(saved)} optimisers); {fix}")
        if int(state.get("step", self.step)) != self.step:
            raise CheckpointError(f"{path}: optimiser state of step {state.get('step')}, checkpoint of step {self.step}; {fix}")
        try:
            for opt, s in zip(self.optimizers, saved):
                opt.load_state_dict(s)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimiser state does not fit this model ({str(exc)[:120]}); {fix}") from exc

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
        per_step = cfg.batch * self.dist.world
        dataset = SyntheticPairs(
            self.images,
            self.degradations,
            CropConfig(size=cfg.crop, grey=cfg.grey, tone=cfg.tone),
            samples=max(remaining * per_step, 1),
            seed=cfg.seed,
            channel_order=cfg.channel_order,
            procedural=self.procedural,
            procedural_fraction=cfg.procedural,
            balanced=cfg.balanced,
            offset=self.step * per_step,  # a resumed run continues the same stream
            structured=self.structured,
            structured_fraction=cfg.structured,
            objects=self.objects,
            objects_fraction=cfg.objects,
        )
        sampler = DistributedSampler(dataset, shuffle=False) if self.dist.world > 1 else None
        return DataLoader(dataset, batch_size=cfg.batch, sampler=sampler, num_workers=cfg.workers, drop_last=True)

    # -- one step ---------------------------------------------------------------------
    def _losses(self, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lq, gt = lq.to(self.device, non_blocking=True), gt.to(self.device, non_blocking=True)
        if self.cfg.channels_last:
            lq, gt = lq.contiguous(memory_format=torch.channels_last), gt.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            restored, fake_lq = self.forward(lq, gt)
        restored, fake_lq = restored.float(), fake_lq.float()
        return restoration_loss(self.cfg.loss, restored, gt, lq, self.cfg.psnr_ceiling), F.l1_loss(fake_lq, lq)

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
        """The validation set (``ndr_edge.train.validation``, ``VAL_SET``) under every
        validation degradation, built at the first validation and kept for the rest."""
        if self._val_samples is None:
            self._val_samples = validation_samples(self.val_degradations)
        samples = self._val_samples
        self.model.eval()
        result = evaluate(torch_runner(self.model.restoration_net, device=self.device), samples, self.cfg.channel_order, progress=progress)
        self.model.train()
        self.last_eval = result
        self.val_history.append({"step": self.step, "set": VAL_SET,
                                 **{k: _rounded(v.gain_db) for k, v in result.scores.items()}})
        return result

    def save(self, path: str | Path | None = None) -> Path:
        target = Path(path or self.cfg.out)
        metrics = {"val_psnr": {k: _rounded(v.psnr) for k, v in self.last_eval.scores.items()}} if self.last_eval else {}
        metrics["val_gain_db"] = (
            {k: _rounded(v.gain_db) for k, v in self.last_eval.scores.items()} if self.last_eval else {}
        )
        if self.running:
            metrics["last_losses"] = {"step": self.step, **self.running}  # restore and degrad (NDR-Degrad), smoothed
        metrics["loss_history"] = self.history
        metrics["val_history"] = self.val_history
        data = self.cfg.data or "demo:train (scikit-image bundled photos)"
        meta = CheckpointMeta(
            preset=preset_name(self.model.config),
            config={},
            channel_order=self.cfg.channel_order,
            degradations=self.degradations,
            step=self.step,
            metrics=metrics,
            training={
                "command": self.command,
                "commands": self.commands,  # the whole chain: first run, then each --resume
                "seed": self.cfg.seed,
                "data": _data_line(data, self.cfg),
                "schedule": self.cfg.schedule,
                "precision": self.precision,
                "config": self.cfg.to_dict(),
            },
        )
        # optimiser first (temp file), then the checkpoint, then the optimiser into place: a kill
        # at any point leaves the last good pair, or a pair whose step mismatch resume reports
        optim = {"step": self.step, "optimizers": [o.state_dict() for o in self.optimizers]}
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _optim_path(target).with_suffix(".tmp")
        torch.save(optim, tmp)
        try:
            save_checkpoint(target, self.model, meta)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, _optim_path(target))
        return target

    def _snapshot(self, saved: Path) -> None:
        """With ``snapshots``, copy the checkpoint just saved to ``snapshots/step-N.safetensors``
        (temp file, then rename): the saves ``ndr-average`` means over."""
        if not self.cfg.snapshots:
            return
        target = Path(self.cfg.snapshots) / f"step-{self.step}.safetensors"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(saved, tmp)
        os.replace(tmp, target)

    def best_path(self) -> Path:
        """Where ``keep_best`` keeps the checkpoint of the best validation so far."""
        out = Path(self.cfg.out)
        return out.with_name(out.name.removesuffix(".safetensors") + ".best.safetensors")

    def _keep_if_best(self, result: EvalResult, bar: tqdm) -> None:
        """Validation gains of a small all-in-one model rise and fall as one degradation's
        progress costs another; keep the step with the best mean gain apart."""
        if not self.cfg.keep_best or not result.scores:
            return
        finite = [v.gain_db for v in result.scores.values() if math.isfinite(v.gain_db)]  # a clean group has none
        if not finite:
            return
        mean = sum(finite) / len(finite)
        gains = [[v for k, v in h.items() if k not in ("step", "set") and v is not None] for h in self.val_history[:-1]
                 if h.get("set") == VAL_SET]
        best = max((sum(g) / len(g) for g in gains if g), default=None)
        if best is None or mean > best:
            self.save(self.best_path())
            bar.write(f"step {self.step}: best mean gain so far ({mean:+.2f} dB) -> {self.best_path()}")

    # -- the loop -----------------------------------------------------------------------
    def fit(self, progress: bool = True, until: int | None = None) -> Path | None:
        """Train to ``cfg.steps`` (or stop at step ``until`` of that schedule, to resume later)."""
        cfg = self.cfg
        stop = min(cfg.steps, until) if until else cfg.steps
        show = progress and self.dist.main
        loader = self._loader()
        bar = tqdm(total=stop, initial=self.step, desc="train", unit="step", disable=not show, dynamic_ncols=True)
        started = time.time()
        running = self.running
        for batch in loader:
            if self.step >= stop:
                break
            losses = self.train_step(batch["lq"], batch["gt"])
            running = self.running = {k: 0.9 * running.get(k, v) + 0.1 * v for k, v in losses.items()}
            bar.update(1)
            bar.set_postfix({k: f"{v:.4f}" for k, v in running.items()}, refresh=False)
            if self.step % 50 == 0:
                self.history.append({"step": self.step, **running})
            if self.dist.main and cfg.val_every and self.step % cfg.val_every == 0:
                result = self.validate()
                bar.write(f"step {self.step}: " + ", ".join(f"{k} {v.psnr:.2f} dB ({v.gain_db:+.2f})" for k, v in result.scores.items()))
                self._keep_if_best(result, bar)
            if self.dist.main and cfg.save_every and self.step % cfg.save_every == 0:
                self._snapshot(self.save())
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


def _pool(draw_set: Callable[[int, int, int], list[tuple[str, np.ndarray]]], fraction: float, count: int,
          seed: int) -> list[np.ndarray]:
    """A seeded procedural pool of ``count`` 256 px images, or none when its share is 0."""
    return [img for _, img in draw_set(count, 256, seed)] if fraction > 0 else []


def _data_line(data: str | list[str], cfg: TrainConfig) -> str | list[str]:
    """The checkpoint's description of the training data: the folders (or the demo photos),
    plus the procedural pools' shares when there are any."""
    extra = [f"{cfg.procedural:.0%} dead leaves"] if cfg.procedural else []
    extra += [f"{cfg.structured:.0%} structured scenes"] if cfg.structured else []
    extra += [f"{cfg.objects:.0%} objects on flat backgrounds"] if cfg.objects else []
    return " + ".join([str(data), *extra]) if extra else data
