"""Parameters and FLOPs of each preset (``python -m ndr_edge.model.profile``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from ndr_edge.model.config import PRESETS, NDRConfig
from ndr_edge.model.ndr_restore import NDRRestore


@dataclass(frozen=True)
class Cost:
    restoration_params: int
    degradation_params: int
    gflop: float  # multiply-adds counted as 2 FLOPs, restoration network only
    size: tuple[int, int]


def measure(config: NDRConfig, size: tuple[int, int] = (256, 256)) -> Cost:
    model = NDRRestore(config).eval()
    assert model.degradation_net is not None
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.restoration_net(torch.zeros(1, 3, *size))
    return Cost(
        restoration_params=sum(p.numel() for p in model.restoration_net.parameters()),
        degradation_params=sum(p.numel() for p in model.degradation_net.parameters()),
        gflop=counter.get_total_flops() / 1e9,
        size=size,
    )


def table(size: tuple[int, int] = (256, 256)) -> str:
    head = f"| preset | restoration params | NDR-Degrad params | GFLOP per {size[0]}x{size[1]} frame | what for |"
    rows = [head, "|---|---|---|---|---|"]
    for preset in PRESETS.values():
        cost = measure(preset.config, size)
        rows.append(
            f"| `{preset.name}` | {cost.restoration_params / 1e6:.2f} M | {cost.degradation_params / 1e6:.2f} M | "
            f"{cost.gflop:.1f} | {preset.summary} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
