#!/usr/bin/env python
"""INT8 benchmark: what INT8 costs in restored PSNR per degradation, and what it buys in CPU latency.

On a checkpoint (default: the bundled ndr-edge-xs demo model) this

1. exports the FP32 ONNX graph (``ndr_edge.export`` when available, else ``torch.onnx.export``);
2. builds the default calibration set (demo *train* photos, degradation mix of the default recipe);
3. compares the calibration methods (min-max, entropy, percentile; default Q/DQ placement: Conv
   and MatMul, depthwise convolutions in float) by restored PSNR per degradation on held-out
   photos (demo *heldout*: never calibrated on), then the placement itself (every op, depthwise
   INT8, asymmetric UINT8 activations) with the best method;
4. runs the quality-aware mode (layers kept in float until every degradation loses <= the budget);
5. times FP32 and the INT8 variants on the CPU on the same input, in the same process, round-robin,
   and profiles where FP32 and the shipped INT8 spend their CPU time (per op type);

and writes ``results.json`` and ``results.md`` into the output folder.

    python benchmarks/int8_bench.py                      # bundled checkpoint -> runs/int8-bench/
    python benchmarks/int8_bench.py --checkpoint my.safetensors -o out/ --threads 4
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from ndr_edge.calibration.evaluate import DEFAULT_EVAL_CROPS, DEFAULT_EVAL_SIDE
from ndr_edge.export.variants import DEFAULT_BUDGET_DB, INT8_METHODS

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "ndr_edge" / "assets" / "ndr-edge-xs-demo.safetensors"


def export_fp32(checkpoint: Path, out: Path) -> dict[str, Any]:
    """FP32 ONNX of the restoration network with ndr_edge metadata; returns what was done."""
    from ndr_edge.artifact import ArtifactMeta
    from ndr_edge.checkpoint import load_checkpoint

    loaded = load_checkpoint(checkpoint)
    meta = ArtifactMeta(preset=loaded.preset, channel_order=loaded.channel_order,
                        value_range=(float(loaded.value_range[0]), float(loaded.value_range[1])), source_sha256=loaded.sha256,
                        config=loaded.config.to_dict())
    try:
        from ndr_edge.export.onnx_export import export_onnx, restoration_graph, save_onnx
        from ndr_edge.export.simplify import simplify
    except ImportError:
        export_onnx = None  # type: ignore[assignment]
    if export_onnx is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = export_onnx(restoration_graph(loaded.model), meta)
        simplified = simplify(model)
        save_onnx(simplified.model, out)
        how = (f"ndr_edge.export, onnxsim {simplified.nodes_before} -> {simplified.nodes_after} nodes"
               if simplified.simplified else f"ndr_edge.export (not simplified: {simplified.reason})")
    else:  # the export stage is not installed: trace directly, as ndr-export would
        import onnx
        import torch

        from ndr_edge.model import RestorationOnly

        axes = {0: "batch", 2: "height", 3: "width"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(RestorationOnly(loaded.model.restoration_net).eval(), (torch.rand(1, 3, 64, 64),), str(out),
                              input_names=["input"], output_names=["output"],
                              dynamic_axes={"input": axes, "output": axes}, opset_version=17, dynamo=False)
        proto = onnx.load(str(out))
        for key, value in meta.to_props().items():
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(out))
        how = "torch.onnx.export (opset 17)"
    return {"checkpoint": str(checkpoint), "sha256": loaded.sha256, "preset": loaded.preset, "export": how,
            "channel_order": loaded.channel_order}


def _ms(latency: dict[str, Any], name: str) -> str:
    return f"{latency['models'][name]['median_ms']:.1f}"


def quality_section(qa: dict[str, Any], names: list[str], role: str) -> list[str]:
    from ndr_edge.calibration.compare import format_table

    lines = [
        f"## Quality-aware INT8, {role} ({qa['method']}, budget {qa['budget_db']} dB on every degradation)",
        "",
        f"Within budget: **{'yes' if qa['within_budget'] else 'no'}**; layer groups kept in float: "
        f"{len(qa['excluded_groups'])} ({len(qa['excluded'])} nodes)"
        + (": " + ", ".join(f"`{g}`" for g in qa["excluded_groups"]) if qa["excluded_groups"] else "")
        + (f"; and the {qa['depthwise_float']} depthwise convolutions (float_depthwise)" if qa.get("depthwise_float")
           else "") + ".",
        "",
    ]
    head = ["degradation", "FP32 dB", "INT8 dB", "loss dB", "no-search INT8 loss dB"]
    rows = [[n, f"{qa['psnr_fp32'][n]:.2f}", f"{qa['psnr_int8'][n]:.2f}", f"{qa['loss_db'][n]:+.3f}",
             f"{qa['full_int8_loss_db'][n]:+.3f}"] for n in names]
    lines += [format_table(head, rows, markdown=True), ""]
    if qa.get("sensitivity"):
        top = qa["sensitivity"][:8]
        lines += [("Most sensitive layer groups, in the order the search tries them (kept alone in float: the "
                   "worst-degradation loss, what that recovers against no search, and how much of the loss above "
                   "the budget, summed over degradations, it recovers):"), ""]
        lines += [format_table(["group", "nodes", "worst loss dB", "recovers worst dB", "recovers over budget dB"],
                               [[f"`{r['group']}`", str(r["nodes"]), f"{max(r['loss_db'].values()):+.3f}",
                                 f"{r['recovers_db']:+.3f}", f"{r.get('recovers_excess_db', float('nan')):+.3f}"]
                                for r in top], markdown=True), ""]
    return lines


def markdown(results: dict[str, Any]) -> str:
    from ndr_edge.calibration.compare import format_table

    comp = results["methods"]
    names = list(comp["psnr_fp32"])
    lines = [
        "# INT8 benchmark",
        "",
        (f"Checkpoint `{Path(results['model']['checkpoint']).name}` ({results['model']['preset']}), "
         f"sha256 `{results['model']['sha256'][:12]}`; ONNX Runtime {results['latency']['onnxruntime']} "
         f"on {results['machine']['cpu']}, {results['latency']['threads']} threads."),
        (f"Calibration: {results['calibration']['count']} crops of {results['calibration']['crop']} "
         f"({results['calibration']['recipe']}), demo train photos. Evaluation: demo held-out photos "
         f"({', '.join(results['eval_set']['names'])}): {results['settings']['eval_crops']} crops of "
         f"{results['settings']['eval_max_side']} px spread over each photo, one sample per degradation and crop."),
        "",
        ("## Calibration methods (no layer search; Q/DQ on Conv and MatMul, depthwise convolutions in float, "
         "symmetric INT8 activations, per-channel weights), then placements with the best method"),
        "",
        "PSNR lost against FP32 per degradation (dB, positive = worse); FP32 row: restored PSNR.",
        "",
    ]
    head = ["method", *names, "worst"]
    rows = [["FP32 PSNR", *[f"{comp['psnr_fp32'][n]:.2f}" for n in names], ""]]
    for s in comp["scores"]:
        rows.append([s["method"] + (f" ({s['placement']})" if s.get("placement") else ""),
                     *[f"{s['loss_db'][n]:+.3f}" for n in names], f"{s['worst_db']:+.3f}"])
    lines += [format_table(head, rows, markdown=True), "",
              (f"Best ONNX Runtime method by worst-degradation loss: **{comp['best_onnxruntime']}** (used below). "
              f"ModelOpt rows: NVIDIA ModelOpt's ONNX INT8 (TensorRT-style Q/DQ placement, CPU calibration); "
              f"ModelOpt: {comp['modelopt']}."), ""]

    lines += quality_section(results["quality_aware"], names, "shipped")
    if results.get("tight"):
        lines += quality_section(results["tight"], names, "sensitivity demonstration")

    lat = results["latency"]
    shape = lat["input"]
    lines += [
        (f"## CPU latency ({shape[2]}x{shape[3]}, batch {shape[0]}, same input, same run, median of "
         f"{next(iter(lat['models'].values()))['runs']})"),
        "",
    ]
    rows = [[name, _ms(lat, name), f"{lat['ratio'][name]:.2f}x"] for name in lat["models"]]
    lines += [format_table(["model", "ms", "vs FP32"], rows, markdown=True), ""]
    prof = results["profile"]
    lines += [
        "## Where the CPU time goes (ONNX Runtime profiler, ms per run by op type)",
        "",
        format_table(["op type", "FP32 ms", "shipped INT8 ms"],
                     [[op, f"{prof['fp32'].get(op, 0.0):.1f}", f"{prof['int8'].get(op, 0.0):.1f}"]
                      for op in prof["top_ops"]], markdown=True),
        "",
        (f"Conv and MatMul kernels are {100 * prof['integer_share']:.0f}% of the FP32 time; the rest (layer-norm "
         "arithmetic, GELU, softmax, layout reorders, the NDR injection's element-wise work) has no INT8 kernel. "
         f"Even integer kernels that took no time at all, with no Q/DQ cost, would leave "
         f"{1 - prof['integer_share']:.2f}x of FP32."),
        "",
    ]
    goal = results["goal"]
    lines += [
        (f"Goal: <= {goal['loss_db']} dB loss on every degradation and <= {goal['latency_ratio']}x FP32 latency. "
         f"Quality: **{'met' if goal['quality_met'] else 'not met'}**; "
         f"latency: **{'met' if goal['latency_met'] else 'not met'}** "
         f"(shipped INT8 {lat['ratio']['int8 quality-aware (shipped)']:.2f}x)."),
        "",
        f"Total time {results['seconds']:.0f} s. Re-run: `python benchmarks/int8_bench.py {results['argv']}`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=BUNDLED, help="default: the bundled demo checkpoint")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "runs" / "int8-bench")
    parser.add_argument("--samples", type=int, default=64, help="calibration crops")
    parser.add_argument("--crop", type=int, default=96, help="calibration crop size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default=",".join(INT8_METHODS))
    parser.add_argument("--budget", type=float, default=DEFAULT_BUDGET_DB, help="dB, on every degradation")
    parser.add_argument("--eval-max-side", type=int, default=DEFAULT_EVAL_SIDE, help="evaluation crop side")
    parser.add_argument("--eval-crops", type=int, default=DEFAULT_EVAL_CROPS, help="evaluation crops per photo")
    parser.add_argument("--latency-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15, help="latency runs per model")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--max-groups", type=int, default=32)
    parser.add_argument("--tight-budget", type=float, default=0.05,
                        help="a second quality-aware run at this budget, to show the sensitivity analysis at work "
                             "(0: skip)")
    parser.add_argument("--no-modelopt", action="store_true", help="skip NVIDIA ModelOpt even when installed")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from ndr_edge.artifact import atomic_write_bytes, atomic_write_json
    from ndr_edge.calibration import CalibrationRecipe, build_set, quantize_int8
    from ndr_edge.calibration.compare import compare_methods
    from ndr_edge.calibration.evaluate import compare_latency, default_eval_set, default_threads, op_time_profile
    from ndr_edge.calibration.modelopt_backend import MODELOPT_METHODS, modelopt_backend, modelopt_status

    if not args.checkpoint.is_file():
        print(f"int8_bench: error: {args.checkpoint}: no such checkpoint (train one with ndr-train, or pass "
              "--checkpoint)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    progress = not args.quiet
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda msg: print(f"int8_bench: {msg}", file=sys.stderr, flush=True)) if progress else (lambda msg: None)

    fp32 = out / "fp32.onnx"
    model_info = export_fp32(args.checkpoint, fp32)
    say(f"exported {fp32} with {model_info['export']}")
    recipe = CalibrationRecipe(samples=args.samples, crop=args.crop, seed=args.seed)
    calib = build_set(None, recipe, out / "calibration-set", overwrite=True, progress=progress)
    say(calib.describe())
    samples = default_eval_set(max_side=args.eval_max_side, crops=args.eval_crops)
    threads = args.threads or default_threads()

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    available, why = modelopt_status()
    extra = {} if args.no_modelopt or not available else {
        f"modelopt-{m}": modelopt_backend(m) for m in MODELOPT_METHODS}
    if not extra:
        say(f"ModelOpt not compared: {'--no-modelopt' if args.no_modelopt else why}")
    comparison = compare_methods(fp32, calib, methods=methods, eval_set=samples, latency_shape=None,
                                 threads=threads, extra_backends=extra, keep_dir=out / "methods",
                                 cache_dir=out / "ranges", progress=progress)
    say("methods:\n" + comparison.table())
    # the shipped INT8 comes from ONNX Runtime's quantiser (quantize_int8): pick among its methods
    best = min((s for s in comparison.scores if s.backend == "onnxruntime"),
               key=lambda s: (round(s.worst_db, 3), s.mean_db)).method
    # the same calibration with asymmetric UINT8 activations (ONNX Runtime's preferred CPU format)
    uint8 = compare_methods(fp32, calib, methods=[best], eval_set=samples, activations="uint8", latency_shape=None,
                            threads=threads, keep_dir=out / "methods-uint8", cache_dir=out / "ranges",
                            progress=progress)
    # the placement: every op ONNX Runtime can quantise, and depthwise convolutions in INT8
    every_op = compare_methods(fp32, calib, methods=[best], eval_set=samples, op_types=None, latency_shape=None,
                               threads=threads, keep_dir=out / "methods-every-op", cache_dir=out / "ranges",
                               progress=progress)
    dw_int8 = compare_methods(fp32, calib, methods=[best], eval_set=samples, float_depthwise=False,
                              latency_shape=None, threads=threads, keep_dir=out / "methods-depthwise-int8",
                              cache_dir=out / "ranges", progress=progress)
    scores = [{**s.to_dict(), "activations": "int8", "placement": ""} for s in comparison.scores]
    for placement, extra_scores in (("uint8 activations", uint8), ("every op", every_op),
                                    ("depthwise INT8", dw_int8)):
        scores += [{**s.to_dict(), "activations": "uint8" if placement.startswith("uint8") else "int8",
                    "placement": placement} for s in extra_scores.scores]

    shipped = out / "int8-quality-aware.onnx"
    result = quantize_int8(fp32, shipped, calibration=calib, method=best, budget_db=args.budget, eval_set=samples,
                           progress=progress, max_groups=args.max_groups, latency_shape=None, threads=threads,
                           cache_dir=out / "ranges")
    say("quality-aware:\n" + result.table())
    tight = None
    if args.tight_budget > 0:
        tight = quantize_int8(fp32, out / "int8-tight-budget.onnx", calibration=calib, method=best,
                              budget_db=args.tight_budget, eval_set=samples, progress=progress,
                              max_groups=args.max_groups, latency_shape=None, threads=threads,
                              cache_dir=out / "ranges")
        say(f"quality-aware at {args.tight_budget} dB:\n" + tight.table())

    timed: dict[str, Any] = {
        "fp32": fp32,
        f"int8 no search ({best})": out / "methods" / f"int8-{best}.onnx",
        f"int8 no search ({best}, uint8 act.)": out / "methods-uint8" / f"int8-{best}.onnx",
        f"int8 every op ({best})": out / "methods-every-op" / f"int8-{best}.onnx",
        f"int8 depthwise INT8 ({best})": out / "methods-depthwise-int8" / f"int8-{best}.onnx",
        "int8 quality-aware (shipped)": shipped,
    }
    if tight is not None:
        timed[f"int8 quality-aware ({args.tight_budget} dB budget)"] = out / "int8-tight-budget.onnx"
    if extra:
        timed["int8 ModelOpt (entropy)"] = out / "methods" / "int8-modelopt-entropy.onnx"
    latency = compare_latency(
        timed,
        shape=(1, 3, args.latency_size, args.latency_size), threads=threads, repeats=args.repeats,
        progress=progress,
    )
    say("profiling FP32 and the shipped INT8")
    shape = (1, 3, args.latency_size, args.latency_size)
    profile = {"fp32": op_time_profile(fp32, shape=shape, threads=threads),
               "int8": op_time_profile(shipped, shape=shape, threads=threads)}
    integer_ops = ("Conv", "FusedConv", "MatMul", "FusedMatMul", "QLinearConv", "QLinearMatMul")
    profile["integer_share"] = round(
        sum(v for k, v in profile["fp32"].items() if k in integer_ops) / sum(profile["fp32"].values()), 4)
    profile["top_ops"] = list(dict.fromkeys([*list(profile["fp32"])[:10], *list(profile["int8"])[:6]]))
    keys = ("budget_db", "within_budget", "excluded_groups", "excluded", "loss_db", "full_int8_loss_db", "psnr_fp32",
            "psnr_int8", "sensitivity", "steps")
    qa = {"method": best, "depthwise_float": len(result.kept_by_settings()), **{k: result.details[k] for k in keys}}
    ratio = latency["ratio"]["int8 quality-aware (shipped)"]
    results = {
        "model": model_info,
        "machine": {"cpu": _cpu_name(), "python": platform.python_version()},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "calibration": calib.summary(),
        "eval_set": result.details["eval_set"],
        "methods": {**comparison.to_dict(), "scores": scores, "best_onnxruntime": best,
                    "modelopt": "compared" if extra else why or "skipped (--no-modelopt)"},
        "quality_aware": qa,
        "tight": ({"method": best, "depthwise_float": len(tight.kept_by_settings()),
                   **{k: tight.details[k] for k in keys}} if tight is not None else None),
        "latency": latency,
        "profile": profile,
        "goal": {"loss_db": DEFAULT_BUDGET_DB, "latency_ratio": 0.6,
                 "quality_met": bool(max(result.loss_db.values()) <= DEFAULT_BUDGET_DB),
                 "latency_met": bool(ratio <= 0.6)},
        "seconds": round(time.perf_counter() - start, 1),
        "argv": " ".join(argv if argv is not None else sys.argv[1:]),
    }
    atomic_write_json(out / "results.json", results)
    text = markdown(results)
    atomic_write_bytes(out / "results.md", text.encode())
    print(text)
    json.dumps(results)
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    sys.exit(main())
