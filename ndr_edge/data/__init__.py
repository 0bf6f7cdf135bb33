"""Data for training and evaluation: synthetic pairs made on the fly, real pairs from disk,
synthetic evaluation sets.

The torch-free names (``EvalSample``, ``synthetic_eval_set``, ``load_clean_folder``,
``find_pairs``, ...) import without torch; ``CropConfig``, ``SyntheticPairs`` and
``PairedFolder`` (in ``datasets``) import torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ndr_edge.data.eval_set import EvalSample, centre_crop, sample_seed, spread_crops, synthetic_eval_set
from ndr_edge.data.folders import LAYOUTS, PAIR_LAYOUTS, Pair, find_pairs, load_clean_folder, load_pair, resolve_layout

if TYPE_CHECKING:
    from ndr_edge.data.datasets import CropConfig, PairedFolder, SyntheticPairs

_TORCH_NAMES = ("CropConfig", "SyntheticPairs", "PairedFolder")

__all__ = [
    "LAYOUTS",
    "PAIR_LAYOUTS",
    "CropConfig",
    "EvalSample",
    "Pair",
    "PairedFolder",
    "SyntheticPairs",
    "centre_crop",
    "find_pairs",
    "load_clean_folder",
    "load_pair",
    "resolve_layout",
    "sample_seed",
    "spread_crops",
    "synthetic_eval_set",
]


def __getattr__(name: str) -> Any:
    if name in _TORCH_NAMES:
        from ndr_edge.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
