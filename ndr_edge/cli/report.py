"""ndr-report: measure every variant of an export and write report.json, report.md and figures."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ndr_edge.cli.common import one_line_errors
from ndr_edge.degradations import EVAL_NAMES

EXAMPLES = """
\b
Examples:
  # every variant of an export: held-out demo photos, every degradation, 256x256, batch 1 and 4
  ndr-export ndr_edge/assets/ndr-edge-xs-demo.safetensors -o out/xs
  ndr-report out/xs
\b
  # mark the best artifact per degradation within 40 ms a frame, at two sizes, into report/
  ndr-report out/xs --budget-ms 40 --size 256x256 --size 720x1280 --batch 1,8 --out report/
\b
  # your clean photos with synthesised noise and haze, 4 threads, only the FP16 and INT8 files
  ndr-report out/xs --data ~/photos --degradations noise25,haze --threads 4 \\
      --variants onnx-fp16,onnx-int8
\b
  # real pairs (Rain100L), full size
  ndr-report out/xs --data Rain100L/ --layout rain100l --max-side 0
\b
Writes report.json (for scripts), report.md (tables), accuracy_latency.png (PSNR against
latency, Pareto front) and samples.png (degraded | each variant | clean) into OUTDIR or --out.
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--data", type=click.Path(file_okay=False), help="Clean folder (synthesised) or paired folder. Default: demo held-out photos.")
@click.option("--layout", type=click.Choice(["clean", "auto", "rain100l", "sots", "pairs"]), default="clean", show_default=True,
              help="clean: synthesise degradations; others: real degraded/clean pairs.")
@click.option("--degradations", default=",".join(EVAL_NAMES), show_default=True, help="Degradations to synthesise.")
@click.option("--images", type=click.IntRange(1), help="Use only the first N images. [default: all]")
@click.option("--max-side", default=128, show_default=True, type=click.IntRange(0),
              help="Centre-crop evaluation images (0: full size).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0))
@click.option("--size", "sizes", multiple=True, help="Latency input size HxW; repeat for more. [default: 256x256]")
@click.option("--batch", "batches", default="1,4", show_default=True, help="Latency batch sizes.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(0), help="Untimed calls before timing.")
@click.option("--repeats", default=10, show_default=True, type=click.IntRange(1), help="Timed calls per size and batch.")
@click.option("--budget-ms", type=float, help="Latency budget per frame: the best artifact per degradation within it is marked.")
@click.option("--stream-fps", default=30.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Camera frame rate: the report says how many such streams the throughput restores.")
@click.option("--threads", type=click.IntRange(1), help="Intra-op threads for ONNX Runtime and PyTorch. [default: theirs]")
@click.option("--variants", help="Manifest variants to measure, e.g. onnx-fp16,onnx-int8. [default: all]")
@click.option("--no-reference", is_flag=True, help="Do not measure the PyTorch checkpoint (fidelity is then against onnx-fp32).")
@click.option("--device", default=0, show_default=True, type=click.IntRange(0), help="CUDA device for TensorRT engines.")
@click.option("--timeout-s", default=1800.0, show_default=True, type=float, help="Give up on a variant's latency run after this.")
@click.option("--out", type=click.Path(file_okay=False), help="Where to write the report. [default: OUTDIR]")
@click.option("--quiet", is_flag=True, help="No progress display.")
@one_line_errors("ndr-report")
def main(outdir: str, data: str | None, layout: str, degradations: str, images: int | None, max_side: int, seed: int,
         sizes: tuple[str, ...], batches: str, warmup: int, repeats: int, budget_ms: float | None, stream_fps: float,
         threads: int | None,
         variants: str | None, no_reference: bool, device: int, timeout_s: float, out: str | None, quiet: bool) -> None:
    """Measure every variant of the export in OUTDIR (its manifest.json) on the same images and
    inputs: PSNR/SSIM per degradation with the published protocol and the loss against PyTorch
    FP32, fidelity to PyTorch, latency (median/p90 per frame after warm-up), throughput, peak
    memory and file size. A variant that cannot run is reported with the reason."""
    from ndr_edge.degradations import parse_names
    from ndr_edge.report import ReportConfig, parse_batches, parse_size, run_report

    config = ReportConfig(
        degradations=parse_names(degradations), data=Path(data).expanduser() if data else None, layout=layout,
        images=images, seed=seed, max_side=max_side or None,
        sizes=tuple(parse_size(s) for s in sizes) or ((256, 256),), batches=parse_batches(batches),
        warmup=warmup, repeats=repeats, budget_ms=budget_ms, stream_fps=stream_fps, threads=threads,
        variants=tuple(v.strip() for v in variants.split(",") if v.strip()) if variants else None,
        reference=not no_reference, out=Path(out).expanduser() if out else None, device=device,
        worker_timeout_s=timeout_s, extra={"command": shlex.join(["ndr-report", *sys.argv[1:]])},
    )
    path = run_report(Path(outdir), config=config, progress=not quiet)
    click.echo(summary(path))
    click.echo(f"report: {path} (and {path.with_name('report.md').name}, accuracy_latency.png, samples.png)")


def summary(report_json: Path) -> str:
    """One line per variant from report.json."""
    import json

    payload = json.loads(report_json.read_text())
    stream_fps = payload.get("config", {}).get("stream_fps", 30.0)
    header = (f"{'variant':<14} {'status':<8} {'latency ms':>10} {'frames/s':>8} {f'{stream_fps:g}-FPS streams':>15} "
              f"{'mean PSNR':>9} {'fidelity dB':>11}  note")
    lines = [header]
    for v in payload["variants"]:
        psnr = [x for x in v["psnr"].values() if isinstance(x, (int, float))]
        latency = f"{v['latency_ms']['median']:.1f}" if v["latency_ms"] else "-"
        fidelity = "ref." if v["reference"] else (
            f"{v['fidelity_psnr_db']:.2f}" if isinstance(v["fidelity_psnr_db"], (int, float))
            else str(v["fidelity_psnr_db"] or "-"))
        mean = f"{sum(psnr) / len(psnr):.2f}" if psnr else "-"
        fps = f"{v['throughput_fps']:.2f}" if v.get("throughput_fps") else "-"
        streams = f"{v['streams']:.2f}" if v.get("streams") else "-"
        lines.append(f"{v['name']:<14} {v['status']:<8} {latency:>10} {fps:>8} {streams:>15} {mean:>9} {fidelity:>11}  "
                     f"{v['reason'] or ''}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
