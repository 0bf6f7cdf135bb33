#!/usr/bin/env python
"""Per-frame gains of a checkpoint on ``ndr-eval``'s default evaluation set (the held-out
photos and 4 dead-leaves images, centre 256 px, seed 0): which frames a degradation's mean
hides. A diagnostic, not a test; nothing here chooses a checkpoint.

    python benchmarks/per_image.py ndr_edge/assets/ndr-edge-xs-demo.safetensors lowres2 lowres4 clean
    python benchmarks/per_image.py CKPT lowres2 --save /tmp/frames   # + input | output | error PNGs
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint")
    parser.add_argument("degradations", nargs="*", default=["lowres2", "lowres4", "clean"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", metavar="DIR", help="write <degradation>-<frame>.png per frame: input, output, "
                        "and 0.5 + 2 x (output - clean)")
    args = parser.parse_args()

    import numpy as np

    from ndr_edge.checkpoint import load_checkpoint
    from ndr_edge.cli.evaluate import PROCEDURAL_EVAL_SEED
    from ndr_edge.data import synthetic_eval_set
    from ndr_edge.data.procedural import dead_leaves_set
    from ndr_edge.degradations import parse_names
    from ndr_edge.evaluate import restore_image, torch_runner
    from ndr_edge.imageio import demo_images, write_image
    from ndr_edge.metrics import psnr

    loaded = load_checkpoint(args.checkpoint)
    run = torch_runner(loaded.model.restoration_net, args.threads)
    images = demo_images("eval") + dead_leaves_set(4, 256, PROCEDURAL_EVAL_SEED)
    for name in parse_names(args.degradations):
        scores = []
        for sample in synthetic_eval_set(images, [name], seed=0, max_side=256):
            restored = restore_image(run, sample.lq, loaded.channel_order)
            out = psnr(restored, sample.gt)
            if args.save:
                error = np.clip(0.5 + 2.0 * (restored - sample.gt), 0.0, 1.0)
                write_image(Path(args.save) / f"{name}-{sample.name}.png", np.concatenate([sample.lq, restored, error], 1))
            before = psnr(sample.lq, sample.gt)
            gain = out - before if math.isfinite(before) else math.nan
            scores.append(out if math.isnan(gain) else gain)
            shown = f"out {out:6.2f} dB" if math.isnan(gain) else f"in {before:6.2f}  gain {gain:+6.2f} dB"
            print(f"{name:8s} {sample.name:20s} {shown}", flush=True)
        what = "mean PSNR out" if name == "clean" else "mean gain"
        print(f"{name:8s} {what} {np.mean(scores):+.2f} dB\n", flush=True)


if __name__ == "__main__":
    main()
