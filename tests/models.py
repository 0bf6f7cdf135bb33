"""Untrained models for tests. The edge presets start at the identity (a global residual
and a zero exit conv), which would make every comparison trivially exact; these get a
random exit conv so the network really transforms its input."""

from __future__ import annotations

from typing import Any


def untrained(preset: str = "ndr-edge-xs", seed: int = 0, **kwargs: Any) -> Any:
    """``NDRRestore`` of ``preset`` (keyword arguments go to its constructor), seeded, in eval mode."""
    import torch

    from ndr_edge.model import NDRRestore, get_preset

    torch.manual_seed(seed)
    model = NDRRestore(get_preset(preset), **kwargs)
    exit_conv = model.restoration_net.reconstruction
    torch.nn.init.normal_(exit_conv.weight, std=0.05)
    torch.nn.init.normal_(exit_conv.bias, std=0.01)
    return model.eval()
