"""ndr-eval: PSNR/SSIM per degradation with the published protocol, beside classical methods."""

from __future__ import annotations

import click

from ndr_edge.cli.common import bundled_checkpoint, check_output_file, one_line_errors

EXAMPLES = """
\b
Examples:
  # the bundled model on the held-out photos and dead-leaves images, every degradation
  ndr-eval
  # ... beside BM3D, non-local means, the dark-channel prior, bicubic and a median filter
  ndr-eval --baselines
  # does the NDR tell degradations apart? probe accuracy and a confusion-matrix PNG
  ndr-eval --ndr out/ndr-confusion.png
  # the authors' checkpoint on Rain100L, results as JSON
  ndr-eval NDR-Restore.pth --data Rain100L/ --layout rain100l --json rain100l.json
  # your clean photos with synthesised noise at sigma 25 and haze
  ndr-eval model.safetensors --data ~/photos --degradations noise25,haze
"""

DEFAULT_DEGRADATIONS = "noise15,noise25,noise50,rain,haze,lowres2,lowres4,mix,clean"
PROBE_DEGRADATIONS = ("noise15", "noise25", "noise50", "rain", "haze", "lowres2", "lowres4")
PROCEDURAL_EVAL_SEED = 3000  # dead-leaves images of the evaluation set (training uses other seeds)


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("checkpoint", type=click.Path(dir_okay=False), required=False)
@click.option("--data", type=click.Path(file_okay=False),
              help="Clean folder (synthesised) or paired folder. Default: the 8 held-out scikit-image photos "
                   "(2 colour, 6 greyscale) and --procedural dead-leaves images.")
@click.option("--layout", type=click.Choice(["clean", "auto", "rain100l", "sots", "pairs"]), default="clean", show_default=True,
              help="clean: synthesise degradations; others: real degraded/clean pairs.")
@click.option("--degradations", default=DEFAULT_DEGRADATIONS, show_default=True)
@click.option("--procedural", default=4, show_default=True, type=click.IntRange(0),
              help="Held-out dead-leaves images added to the default set.")
@click.option("--max-side", default=256, show_default=True, type=click.IntRange(0), help="Centre-crop synthetic images (0: full size).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--baselines", is_flag=True, help="Also score classical methods per degradation (needs bm3d, OpenCV).")
@click.option("--ndr", "ndr_png", type=click.Path(dir_okay=False),
              help="Probe how well the DQ weights over the NDR identify the degradation; confusion matrix to this PNG.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the scores as JSON (atomically).")
@click.option("--threads", type=click.IntRange(1), help="torch CPU threads (default: torch's choice).")
@click.option("--quiet", is_flag=True)
@one_line_errors("ndr-eval")
def main(checkpoint: str | None, data: str | None, layout: str, degradations: str, procedural: int, max_side: int,
         seed: int, baselines: bool, ndr_png: str | None, json_out: str | None, threads: int | None, quiet: bool) -> None:
    """Evaluate CHECKPOINT (ours or the authors' layout; default: the bundled ndr-edge-xs
    model): reflect-pad to a multiple of 8, restore, crop back; PSNR and SSIM on all channels
    on [0, 1]; the degraded input's scores alongside, so the gain is visible, and the time
    per frame. --baselines adds classical methods on the same frames."""
    from ndr_edge.degradations import parse_names

    names = parse_names(degradations)
    for path, what in ((json_out, "JSON"), (ndr_png, "confusion-matrix PNG")):
        if path:
            check_output_file(path, what)
    if baselines:
        from ndr_edge.baselines import require_baselines

        require_baselines()

    from ndr_edge.baselines import baselines_for
    from ndr_edge.checkpoint import load_checkpoint
    from ndr_edge.data import EvalSample, PairedFolder, load_clean_folder, synthetic_eval_set
    from ndr_edge.data.procedural import dead_leaves_set
    from ndr_edge.evaluate import evaluate, evaluate_images, torch_runner
    from ndr_edge.imageio import demo_images

    loaded = load_checkpoint(checkpoint or bundled_checkpoint())
    if data and layout != "clean":
        pairs = PairedFolder(data, layout=layout)
        samples = [EvalSample("real", item["name"], item["lq"], item["gt"]) for item in pairs]
        images = []
    else:
        images = load_clean_folder(data) if data else demo_images("eval") + dead_leaves_set(
            procedural, max_side or 256, PROCEDURAL_EVAL_SEED)
        samples = synthetic_eval_set(images, names, seed=seed, max_side=max_side or None)
    net = loaded.model.restoration_net
    result = evaluate(torch_runner(net, threads), samples, loaded.channel_order, progress=not quiet, total=len(samples))
    click.echo(f"{loaded.path.name} on {len(samples)} frames ({len(images) or len(samples)} images)")
    click.echo(result.table())
    payload: dict = {"checkpoint": str(loaded.path), "sha256": loaded.sha256, "preset": loaded.preset,
                     "data": data or "demo:eval + dead leaves", "layout": layout, "seed": seed}
    if baselines:
        rows = [("network", name, score) for name, score in result.scores.items()]
        payload["baselines"] = {}
        for name in result.scores:
            group = [s for s in samples if s.degradation == name]
            for base in baselines_for(name):
                scored = evaluate_images(base.method, group, progress=not quiet, desc=base.name).scores[name]
                rows.append((base.name, name, scored))
                payload["baselines"].setdefault(base.name, {})[name] = {"psnr": scored.psnr, "ssim": scored.ssim,
                                                                        "gain_db": scored.gain_db,
                                                                        "ms_per_image": scored.ms_per_image}
        click.echo("")
        click.echo(_comparison_table(rows))
    if ndr_png:
        from ndr_edge.ndr_probe import plot_confusion, probe

        fit = synthetic_eval_set(demo_images("train"), PROBE_DEGRADATIONS, seed=seed + 1, max_side=max_side or 256)
        test = [s for s in samples if s.degradation in PROBE_DEGRADATIONS] or synthetic_eval_set(
            images, PROBE_DEGRADATIONS, seed=seed, max_side=max_side or None)
        found = probe(net, fit, test, loaded.channel_order)
        plot_confusion(found, ndr_png)
        click.echo("")
        click.echo(found.table())
        click.echo(f"confusion matrix: {ndr_png}")
        payload["ndr_probe"] = found.to_dict()
    if json_out:
        result.write_json(json_out, payload)


def _comparison_table(rows: list) -> str:
    from ndr_edge.evaluate import fmt_db

    by_degradation: dict[str, list] = {}
    for method, name, score in rows:
        by_degradation.setdefault(name, []).append((method, score))
    lines = [f"{'degradation':<12} {'method':<9} {'PSNR in':>8} {'PSNR out':>9} {'gain dB':>8} {'SSIM out':>9} {'ms/frame':>9}"]
    for name, entries in by_degradation.items():
        for method, s in entries:
            lines.append(f"{name:<12} {method:<9} {fmt_db(s.psnr_input):>8} {fmt_db(s.psnr):>9} {fmt_db(s.gain_db, '+'):>8} {s.ssim:>9.4f} "
                         f"{s.ms_per_image:>9.1f}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
