"""Make the bundled checkpoint: drop NDR-Degrad (training-only) from a trained checkpoint,
keep its metadata, and write it atomically under ndr_edge/assets/.

    python scripts/bundle_checkpoint.py runs/xs-demo.safetensors ndr_edge/assets/ndr-edge-xs-demo.safetensors
"""

from __future__ import annotations

import sys
from dataclasses import fields

from ndr_edge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint


def main(src: str, dst: str) -> None:
    loaded = load_checkpoint(src, with_degradation_net=False)
    known = {f.name for f in fields(CheckpointMeta)}
    meta = CheckpointMeta(**{k: v for k, v in loaded.meta.items() if k in known})
    meta.training = {**meta.training, "bundled_from": str(src), "note": "NDR-Degrad removed (training only)"}
    save_checkpoint(dst, loaded.model, meta)
    print(f"{dst}: {loaded.preset}, step {meta.step}, restoration network only")


if __name__ == "__main__":
    main(*sys.argv[1:3])
