"""Recover an :class:`NDRConfig` from a state_dict in the published layout."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ndr_edge.errors import CheckpointError
from ndr_edge.model.config import ConfigError, NDRConfig

_FFN_CANDIDATES = (2.66, 2.0, 3.0, 4.0, 1.5, 2.5)


def _count(keys: list[str], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    indices = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(indices) + 1 if indices else 0


def _shape(state: Mapping[str, torch.Tensor], key: str, source: str) -> torch.Size:
    if key not in state:
        raise CheckpointError(f"{source}: missing {key!r}: not an NDR-Restore checkpoint in the published layout")
    return state[key].shape


def infer_config(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> NDRConfig:
    """The configuration whose parameters have exactly these names and shapes.

    ``state`` uses the top-level layout (``restoration_net.*``, optionally
    ``degradation_net.*``); every field comes from the tensors themselves.
    """
    keys = list(state)
    r = "restoration_net"
    dim = _shape(state, f"{r}.extractor.weight", source)[0]
    levels = ("block1", "block2", "block3", "bottom")
    num_blocks = tuple(_count(keys, f"{r}.{level}") for level in levels)
    if 0 in num_blocks:
        raise CheckpointError(f"{source}: no transformer blocks found for {levels[num_blocks.index(0)]}")
    heads = tuple(_shape(state, f"{r}.{level}.0.attn.temperature", source)[0] for level in levels)
    hidden = [_shape(state, f"{r}.{level}.0.ffn.project_out.weight", source)[1] for level in levels]
    widths = [dim * 2**i for i in range(4)]
    factors = (*_FFN_CANDIDATES, hidden[0] / dim)
    factor = next((f for f in factors if all(int(w * f) == h for w, h in zip(widths, hidden))), None)
    if factor is None:
        raise CheckpointError(f"{source}: FFN widths {hidden} fit no single expansion factor for widths {widths}")
    for level, enc in ((3, num_blocks[2]), (2, num_blocks[1]), (1, num_blocks[0])):
        dec = _count(keys, f"{r}.block_up{level}") - 1
        if dec != enc:
            raise CheckpointError(
                f"{source}: decoder level {level} has {dec} blocks but encoder level {level} has {enc}; "
                "this family ties them"
            )
    ndr = _shape(state, f"{r}.dr", source)
    degrad = "degradation_net.extractor.weight"
    try:
        return NDRConfig(
            dim=dim,
            num_blocks=num_blocks,  # type: ignore[arg-type]
            num_refinement_blocks=_count(keys, f"{r}.refinement"),
            heads=heads,  # type: ignore[arg-type]
            ffn_expansion_factor=factor,
            ndr_entries=ndr[1],
            ndr_dim=ndr[2],
            dq_dim=_shape(state, f"{r}.res_connect1.mapping.weight", source)[0],
            rank=_shape(state, f"{r}.res_connect1.inject_degradation.low_rank_transform1.conv_H.1.weight", source)[0],
            degrad_dim=state[degrad].shape[0] if degrad in state else dim,
            degrad_rcab=max(_count(keys, "degradation_net.refinement.body") - 1, 1),
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: tensors describe an invalid configuration ({exc})") from exc
