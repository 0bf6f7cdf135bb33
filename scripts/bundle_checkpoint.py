"""Make the bundled checkpoint: drop NDR-Degrad (training-only) from a trained checkpoint,
keep its metadata, and write it atomically under ndr_edge/assets/. With ``--validation``
(the JSON of ``benchmarks/val_snapshots.py --incumbent``), the source's validation row and
the ship rule's verdict are recorded as ``metrics.ship_validation``; a source the rule did
not pass is refused.

    python scripts/bundle_checkpoint.py runs/xs-demo.safetensors ndr_edge/assets/ndr-edge-xs-demo.safetensors
    python scripts/bundle_checkpoint.py runs/xs-avg.safetensors ndr_edge/assets/ndr-edge-xs-demo.safetensors \\
        --validation runs/val-r13.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--validation", help="val_snapshots.py --json output with src's row and its verdict")
    args = parser.parse_args()
    row = None
    if args.validation:
        rows = json.loads(Path(args.validation).read_text())
        row = rows.get(args.src)
        if row is None:
            parser.error(f"{args.validation} has no row for {args.src} (rows: {', '.join(rows)})")
        if row.get("beats_incumbent") is not True:
            parser.error(f"{args.validation}: {args.src} did not pass the ship rule (beats_incumbent: "
                         f"{row.get('beats_incumbent')}); the bundled model stays")
    loaded = load_checkpoint(args.src, with_degradation_net=False)
    known = {f.name for f in fields(CheckpointMeta)}
    meta = CheckpointMeta(**{k: v for k, v in loaded.meta.items() if k in known})
    meta.training = {**meta.training, "bundled_from": str(args.src), "note": "NDR-Degrad removed (training only)"}
    if row is not None:
        meta.metrics = {**meta.metrics, "ship_validation": row}
    save_checkpoint(args.dst, loaded.model, meta)
    print(f"{args.dst}: {loaded.preset}, step {meta.step}, restoration network only")


if __name__ == "__main__":
    main()
