"""Where an INT8 graph goes wrong on one frame: every activation that the INT8 graph quantises is
read out of both the FP32 and the INT8 graph (same tensor names), and the script prints, in graph
order, how far the INT8 value is from FP32 (SNR in dB) and how much of the FP32 value falls
outside the quantiser's range (clipped fraction, and the FP32 max against the range's max).

    python benchmarks/int8_tensor_error.py out/demo --frame moon --degradation lowres4
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from ndr_edge.data import synthetic_eval_set
from ndr_edge.imageio import demo_images


def quantised_tensors(model: onnx.ModelProto) -> list[tuple[str, float, int]]:
    """(float tensor, scale, zero point) for each activation QuantizeLinear, in graph order."""
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    out = []
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
            scale = inits.get(node.input[1])
            zp = inits.get(node.input[2]) if len(node.input) > 2 else np.zeros((), np.int8)
            if scale is not None and scale.size == 1:
                out.append((node.input[0], float(scale), int(zp)))
    return out


def run_with_outputs(model: onnx.ModelProto, names: list[str], x: np.ndarray, threads: int) -> dict[str, np.ndarray]:
    m = copy.deepcopy(model)
    existing = {o.name for o in m.graph.output}
    for name in names:
        if name not in existing:
            m.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x}
    outputs = {o.name for o in sess.get_outputs()}
    wanted = [n for n in names if n in outputs]
    return dict(zip(wanted, sess.run(wanted, feed)))


def _line(row: tuple) -> str:
    name, snr, clipped, fmin, fmax, lo, hi, _ = row
    return f"  {name:70s} snr {snr:6.1f} clip {clipped:.4f} fp32 [{fmin:.3g}, {fmax:.3g}] q [{lo:.3g}, {hi:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", nargs="?", default="out/demo")
    parser.add_argument("--int8", default="model-int8.onnx", help="INT8 graph file in the export folder")
    parser.add_argument("--frame", default="moon")
    parser.add_argument("--degradation", default="lowres4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--all", action="store_true", help="print every quantised activation in graph order")
    args = parser.parse_args()
    export = Path(args.export)
    fp32, int8 = onnx.load(export / "model-fp32.onnx"), onnx.load(export / args.int8)
    images = dict(demo_images("eval"))
    sample = synthetic_eval_set([(args.frame, images[args.frame])], [args.degradation], seed=0, max_side=256)[0]
    x = np.ascontiguousarray(sample.lq.transpose(2, 0, 1)[None], np.float32)
    quant = quantised_tensors(int8)
    fp32_names = {o for n in fp32.graph.node for o in n.output}
    names = [q[0] for q in quant if q[0] in fp32_names]
    ref = run_with_outputs(fp32, names, x, args.threads)
    got = run_with_outputs(int8, names, x, args.threads)
    rows = []
    for name, scale, zp in quant:
        if name not in ref or name not in got:
            continue
        r, g = ref[name].astype(np.float64), got[name].astype(np.float64)
        lo, hi = scale * (-128 - zp), scale * (127 - zp)
        clipped = float(np.mean((r < lo) | (r > hi)))
        snr = 10 * np.log10(np.mean(r**2) / max(np.mean((r - g) ** 2), 1e-30))
        rows.append((name, snr, clipped, float(r.min()), float(r.max()), lo, hi, scale))
    print(f"{len(rows)} quantised activations; {args.frame} {args.degradation}")
    print("graph order, first 10 under 20 dB SNR:")
    for row in [r for r in rows if r[1] < 20][:10]:
        print(_line(row))
    if args.all:
        print("all, graph order:")
        for row in rows:
            print(_line(row))
    print(f"top {args.top} by clipped fraction:")
    for row in sorted(rows, key=lambda r: -r[2])[: args.top]:
        print(_line(row))


if __name__ == "__main__":
    main()
