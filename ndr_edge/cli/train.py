"""ndr-train: bidirectional training of an NDR-Restore model on CPU or GPU."""

from __future__ import annotations

import sys
from typing import Any

import click

from ndr_edge.cli.common import one_line_errors

EXAMPLES = """
\b
Examples:
  # the bundled model's recipe: photos + dead leaves, all degradations, per-sample loss
  ndr-train --loss relative --procedural 0.3 --steps 6000 -o runs/xs.safetensors
  # stop at step 3000 of that 6000-step schedule, continue later exactly where it stopped
  ndr-train --loss relative --procedural 0.3 --steps 6000 --until 3000 -o runs/xs.safetensors
  ndr-train --resume runs/xs.safetensors -o runs/xs.safetensors
  # keep every save, then ship the weight mean of the last few instead of one lucky step
  ndr-train --resume runs/xs.safetensors --snapshots runs/snap -o runs/xs.safetensors
  ndr-average runs/snap/step-5{000,250,500,750}.safetensors -o runs/xs-avg.safetensors
  # your own clean images, the paper's alternating schedule
  ndr-train --data ~/photos --schedule alternating --steps 20000 -o runs/mine.safetensors
  # fine-tune the authors' published checkpoint on rain and haze only
  ndr-train --resume NDR-Restore.pth --degradations rain,haze --steps 5000 -o runs/ft.safetensors
  # two data-parallel processes (gloo on CPU, nccl on GPU)
  torchrun --nproc_per_node 2 -m ndr_edge.cli.train --steps 2000 -o runs/ddp.safetensors

\b
--resume takes every setting the run was started with (recorded in the checkpoint) except
those you pass again; the optimiser, the schedule, the data stream and the validation
history continue, and the checkpoint records the chain of commands.
"""

# options that describe the run (recorded in the checkpoint and inherited by --resume)
_RUN_OPTIONS = ("data", "degradations", "val_degradations", "steps", "batch", "crop", "lr", "schedule", "seed",
                "val_every", "save_every", "loss", "psnr_ceiling", "balanced", "procedural", "structured", "objects", "grey", "tone", "precision", "channels_last", "compile")


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--preset", default=None, help="Family member: ndr-restore, ndr-edge-s, ndr-edge-xs.  [default: ndr-edge-xs; "
              "with --resume the checkpoint's]")
@click.option("-o", "--out", default="runs/ndr-edge-xs.safetensors", show_default=True, help="Checkpoint to write (safetensors).")
@click.option("--data", multiple=True, help="Folder of clean images (repeatable). Default: the bundled demo photos.")
@click.option("--degradations", default="noise,rain,haze,lowres,mix", show_default=True,
              help="Synthesised on the fly; add clean for undegraded crops (the network learns to leave them alone).")
@click.option("--val-degradations", default="noise25,rain,haze,lowres2,lowres4,mix", show_default=True)
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1), help="Length of the schedule.")
@click.option("--until", type=click.IntRange(1), help="Stop (and save) at this step of the schedule; --resume continues.")
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--crop", default=64, show_default=True, type=click.IntRange(16), help="Crop size (multiple of 8).")
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--schedule", type=click.Choice(["joint", "alternating"]), default="joint", show_default=True,
              help="joint: the published code's single optimiser; alternating: the paper's.")
@click.option("--loss", type=click.Choice(["l1", "relative", "psnr"]), default="l1", show_default=True,
              help="l1: published; relative: each crop's L1 over its input's L1 error; psnr: mean -PSNR per crop.")
@click.option("--psnr-ceiling", default=80.0, show_default=True, type=click.FloatRange(10, 100),
              help="psnr loss: a crop restored past about this PSNR (dB) stops pulling; ~40 when --degradations "
                   "has clean (80: none).")
@click.option("--balanced/--no-balanced", default=True, show_default=True,
              help="Equal share of each degradation in every stretch of samples (else drawn at random).")
@click.option("--procedural", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of crops from seeded dead-leaves images (natural-image statistics).")
@click.option("--structured", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of crops from seeded walls, tiles and line scenes (thin straight lines that "
                   "are not rain).")
@click.option("--objects", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Fraction of crops from seeded coins, moons and pebbles on flat dark-to-grey backgrounds, "
                   "so a flat background is not taken for haze.")
@click.option("--grey", default=0.25, show_default=True, type=click.FloatRange(0, 1),
              help="Probability that a clean crop is made greyscale, so grey frames are not taken for haze.")
@click.option("--tone", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Probability that a clean crop gets lower contrast (x0.3-1) and a new level, so flat "
                   "bright frames are not taken for haze.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="auto: bf16 autocast where the CPU has native bf16 (AVX512-BF16/AMX), else fp32.")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="NHWC memory layout.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the training step (about 3 min warm-up, "
              "then about 0.8x the step time on CPU).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="auto: CUDA when torch sees a GPU (bf16 autocast there), else the CPU.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--val-every", default=250, show_default=True, type=click.IntRange(0))
@click.option("--save-every", default=500, show_default=True, type=click.IntRange(0))
@click.option("--snapshots", type=click.Path(file_okay=False), help="Also keep a copy of every periodic save here "
              "(step-N.safetensors): the saves ndr-average takes the weight mean of.")
@click.option("--resume", type=click.Path(dir_okay=False), help="Checkpoint to continue from (ours or the authors' .pth).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0), help="DataLoader worker processes.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads (default: torch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@one_line_errors("ndr-train")
def main(ctx: click.Context, preset: str | None, out: str, until: int | None, resume: str | None,
         snapshots: str | None, workers: int, threads: int | None, quiet: bool, compile_: bool, device: str, **run: Any) -> None:
    """Train NDR-Restore: restoration loss (L1, relative L1 or PSNR) plus degradation loss
    L1(NDR-Degrad(clean, D1..D3), degraded), Adam, gradient clipping, multi-step decay,
    random crops/flips/rotations, periodic validation PSNR per degradation on held-out images."""
    from ndr_edge.errors import InputError
    from ndr_edge.model import get_preset
    from ndr_edge.model.config import ConfigError
    from ndr_edge.train import TrainConfig, Trainer

    run["compile"] = compile_
    run["data"] = list(run["data"])
    for key in ("degradations", "val_degradations"):
        run[key] = run[key].split(",")
    if resume:
        run = {**_recorded_run(resume), **{k: v for k, v in run.items() if _given(ctx, k)}}
    try:
        if preset:
            get_preset(preset)
        config = TrainConfig(preset=preset, out=out, resume=resume, snapshots=snapshots, workers=workers, threads=threads, device=device, **run)
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    trainer = Trainer(config, command="ndr-train " + " ".join(sys.argv[1:]))
    trainer.fit(progress=not quiet, until=until)
    if trainer.dist.main and trainer.last_eval is not None:
        click.echo(trainer.last_eval.table())


def _given(ctx: click.Context, name: str) -> bool:
    param = "compile_" if name == "compile" else name
    return ctx.get_parameter_source(param) not in (click.core.ParameterSource.DEFAULT, None)


def _recorded_run(resume: str) -> dict[str, Any]:
    """The run settings a checkpoint of ours records (empty for the authors' files)."""
    from ndr_edge.checkpoint import load_state

    _, meta, _ = load_state(resume)
    recorded = (meta.training.get("config") or {}) if meta else {}
    return {k: recorded[k] for k in _RUN_OPTIONS if k in recorded}


if __name__ == "__main__":
    main()
