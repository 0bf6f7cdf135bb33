"""Weight averaging of checkpoints from one run (stochastic weight averaging, offline).

A small all-in-one model trained at a fixed learning rate swings between degradations from
one validation to the next. The mean of the weights of several late checkpoints of the same
run sits nearer the middle of the basin they wander in. ``ndr-average`` writes that mean as
a normal checkpoint. The metadata of the last input is kept; the sources and the command are
recorded under ``training.averaged``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import torch

from ndr_edge.checkpoint import load_state, native
from ndr_edge.cli.common import check_output_file, one_line_errors
from ndr_edge.errors import CheckpointError, InputError


def average_states(states: list[dict[str, torch.Tensor]], names: list[str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (others must be equal and are kept)."""
    if not states:
        raise InputError("give at least two checkpoints to average")
    keys = set(states[0])
    for state, name in zip(states[1:], names[1:]):
        if set(state) != keys:
            raise CheckpointError(f"{name}: its tensors differ from {names[0]}'s; average checkpoints of one model")
        for key in keys:
            if state[key].shape != states[0][key].shape:
                raise CheckpointError(f"{name}: {key} is {tuple(state[key].shape)}, "
                                      f"{tuple(states[0][key].shape)} in {names[0]}")
    out = {}
    for key in sorted(keys):
        first = states[0][key]
        if first.is_floating_point():
            out[key] = torch.stack([s[key].double() for s in states]).mean(0).to(first.dtype)
        else:
            for state, name in zip(states[1:], names[1:]):
                if not torch.equal(state[key], first):
                    raise CheckpointError(f"{name}: integer tensor {key} differs from {names[0]}'s")
            out[key] = first.clone()
    return out


def average_checkpoints(paths: list[str | Path], out: str | Path, command: str = "") -> Path:
    """Average ``paths`` (our format, one preset) into ``out``; returns ``out``."""
    if len(paths) < 2:
        raise InputError("give at least two checkpoints to average")
    loaded = [load_state(p) for p in paths]
    metas = [meta for _, meta, _ in loaded]
    if any(m is None for m in metas):
        bad = next(str(p) for p, m in zip(paths, metas) if m is None)
        raise CheckpointError(f"{bad}: not an ndr-edge checkpoint (no metadata); average ndr-train checkpoints")
    presets = {m.preset for m in metas if m is not None}
    if len(presets) > 1:
        raise CheckpointError(f"checkpoints of different presets ({', '.join(sorted(map(str, presets)))}) cannot be averaged")
    state = average_states([s for s, _, _ in loaded], [str(p) for p in paths])
    meta = metas[-1]
    assert meta is not None
    meta.training = {**meta.training, "averaged": {"sources": [str(p) for p in paths],
                                                  "steps": [m.step for m in metas if m is not None],
                                                  "command": command}}
    meta.metrics = {k: v for k, v in meta.metrics.items() if k in ("loss_history", "val_history")}
    return native.save(out, state, meta)


@click.command(context_settings={"help_option_names": ["-h", "--help"]}, epilog="""
\b
Example:
  # the mean of the last four checkpoints kept by a run (copies of runs/xs.safetensors)
  ndr-average runs/snap/step-6750.safetensors runs/snap/step-7000.safetensors \\
      runs/snap/step-7250.safetensors runs/snap/step-7500.safetensors -o runs/xs-avg.safetensors
  ndr-eval runs/xs-avg.safetensors      # then compare it with the last one
""")
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), help="Checkpoint to write.")
@one_line_errors("ndr-average")
def main(checkpoints: tuple[str, ...], out: str) -> None:
    """Write the weight average of CHECKPOINTS (two or more, one run, one preset) to OUT."""
    check_output_file(out, "output")
    path = average_checkpoints(list(checkpoints), out, command="ndr-average " + " ".join(sys.argv[1:]))
    click.echo(f"averaged {len(checkpoints)} checkpoints -> {path}")


if __name__ == "__main__":
    main()
