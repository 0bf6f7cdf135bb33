"""ndr-calib: build calibration sets, compare calibration methods by restored PSNR, find the
layers INT8 hurts most, and write a quality-aware INT8 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ndr_edge.cli.common import one_line_errors
from ndr_edge.export import variants as table

PROG = "ndr-calib"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXAMPLES = """
\b
Examples:
  # the default recipe on the built-in demo photos
  ndr-calib build -o calib/
  # your own clean photos, more rain, 256 crops of 128x128
  ndr-calib build ~/photos -o calib/ --recipe noise=0.3,rain=0.4,haze=0.2,clean=0.1 --samples 256 --crop 128
  # real degraded frames from the deployment camera, used as they are
  ndr-calib build ~/camera/frames -o calib-real/ --real
  # calibration methods compared by PSNR lost per degradation, and CPU latency
  ndr-calib compare model.onnx --set calib/
  # which layers cost the most PSNR in INT8
  ndr-calib sensitivity model.onnx --set calib/
  # an INT8 model within 0.3 dB (the default budget) of FP32 on every degradation
  ndr-calib quantize model.onnx -o model-int8.onnx --set calib/ --budget 0.3
  # the same for a TensorRT target: depthwise convolutions in INT8 as well
  ndr-calib quantize model.onnx -o model-int8.onnx --set calib/ --quantize-depthwise
  # how much each placement costs: every op ONNX Runtime can quantise vs the default Conv,MatMul
  ndr-calib compare model.onnx --set calib/ --methods entropy --op-types all
"""


@click.group(epilog=EXAMPLES, context_settings=CONTEXT)
def main() -> None:
    """Calibration sets and quality-aware INT8 for NDR-Restore ONNX models."""


def _eval_options(func: Any) -> Any:
    options = [
        click.option("--eval-data", type=click.Path(file_okay=False),
                     help="Folder of clean held-out images to degrade for scoring. Default: the demo held-out photos."),
        click.option("--degradations", default=None,
                     help="Degradations scored (comma-separated). Default: noise15,noise25,noise50,rain,haze,lowres4,mix."),
        click.option("--eval-max-side", default=128, show_default=True, type=click.IntRange(8),
                     help="Side of the square evaluation crops."),
        click.option("--eval-crops", default=4, show_default=True, type=click.IntRange(1),
                     help="Crops per evaluation image, spread over it (1: the centre crop). Two random "
                          "mixes do not sample 'mix': the default scores 8 per degradation."),
        click.option("--threads", type=click.IntRange(1), help="ONNX Runtime CPU threads. Default: all cores."),
        click.option("--latency-size", default=256, show_default=True, type=click.IntRange(0),
                     help="Square input for the CPU latency measurement (0: skip it)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _quant_options(func: Any) -> Any:
    options = [
        click.option("--activations", type=click.Choice(table.INT8_ACTIVATIONS), default=table.INT8_ACTIVATIONS[0], show_default=True,
                     help="int8: symmetric (TensorRT needs it); uint8: asymmetric (ONNX Runtime CPU only)."),
        click.option("--op-types", default=",".join(table.DEFAULT_INT8_OP_TYPES), show_default=True,
                     help="Op types given Q/DQ (comma-separated), or 'all' for every op ONNX Runtime can quantise "
                          "(more integer coverage, much lower PSNR on this network)."),
        click.option("--float-depthwise/--quantize-depthwise", default=True, show_default=True,
                     help="Keep depthwise convolutions in float (ONNX Runtime's x86 kernels have no fused "
                          "signed-INT8 depthwise convolution; they cost PSNR too)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _op_types(text: str) -> tuple[str, ...] | None:
    """``--op-types``: None for 'all', else the named op types, each one ONNX Runtime can quantise."""
    from ndr_edge.errors import InputError

    if text.strip().lower() == "all":
        return None
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    unknown = [n for n in names if n not in QDQRegistry and n not in QLinearOpsRegistry]
    if unknown or not names:
        raise InputError(f"--op-types {text!r}: {', '.join(unknown) or 'no op type given'}; give op types ONNX "
                         f"Runtime can quantise (e.g. Conv,MatMul) or 'all'")
    return names


def _eval_set(eval_data: str | None, degradations: str | None, max_side: int, crops: int) -> list[Any]:
    from ndr_edge.calibration.evaluate import default_eval_set
    from ndr_edge.data import load_clean_folder, spread_crops, synthetic_eval_set
    from ndr_edge.degradations import EVAL_NAMES, parse_names

    names = parse_names(degradations) if degradations else EVAL_NAMES
    if eval_data:
        images = spread_crops(load_clean_folder(eval_data), max_side, crops)
        return synthetic_eval_set(images, names, seed=0, max_side=max_side)
    return default_eval_set(max_side=max_side, degradations=names, crops=crops)


def _open_set(set_dir: str | None, tmp: Path, quiet: bool) -> Any:
    from ndr_edge.calibration.int8 import open_or_build_set

    return open_or_build_set(set_dir, tmp, progress=not quiet)


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        from ndr_edge.artifact import atomic_write_json

        atomic_write_json(path, payload)


def _latency_shape(size: int) -> tuple[int, int, int, int] | None:
    if size == 0:
        return None
    if size % 8:
        from ndr_edge.errors import InputError

        raise InputError(f"--latency-size {size} must be a multiple of 8")
    return (1, 3, size, size)


@main.command(epilog=EXAMPLES, context_settings=CONTEXT)
@click.argument("folders", nargs=-1, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(), help="Folder to create for the set.")
@click.option("--recipe", default=None,
              help="Degradation mix, NAME=RATIO,... summing to 1 (names: clean and the synthetic degradations). "
                   "Default: clean=0.1,noise=0.25,rain=0.2,haze=0.2,lowres=0.1,mix=0.15.")
@click.option("--samples", default=64, show_default=True, type=int, help="Number of crops.")
@click.option("--crop", default=96, show_default=True, type=int, help="Crop size (a multiple of 8).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--shard-size", default=16, show_default=True, type=int, help="Crops per shard file.")
@click.option("--real", is_flag=True, help="FOLDERS hold real degraded frames: crop them, do not degrade.")
@click.option("--overwrite", is_flag=True, help="Replace an existing set at --output.")
@click.option("--quiet", is_flag=True)
@one_line_errors(PROG)
def build(folders: tuple[str, ...], output: str, recipe: str | None, samples: int, crop: int, seed: int,
          shard_size: int, real: bool, overwrite: bool, quiet: bool) -> None:
    """Build a calibration set from FOLDERS of clean images (default: the built-in demo photos)."""
    from ndr_edge.calibration.build import build_set
    from ndr_edge.calibration.recipe import CalibrationRecipe

    fields: dict[str, Any] = {"samples": samples, "crop": crop, "seed": seed, "shard_size": shard_size}
    if real:
        if recipe:
            raise click.UsageError("--real takes the frames as they are; drop --recipe")
        spec = CalibrationRecipe.real(**fields)
    elif recipe:
        spec = CalibrationRecipe.from_string(recipe, **fields)
    else:
        spec = CalibrationRecipe(**fields)
    calib = build_set(list(folders) or None, spec, output, overwrite=overwrite, progress=not quiet)
    click.echo(calib.describe())


@main.command(context_settings=CONTEXT)
@click.argument("set_dir", type=click.Path())
@click.option("--verify", is_flag=True, help="Check every shard's hash, shape and type now.")
@one_line_errors(PROG)
def info(set_dir: str, verify: bool) -> None:
    """Describe a calibration set (and verify it with --verify)."""
    from ndr_edge.calibration.reader import CalibrationSet

    calib = CalibrationSet.open(set_dir)
    if verify:
        calib.verify_all()
    click.echo(calib.describe() + (" -- verified" if verify else ""))


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--set", "set_dir", type=click.Path(), help="Calibration set folder. Default: build the default recipe.")
@click.option("--methods", default=",".join(table.INT8_METHODS), show_default=True)
@_quant_options
@click.option("--samples", "max_samples", type=click.IntRange(1), help="Use only the first N crops of the set.")
@click.option("--modelopt/--no-modelopt", default=None,
              help="Also quantise with NVIDIA ModelOpt (entropy, max). Default: when it is installed.")
@_eval_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the comparison as JSON.")
@click.option("--markdown", is_flag=True, help="Print the table as markdown.")
@click.option("--quiet", is_flag=True)
@one_line_errors(PROG)
def compare(model: str, set_dir: str | None, methods: str, activations: str, op_types: str, float_depthwise: bool,
            max_samples: int | None,
            modelopt: bool | None, eval_data: str | None, degradations: str | None, eval_max_side: int, eval_crops: int, threads: int | None,
            latency_size: int, json_out: str | None, markdown: bool, quiet: bool) -> None:
    """Compare calibration methods on MODEL (FP32 ONNX) by restored PSNR lost per degradation."""
    import tempfile

    from ndr_edge.calibration.compare import compare_methods
    from ndr_edge.errors import InputError

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in table.INT8_METHODS]
    if unknown or not chosen:
        raise InputError(f"--methods: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(table.INT8_METHODS)}")
    from ndr_edge.calibration.modelopt_backend import MODELOPT_METHODS, modelopt_backend, modelopt_status

    available, why = modelopt_status()
    if modelopt and not available:
        from ndr_edge.errors import BackendUnavailableError

        raise BackendUnavailableError(f"--modelopt: {why}")
    extra = {}
    if modelopt or (modelopt is None and available):
        extra = {f"modelopt-{m}": modelopt_backend(m, max_samples) for m in MODELOPT_METHODS}
    samples = _eval_set(eval_data, degradations, eval_max_side, eval_crops)
    with tempfile.TemporaryDirectory(prefix="ndr-calib-") as tmp:
        calib = _open_set(set_dir, Path(tmp), quiet)
        result = compare_methods(model, calib, methods=chosen, eval_set=samples, activations=activations,
                                 op_types=_op_types(op_types), float_depthwise=float_depthwise,
                                 max_samples=max_samples, latency_shape=_latency_shape(latency_size),
                                 threads=threads, extra_backends=extra, progress=not quiet)
    click.echo(result.table(markdown))
    click.echo(f"best: {result.best.method} (worst-degradation loss {result.best.worst_db:+.3f} dB)")
    _write_json(json_out, {"model": model, **result.to_dict()})


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--set", "set_dir", type=click.Path(), help="Calibration set folder. Default: build the default recipe.")
@click.option("--method", type=click.Choice(table.INT8_METHODS), default=table.DEFAULT_INT8_METHOD, show_default=True)
@_quant_options
@click.option("--max-groups", default=32, show_default=True, type=click.IntRange(1),
              help="Layers are grouped by module until at most this many groups remain.")
@click.option("--samples", "max_samples", type=click.IntRange(1), help="Use only the first N crops of the set.")
@_eval_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False))
@click.option("--quiet", is_flag=True)
@one_line_errors(PROG)
def sensitivity(model: str, set_dir: str | None, method: str, activations: str, op_types: str, float_depthwise: bool,
                max_groups: int,
                max_samples: int | None, eval_data: str | None, degradations: str | None, eval_max_side: int, eval_crops: int,
                threads: int | None, latency_size: int, json_out: str | None, quiet: bool) -> None:
    """Per layer group: the PSNR lost per degradation when only that group stays in float."""
    import tempfile

    from ndr_edge.calibration.compare import format_table
    from ndr_edge.calibration.quantize import Quantizer, QuantSettings
    from ndr_edge.calibration.sensitivity import SensitivityRunner, worst

    del latency_size  # the sensitivity table is about quality; `quantize` measures latency
    samples = _eval_set(eval_data, degradations, eval_max_side, eval_crops)
    with tempfile.TemporaryDirectory(prefix="ndr-calib-") as tmp:
        calib = _open_set(set_dir, Path(tmp), quiet)
        settings = QuantSettings(method=method, activations=activations, op_types=_op_types(op_types),
                                 float_depthwise=float_depthwise, max_samples=max_samples)
        quantizer = Quantizer(model, calib, settings, Path(tmp) / "work", progress=not quiet)
        runner = SensitivityRunner(quantizer, samples, max_groups=max_groups, threads=threads, progress=not quiet)
        full = runner.loss([])
        rows = runner.sensitivity()
    names = list(full)
    head = ["layers kept in float", "nodes", *[f"{n} dB" for n in names], "worst dB", "recovers dB"]
    table = [["(none: all INT8)", "0", *[f"{full[n]:+.3f}" for n in names], f"{worst(full):+.3f}", ""]]
    table += [[r.group, str(r.nodes), *[f"{r.loss_db[n]:+.3f}" for n in names], f"{worst(r.loss_db):+.3f}",
               f"{r.recovers_db:+.3f}"] for r in rows]
    click.echo(format_table(head, table))
    _write_json(json_out, {"model": model, "method": method, "full_int8_loss_db": full,
                           "psnr_fp32": runner.reference.psnr, "groups": [r.to_dict() for r in rows]})


@main.command(context_settings=CONTEXT)
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="INT8 ONNX file to write.")
@click.option("--set", "set_dir", type=click.Path(), help="Calibration set folder. Default: build the default recipe.")
@click.option("--method", type=click.Choice(table.INT8_METHODS), default=table.DEFAULT_INT8_METHOD, show_default=True)
@click.option("--budget", default=str(table.DEFAULT_BUDGET_DB), show_default=True,
              help="Largest PSNR loss (dB) against FP32 allowed on any degradation; 'none' quantises every layer.")
@_quant_options
@click.option("--float-act-matmul/--quantize-act-matmul", default=True, show_default=True,
              help="Keep MatMuls of two activations (attention q.k^T) in float: without VNNI their INT8 sums "
                   "overflow, and OpenVINO then disagrees with ONNX Runtime.")
@click.option("--float-after-concat/--quantize-after-concat", default=True, show_default=True,
              help="Keep Convs fed by a Concat (the decoder's skip joins) in float: OpenVINO reads the Q/DQ of a "
                   "Concat output differently from ONNX Runtime.")
@click.option("--float-side-inputs/--quantize-side-inputs", default=True, show_default=True,
              help="Only Conv/MatMul read a tensor through its Q/DQ; layer norms and residual adds beside "
                   "them read the float tensor (TensorRT's placement).")
@click.option("--max-groups", default=32, show_default=True, type=click.IntRange(1))
@click.option("--samples", "max_samples", type=click.IntRange(1), help="Use only the first N crops of the set.")
@_eval_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the result as JSON.")
@click.option("--quiet", is_flag=True)
@one_line_errors(PROG)
def quantize(model: str, output: str, set_dir: str | None, method: str, budget: str, activations: str,
             op_types: str, float_depthwise: bool, float_act_matmul: bool,
             float_after_concat: bool, float_side_inputs: bool, max_groups: int, max_samples: int | None, eval_data: str | None, degradations: str | None,
             eval_max_side: int, eval_crops: int, threads: int | None, latency_size: int, json_out: str | None, quiet: bool) -> None:
    """Write a quality-aware INT8 model: layers stay in float until the loss is within --budget."""
    from ndr_edge.calibration.int8 import quantize_int8
    budget_db = table.parse_budget(budget, "--budget")
    samples = _eval_set(eval_data, degradations, eval_max_side, eval_crops)
    result = quantize_int8(model, output, calibration=set_dir, method=method, budget_db=budget_db, eval_set=samples,
                           progress=not quiet, activations=activations, op_types=_op_types(op_types),
                           float_depthwise=float_depthwise, float_act_matmul=float_act_matmul,
                           float_after_concat=float_after_concat, float_side_inputs=float_side_inputs,
                           max_samples=max_samples, max_groups=max_groups, latency_shape=_latency_shape(latency_size), threads=threads)
    click.echo(result.table())
    groups = result.details.get("excluded_groups", [])
    click.echo(f"kept in float: {len(result.excluded)} nodes ({len(result.kept_by_settings())} by "
               "--float-depthwise/--float-act-matmul/--float-after-concat; "
               f"{len(groups)} layer groups for quality{': ' + ', '.join(groups) if groups else ''})")
    if result.latency:
        lat = result.latency
        click.echo("CPU latency " + f"{lat['input'][2]}x{lat['input'][3]}, {lat['threads']} threads: "
                   + ", ".join(f"{k} {v['median_ms']:.1f} ms ({lat['ratio'][k]:.2f}x)" for k, v in lat["models"].items()))
    for note in result.notes:
        click.echo(f"{PROG}: warning: {note}", err=True)
    click.echo(f"wrote {output}")
    if json_out:
        _write_json(json_out, result.to_dict())


if __name__ == "__main__":
    main()
