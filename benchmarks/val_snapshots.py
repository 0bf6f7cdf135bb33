#!/usr/bin/env python
"""Score checkpoints (e.g. the snapshots of one training run) on the trainer's validation set
(``Trainer.validate``: held-out colour photos, their greyscale copies, held-out dead-leaves
images, 128 px) plus its ``clean`` frames, to choose which step to ship. The evaluation set of
``ndr-eval`` is never looked at here. A benchmark, not a test.

    python benchmarks/val_snapshots.py runs/snap5/*.safetensors --json val-snapshots.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--degradations", default="noise25,rain,haze,lowres2,lowres4,mix,clean")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the scores here")
    args = parser.parse_args()

    from ndr_edge.checkpoint import load_checkpoint
    from ndr_edge.data import synthetic_eval_set
    from ndr_edge.data.datasets import to_grey
    from ndr_edge.data.procedural import dead_leaves_set
    from ndr_edge.degradations import parse_names
    from ndr_edge.evaluate import evaluate, torch_runner
    from ndr_edge.frames import to_float
    from ndr_edge.imageio import demo_images
    from ndr_edge.train.loop import PROCEDURAL_VAL_SEED

    colour = demo_images("heldout")
    images = colour + [(f"{n}-grey", to_grey(to_float(i))) for n, i in colour] + dead_leaves_set(2, 128, PROCEDURAL_VAL_SEED)
    samples = synthetic_eval_set(images, parse_names(args.degradations), seed=1234, max_side=128)
    rows = {}
    for path in args.checkpoints:
        loaded = load_checkpoint(path)
        result = evaluate(torch_runner(loaded.model.restoration_net, args.threads), samples, loaded.channel_order, progress=False)
        gains = {k: v.gain_db for k, v in result.scores.items() if math.isfinite(v.gain_db)}
        row = {"step": loaded.meta.get("step"), "mean_gain_db": sum(gains.values()) / len(gains),
               **{k: round(v, 3) for k, v in gains.items()}}
        if "clean" in result.scores:
            row["clean_psnr"] = round(result.scores["clean"].psnr, 3)
        rows[path] = row
        print(Path(path).name, " ".join(f"{k} {v:+.2f}" if isinstance(v, float) and k != "clean_psnr" else f"{k} {v}"
                                        for k, v in row.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
