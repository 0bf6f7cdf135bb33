"""Which activation Q/DQ pair of an INT8 graph makes OpenVINO disagree with ONNX Runtime.

Both runtimes run the same graph in which only some activation QuantizeLinear ->
DequantizeLinear pairs are kept; the others are bypassed, so that tensor stays float. The
script bisects over the pairs in graph order. It reports the first pair whose keeping drops
the agreement below ``--threshold`` dB, the agreement with only that pair kept, and the
agreement with every pair kept except those on the same op type.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/int8_qdq_bisect.py out/demo/model-int8.onnx

Measured on 2026-12-01, with the bundled ndr-edge-xs INT8 graph of that morning (made before
``float_after_concat``), 128x128 noise25 crop of ``coffee``:
all pairs 24.9 dB, none 134.7 dB; the first breaking pair is ``/net/Concat_1_output_0``, and
that pair alone gives 32.6 dB. All pairs except the three on Concat outputs give 53.9 dB. So
``QuantSettings.float_after_concat`` keeps the Convs after a Concat in float.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ndr_edge.degradations import degrade
from ndr_edge.frames import to_float
from ndr_edge.imageio import demo_images
from ndr_edge.runtime.openvino_backend import open_core


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-20))


def activation_pairs(model: onnx.ModelProto) -> list[tuple[str, str, str]]:
    """(QuantizeLinear, DequantizeLinear, producer op type) of every activation Q/DQ pair."""
    by_out = {o: n for n in model.graph.node for o in n.output}
    pairs = []
    for node in model.graph.node:
        q = by_out.get(node.input[0]) if node.op_type == "DequantizeLinear" else None
        if q is not None and q.op_type == "QuantizeLinear":
            producer = by_out.get(q.input[0])
            pairs.append((q.name, node.name, producer.op_type if producer is not None else "input"))
    return pairs


def keep_only(model: onnx.ModelProto, pairs: list[tuple[str, str, str]], keep: set[int]) -> onnx.ModelProto:
    """A copy of ``model`` with the pairs not in ``keep`` bypassed (their tensor stays float)."""
    out = copy.deepcopy(model)
    nodes = {n.name: n for n in out.graph.node}
    rename, dropped = {}, set()
    for index, (q, dq, _) in enumerate(pairs):
        if index not in keep:
            rename[nodes[dq].output[0]] = nodes[q].input[0]
            dropped.add(dq)
    for node in out.graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    kept = [n for n in out.graph.node if n.name not in dropped]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="INT8 (QDQ) ONNX from ndr-export / ndr-calib quantize")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--degradation", default="noise25")
    parser.add_argument("--threshold", type=float, default=35.0)
    args = parser.parse_args()

    clean = to_float(demo_images("heldout")[0][1][: args.size, : args.size])
    lq = degrade(clean, args.degradation, np.random.default_rng(0))
    x = np.ascontiguousarray(lq[..., ::-1].transpose(2, 0, 1)[None], dtype=np.float32)  # BGR, NCHW
    base = onnx.load(str(args.model))
    pairs = activation_pairs(base)
    core = open_core()  # keeps the thread's signal stack (ndr_edge/signal_stack.py)
    core.set_property("CPU", {"INFERENCE_NUM_THREADS": 1})
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1

    def agree(keep: set[int]) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "m.onnx"
            onnx.save(keep_only(base, pairs, keep), str(path))
            ref = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
            model = core.read_model(str(path))
            model.reshape({model.inputs[0].get_any_name(): list(x.shape)})
            compiled = core.compile_model(model, "CPU")
            return psnr(compiled(x)[compiled.outputs[0]], ref)

    print(f"{len(pairs)} activation Q/DQ pairs; all kept {agree(set(range(len(pairs)))):.1f} dB, "
          f"none {agree(set()):.1f} dB", flush=True)
    lo, hi = 0, len(pairs)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        value = agree(set(range(mid)))
        print(f"  first {mid} kept: {value:.1f} dB", flush=True)
        lo, hi = (lo, mid) if value < args.threshold else (mid, hi)
    q, _, producer = pairs[lo]
    print(f"first breaking pair: {q} (after a {producer}); only it kept: {agree({lo}):.1f} dB")
    rest = {i for i, p in enumerate(pairs) if p[2] != producer}
    print(f"every pair except those after a {producer}: {agree(rest):.1f} dB")


if __name__ == "__main__":
    main()
