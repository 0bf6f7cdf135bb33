"""ndr-train: bidirectional training of an NDR-Restore model on CPU or GPU."""

from __future__ import annotations

import sys

import click

from .common import one_line_errors

EXAMPLES = """
\b
Examples:
  # scikit-image photos, all four degradations (about 1.4 s a step on 2 CPU cores)
  ndr-train --preset ndr-edge-xs --steps 2000 -o runs/xs.safetensors
  # your own clean images, the paper's alternating schedule
  ndr-train --data ~/photos --schedule alternating --steps 20000 -o runs/mine.safetensors
  # fine-tune the authors' published checkpoint on rain and haze only
  ndr-train --resume NDR-Restore.pth --degradations rain,haze --steps 5000 -o runs/ft.safetensors
  # two data-parallel processes (gloo on CPU, nccl on GPU)
  torchrun --nproc_per_node 2 -m ndr_edge.cli.train --steps 2000 -o runs/ddp.safetensors
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--preset", default="ndr-edge-xs", show_default=True, help="Family member: ndr-restore, ndr-edge-s, ndr-edge-xs.")
@click.option("-o", "--out", default="runs/ndr-edge-xs.safetensors", show_default=True, help="Checkpoint to write (safetensors).")
@click.option("--data", multiple=True, help="Folder of clean images (repeatable). Default: the bundled demo photos.")
@click.option("--degradations", default="noise,rain,haze,lowres", show_default=True, help="Synthesised on the fly.")
@click.option("--val-degradations", default="noise25,rain,haze,lowres4", show_default=True)
@click.option("--steps", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--batch", default=8, show_default=True, type=click.IntRange(1))
@click.option("--crop", default=64, show_default=True, type=click.IntRange(16), help="Crop size (multiple of 8).")
@click.option("--lr", default=2e-4, show_default=True, type=float)
@click.option("--schedule", type=click.Choice(["joint", "alternating"]), default="joint", show_default=True,
              help="joint: the published code's single optimiser; alternating: the paper's.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--val-every", default=250, show_default=True, type=click.IntRange(0))
@click.option("--save-every", default=500, show_default=True, type=click.IntRange(0))
@click.option("--resume", type=click.Path(dir_okay=False), help="Checkpoint to continue from (ours or the authors' .pth).")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0), help="DataLoader worker processes.")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads (default: torch's choice).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@one_line_errors("ndr-train")
def main(preset: str, out: str, data: tuple[str, ...], degradations: str, val_degradations: str, steps: int, batch: int,
         crop: int, lr: float, schedule: str, seed: int, val_every: int, save_every: int, resume: str | None,
         workers: int, threads: int | None, quiet: bool) -> None:
    """Train NDR-Restore: restoration loss L1(restored, clean) plus degradation loss
    L1(NDR-Degrad(clean, D1..D3), degraded), Adam, gradient clipping, multi-step decay,
    random crops/flips/rotations, periodic validation PSNR per degradation on held-out images."""
    from ..errors import InputError
    from ..model import get_preset
    from ..model.config import ConfigError
    from ..train import TrainConfig, Trainer

    try:
        get_preset(preset)
        config = TrainConfig(
            preset=preset, out=out, data=list(data), degradations=degradations.split(","),
            val_degradations=val_degradations.split(","), steps=steps, batch=batch, crop=crop, lr=lr,
            schedule=schedule, seed=seed, val_every=val_every, save_every=save_every, resume=resume,
            workers=workers, threads=threads,
        )
    except (ValueError, ConfigError) as exc:
        raise InputError(str(exc)) from exc
    trainer = Trainer(config, command="ndr-train " + " ".join(sys.argv[1:]))
    trainer.fit(progress=not quiet)
    if trainer.dist.main and trainer.last_eval is not None:
        click.echo(trainer.last_eval.table())


if __name__ == "__main__":
    main()
