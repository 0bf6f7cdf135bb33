#!/usr/bin/env python
"""Score checkpoints (e.g. the snapshots of one training run) on the trainer's validation set
(``ndr_edge.train.validation``, the set ``Trainer.validate`` scores) plus its ``clean``
frames, to choose which step to ship. The evaluation set of ``ndr-eval`` is never looked at
here. A benchmark, not a test.

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
    parser.add_argument("--incumbent", help="the model to replace (scored too): each other checkpoint is judged "
                        "by the ship rule (ndr_edge.train.validation.beats)")
    args = parser.parse_args()

    from ndr_edge.checkpoint import load_checkpoint
    from ndr_edge.degradations import parse_names
    from ndr_edge.evaluate import evaluate, torch_runner
    from ndr_edge.train.validation import VAL_SET, beats, validation_samples

    samples = validation_samples(parse_names(args.degradations))
    print(f"validation set {VAL_SET}: {len(samples)} frames", flush=True)
    rows = {}
    paths = ([args.incumbent] if args.incumbent else []) + [p for p in args.checkpoints if p != args.incumbent]
    for path in paths:
        loaded = load_checkpoint(path)
        result = evaluate(torch_runner(loaded.model.restoration_net, args.threads), samples, loaded.channel_order, progress=False)
        gains = {k: v.gain_db for k, v in result.scores.items() if math.isfinite(v.gain_db)}
        row = {"set": VAL_SET, "step": loaded.meta.get("step"), "mean_gain_db": sum(gains.values()) / len(gains),
               **{k: round(v, 3) for k, v in gains.items()}}
        if "clean" in result.scores:
            row["clean_psnr"] = round(result.scores["clean"].psnr, 3)
        rows[path] = row
        print(Path(path).name, " ".join(f"{k} {v:+.2f}" if isinstance(v, float) and k != "clean_psnr" else f"{k} {v}"
                                        for k, v in row.items()), flush=True)
    if args.incumbent:
        groups = {p: {("clean" if k == "clean_psnr" else k): v for k, v in row.items() if k not in ("set", "step")}
                  for p, row in rows.items()}
        for path in paths[1:]:
            ok, why = beats(groups[path], groups[args.incumbent])
            rows[path]["beats_incumbent"] = ok
            print(f"{Path(path).name}: {'replaces' if ok else 'does not replace'} {Path(args.incumbent).name} ({why})")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
