"""ndr-eval: PSNR/SSIM per degradation with the published protocol."""

from __future__ import annotations

import click

from .common import bundled_checkpoint, one_line_errors

EXAMPLES = """
\b
Examples:
  # the bundled model on the held-out demo photos, every standard degradation
  ndr-eval ndr_edge/assets/ndr-edge-xs-demo.safetensors
  # the authors' checkpoint on Rain100L, results as JSON
  ndr-eval NDR-Restore.pth --data Rain100L/ --layout rain100l --json rain100l.json
  # your clean photos with synthesised noise at sigma 25 and haze
  ndr-eval model.safetensors --data ~/photos --degradations noise25,haze
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("checkpoint", type=click.Path(dir_okay=False), required=False)
@click.option("--data", type=click.Path(file_okay=False), help="Clean folder (synthesised) or paired folder. Default: demo held-out photos.")
@click.option("--layout", type=click.Choice(["clean", "auto", "rain100l", "sots", "pairs"]), default="clean", show_default=True,
              help="clean: synthesise degradations; others: real degraded/clean pairs.")
@click.option("--degradations", default="noise15,noise25,noise50,rain,haze,lowres4,mix", show_default=True)
@click.option("--max-side", default=256, show_default=True, type=click.IntRange(0), help="Centre-crop synthetic images (0: full size).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the scores as JSON (atomically).")
@click.option("--quiet", is_flag=True)
@one_line_errors("ndr-eval")
def main(checkpoint: str | None, data: str | None, layout: str, degradations: str, max_side: int, seed: int,
         json_out: str | None, quiet: bool) -> None:
    """Evaluate CHECKPOINT (ours or the authors' layout; default: the bundled ndr-edge-xs
    demo model): reflect-pad to a multiple of 8,
    restore, crop back; PSNR and SSIM on all channels on [0, 1]; the degraded input's
    scores alongside, so the gain is visible."""
    from ..checkpoint import load_checkpoint
    from ..data import EvalSample, PairedFolder, load_clean_folder, synthetic_eval_set
    from ..degradations import parse_names
    from ..evaluate import evaluate, torch_runner
    from ..imageio import demo_images

    loaded = load_checkpoint(checkpoint or bundled_checkpoint())
    if data and layout != "clean":
        pairs = PairedFolder(data, layout=layout)
        samples = [EvalSample("real", item["name"], item["lq"], item["gt"]) for item in pairs]
    else:
        images = load_clean_folder(data) if data else demo_images("heldout")
        samples = synthetic_eval_set(images, parse_names(degradations), seed=seed, max_side=max_side or None)
    result = evaluate(torch_runner(loaded.model.restoration_net), samples, loaded.channel_order, progress=not quiet,
                      total=len(samples))
    click.echo(result.table())
    if json_out:
        result.write_json(json_out, {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "preset": loaded.preset,
                                     "data": data or "demo:heldout", "layout": layout, "seed": seed})


if __name__ == "__main__":
    main()
