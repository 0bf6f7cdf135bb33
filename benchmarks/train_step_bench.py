"""Training step time of an NDR-Restore preset on this machine: fp32 eager, channels_last,
bf16 autocast, torch.compile; one process per mode so nothing leaks between them.

    python benchmarks/train_step_bench.py --modes fp32,cl,bf16,cl+compile --batch 8 --crop 64

Prints seconds per step (mean of --steps after 2 warm-up steps) and the ratio to fp32. Run
it on an idle machine: timings next to a training run are worthless.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def one(mode: str, preset: str, batch: int, crop: int, steps: int) -> dict:
    import torch
    import torch.nn.functional as F

    from ndr_edge.cpu import cpu_features
    from ndr_edge.model import NDRRestore, get_preset

    torch.manual_seed(0)
    model = NDRRestore(get_preset(preset), with_degradation_net=True).train()
    lq, gt = torch.rand(batch, 3, crop, crop), torch.rand(batch, 3, crop, crop)
    if "cl" in mode.split("+"):
        model = model.to(memory_format=torch.channels_last)
        lq, gt = lq.contiguous(memory_format=torch.channels_last), gt.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 2e-4)
    net = torch.compile(model) if "compile" in mode else model
    bf16 = "bf16" in mode

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            restored, fake = net(lq, gt)
        loss = F.l1_loss(restored.float(), gt) + F.l1_loss(fake.float(), lq)
        opt.zero_grad()
        loss.backward()
        opt.step()

    started = time.perf_counter()
    step()
    step()
    warm = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return {"mode": mode, "s_per_step": (time.perf_counter() - started) / steps, "warmup_s": warm,
            "threads": torch.get_num_threads(), "cpu": cpu_features().summary()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="fp32,cl,bf16,cl+compile")
    parser.add_argument("--preset", default="ndr-edge-xs")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.preset, args.batch, args.crop, args.steps)))
        return
    rows = []
    for mode in args.modes.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", mode, "--preset", args.preset, "--batch", str(args.batch),
                              "--crop", str(args.crop), "--steps", str(args.steps)], check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = next((r["s_per_step"] for r in rows if r["mode"] == "fp32"), rows[0]["s_per_step"])
    print(f"{args.preset}, batch {args.batch}, {args.crop} px, {rows[0]['threads']} threads, {rows[0]['cpu']}")
    for r in rows:
        print(f"{r['mode']:<12} {r['s_per_step']:.3f} s/step  {r['s_per_step'] / base:.2f}x fp32  (warm-up {r['warmup_s']:.0f} s)")


if __name__ == "__main__":
    main()
