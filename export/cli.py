"""ndr-export: a checkpoint in, every deployable artifact out, each verified, with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ndr_edge.cli.common import bundled_checkpoint, one_line_errors
from ndr_edge.errors import InputError
from ndr_edge.export import variants as table

EXAMPLES = """
\b
Examples:
  # everything this machine can make: ONNX FP32/FP16/INT8 (+ TensorRT engines on a GPU)
  ndr-export ndr_edge/assets/ndr-edge-xs-demo.safetensors -o out/xs
\b
  # the authors' checkpoint, FP16 only, engines for 1-4 frames from 256x256 to 1080p
  ndr-export NDR-Restore.pth -o out/ndr --precision fp16 --engine \\
      --min 1x3x256x256 --opt 1x3x720x1280 --max 4x3x1088x1920 \\
      --workspace-mb 4096 --timing-cache ~/.cache/ndr-edge/trt.cache
\b
  # INT8 calibrated on your own set (ndr-calib build), no engines, then the report
  ndr-export model.safetensors -o out/int8 --precision int8 --calibration calib/ \\
      --no-engine --report
\b
Writes into OUTDIR: model-fp32.onnx, model-fp16.onnx, model-int8.onnx, model-fp16.engine
(+ .engine.json sidecar), model-int8.engine, timing.cache, and manifest.json (last).
"""


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    sizes = []
    for item in text.split(","):
        parts = item.strip().lower().split("x")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise InputError(f"--verify-sizes {text!r}: write sizes as HxW,HxW, e.g. 64x96,128x128")
        sizes.append((int(parts[0]), int(parts[1])))
    return tuple(sizes)


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("checkpoint", type=click.Path(dir_okay=False), required=False)
@click.option("-o", "--output", "outdir", default="out/export", show_default=True, type=click.Path(),
              help="Export folder (created; files replaced).")
@click.option("--precision", default=",".join(table.PRECISIONS), show_default=True,
              help="Variants to make (FP32 is always made: the others derive from it).")
@click.option("--engine/--no-engine", "engine", default=None,
              help="Build TensorRT engines (fail if TensorRT/GPU are absent) / never. Default: where possible.")
@click.option("--min", "min_shape", default="1x3x64x64", show_default=True, help="Engine profile: smallest NxCxHxW.")
@click.option("--opt", "opt_shape", default=None, help="Engine profile: the shape tuned for. [default: 1x3x256x256]")
@click.option("--max", "max_shape", default="4x3x1024x1024", show_default=True, help="Engine profile: largest NxCxHxW.")
@click.option("--workspace-mb", default=table.DEFAULT_WORKSPACE_MB, show_default=True, type=int, help="TensorRT builder workspace limit.")
@click.option("--timing-cache", type=click.Path(dir_okay=False), help="TensorRT timing cache to reuse. [default: OUTDIR/timing.cache]")
@click.option("--tensorrt-target", default="10.3", show_default=True,
              help="Oldest TensorRT release the graphs must parse on (10.3: JetPack 6); operators and opsets "
                   "it lacks fail the operator check.")
@click.option("--calibration", type=click.Path(), help="INT8 calibration set (ndr-calib build). Default: demo recipe.")
@click.option("--speed-passes/--no-speed-passes", default=True, show_default=True,
              help="Rewrite the FP32 graph for ONNX Runtime's CPU kernels (export/graph_speed.py: fused "
                   "LayerNormalization, static reshapes, ...), kept only if it still matches PyTorch within 1e-4; "
                   "every variant is built on it.")
@click.option("--int8-method", type=click.Choice(table.INT8_METHODS), default=table.DEFAULT_INT8_METHOD, show_default=True)
@click.option("--int8-budget-db", default=str(table.DEFAULT_BUDGET_DB), show_default=True,
              help="Largest PSNR loss vs FP32 on any degradation; worse layers stay in float ('none': quantise all).")
@click.option("--int8-quantize-depthwise", is_flag=True,
              help="Give depthwise convolutions Q/DQ too (TensorRT has INT8 depthwise kernels). Default: they "
                   "stay in float, since ONNX Runtime's x86 kernels have none and they cost PSNR.")
@click.option("--fp16-converter", default=",".join(table.FP16_CONVERTERS), show_default=True,
              help="FP16 converters to try; the best PSNR against FP32 is kept.")
@click.option("--verify-sizes", default=None,
              help="Verification crop sizes, HxW,HxW (two or more). [default: 64x96,128x128, or fitted to the profile]")
@click.option("--exporter", type=click.Choice(table.ONNX_EXPORTERS), default="auto", show_default=True)
@click.option("--opset", default=table.DEFAULT_OPSET, show_default=True, type=int)
@click.option("--triton", is_flag=True,
              help="Also write OUTDIR/triton: a Triton model repository of the artifacts (as ndr-triton-repo).")
@click.option("--report", is_flag=True, help="Also write the deployment report (ndr_edge.report) into OUTDIR.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@one_line_errors("ndr-export")
def main(checkpoint: str | None, outdir: str, precision: str, engine: bool | None, min_shape: str, opt_shape: str | None,
         max_shape: str, workspace_mb: int, timing_cache: str | None, tensorrt_target: str, calibration: str | None, speed_passes: bool, int8_method: str,
         int8_budget_db: str, int8_quantize_depthwise: bool, fp16_converter: str, verify_sizes: str | None,
         exporter: str, opset: int, triton: bool, report: bool, quiet: bool) -> None:
    """Export CHECKPOINT (this project's .safetensors or the authors' .pth; default: the
    bundled ndr-edge-xs demo model) to OUTDIR: the
    restoration network as ONNX (FP32, verified against PyTorch; FP16; INT8) and TensorRT
    engines, each verified on degraded real images, listed in OUTDIR/manifest.json."""
    from ndr_edge.export.onnx_export import OnnxExportOptions
    from ndr_edge.export.pipeline import ExportConfig, Exporter, preflight
    from ndr_edge.export.profiles import Profile
    from ndr_edge.export.variants import parse_precisions

    converters = tuple(c.strip() for c in fp16_converter.split(",") if c.strip())
    config = ExportConfig(
        precisions=parse_precisions(precision),
        engines={None: "auto", True: "require", False: "off"}[engine],
        profiles=(Profile.parse(min_shape, opt_shape, max_shape),),
        workspace_mb=workspace_mb,
        timing_cache=Path(timing_cache).expanduser() if timing_cache else None,
        tensorrt_target=tensorrt_target,
        speed_passes=speed_passes,
        calibration=Path(calibration) if calibration else None,
        int8_method=int8_method,
        int8_budget_db=table.parse_budget(int8_budget_db, "--int8-budget-db"),
        int8_options={"float_depthwise": False} if int8_quantize_depthwise else {},
        fp16_converters=converters,
        verify_sizes=_sizes(verify_sizes) if verify_sizes else None,
        onnx=OnnxExportOptions(opset=opset, exporter=exporter),
        progress=not quiet,
    ).check()
    preflight(outdir, config)  # bad OUTDIR / missing TensorRT fail before the checkpoint is read
    if triton:  # the configs are validated with tritonclient: say it is missing before the export runs
        from ndr_edge.runtime.triton_repo import require_model_config

        require_model_config()

    from ndr_edge.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint or bundled_checkpoint())
    manifest = Exporter(loaded, outdir, config).run()
    click.echo(summary_table(manifest.to_dict()))
    skipped = {name: s.get("reason", "") for name, s in manifest.stages.items() if s["status"] == "skipped"}
    if "engines" in skipped and engine is None and quiet:  # with progress, the stage line already said it
        click.echo(f"engines skipped: {skipped['engines']}")
    click.echo(f"manifest: {Path(outdir) / 'manifest.json'}")
    if triton:
        from ndr_edge.runtime.triton_repo import docker_command, write_repository

        repo = write_repository(outdir)
        click.echo(f"triton: {repo.summary()}")
        click.echo(f"triton: serve it with: {docker_command(repo.path)}")
    if report:
        _write_report(Path(outdir), progress=not quiet)


def summary_table(manifest: dict[str, Any]) -> str:
    """One line per artifact: what it is and how it was verified."""
    from ndr_edge.export.compare import format_db as _db

    lines = [f"{'artifact':<12} {'precision':<9} {'file':<20} {'verification'}"]
    for entry in manifest["artifacts"]:
        v = entry["verification"]
        if "vs_torch_max_abs" in v:
            check = f"max abs {v['vs_torch_max_abs']:.2e} vs PyTorch"
        elif "vs_fp32_onnx_psnr_db" in v:
            check = f"{_db(v['vs_fp32_onnx_psnr_db'])} vs FP32 ONNX, {_db(v['vs_same_onnx_psnr_db'])} vs its ONNX"
        else:
            check = f"{_db(v.get('vs_fp32_psnr_db'))} vs FP32 (max abs {v.get('vs_fp32_max_abs', float('nan')):.2e})"
        lines.append(f"{entry['name']:<12} {entry['precision']:<9} {entry['path']:<20} {check}")
    return "\n".join(lines)


def _write_report(outdir: Path, progress: bool) -> None:
    try:
        from ndr_edge import report as report_module
    except ImportError:
        click.echo("ndr-export: --report: ndr_edge.report is not available in this install; run ndr-report later",
                   err=True)
        return
    writer = getattr(report_module, "write_report", None)
    if writer is None:
        click.echo("ndr-export: --report: ndr_edge.report has no write_report(); run ndr-report OUTDIR", err=True)
        return
    path = writer(outdir, progress=progress)
    click.echo(f"report: {path}")


if __name__ == "__main__":
    main()
