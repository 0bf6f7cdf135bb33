"""Image folders on disk: clean folders, and degraded/clean pairs in the layouts the
benchmarks ship. Torch-free (``datasets.PairedFolder`` wraps this for PyTorch).

Pair layouts (``root`` is the folder you pass):

- ``rain100l``: ``root/rainy/`` (or ``rain/``, ``input/``) and ``root/norain/`` (or
  ``target/``, ``gt/``). Files pair by their stem after dropping a ``rain-`` / ``norain-``
  prefix (and JORDER's ``x2`` suffix), numbers compared as numbers: ``rain-001.png`` <->
  ``norain-001.png`` <-> ``norain-1.png``; identical names pair too.
- ``sots``: ``root/hazy/`` and ``root/gt/`` (or ``clear/``); a hazy file pairs with the clean
  one whose id is the part before the first underscore (``0001_0.8_0.2.jpg`` <-> ``0001.png``);
  several hazy versions of one clean image are allowed. A clean image larger than its hazy one
  by an even border (RESIDE indoor: 640x480 vs 620x460) is centre-cropped to the hazy size.
- ``pairs``: ``root/lq/`` and ``root/gt/`` with identical stems (suffixes may differ).
- ``auto``: the first of sots, rain100l, pairs whose folders exist.

Every degraded file must have a clean partner and every clean file must be used; anything
else raises ``InputError`` naming the folder and the first unpaired files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ndr_edge.errors import InputError
from ndr_edge.frames import to_float
from ndr_edge.imageio import list_images, read_image

PAIR_LAYOUTS: tuple[str, ...] = ("rain100l", "sots", "pairs")
LAYOUTS: tuple[str, ...] = ("auto", *PAIR_LAYOUTS)

# layout -> (candidate degraded folder names, candidate clean folder names)
_FOLDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sots": (("hazy",), ("gt", "clear")),
    "rain100l": (("rainy", "rain", "input"), ("norain", "target", "gt")),
    "pairs": (("lq",), ("gt",)),
}
_SHOW = 5  # unpaired files named in an error


def load_clean_folder(folder: str | os.PathLike[str]) -> list[tuple[str, np.ndarray]]:
    """(stem, uint8 HxWx3 RGB) for every image directly inside ``folder``, sorted by name."""
    return [(path.stem, read_image(path)) for path in list_images(folder)]


def _numeric(key: str) -> str:
    return str(int(key)) if key.isdigit() else key


def _rain_key(stem: str) -> str:
    key = stem.lower()
    for prefix in ("norain-", "norain_", "rain-", "rain_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    key = re.sub(r"(?<=\d)x2$", "", key)
    return _numeric(key)


def _sots_key(stem: str) -> str:
    return _numeric(stem.split("_", 1)[0])


def _same_key(stem: str) -> str:
    return stem


_KEYS: dict[str, Callable[[str], str]] = {"rain100l": _rain_key, "sots": _sots_key, "pairs": _same_key}


@dataclass(frozen=True)
class Pair:
    name: str  # the degraded file's stem
    lq: Path
    gt: Path


def _subfolder(root: Path, names: tuple[str, ...]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def resolve_layout(root: str | os.PathLike[str], layout: str = "auto") -> tuple[str, Path, Path]:
    """(layout, degraded folder, clean folder) for ``root``; ``InputError`` when the
    folders are missing or the layout is unknown."""
    base = Path(root)
    if layout not in LAYOUTS:
        raise InputError(f"unknown pair layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if not base.is_dir():
        raise InputError(f"{base}: paired-data folder not found (or not a folder)")
    candidates = [k for k in _FOLDERS if layout in ("auto", k)]
    for name in candidates:
        lq_dir, gt_dir = _subfolder(base, _FOLDERS[name][0]), _subfolder(base, _FOLDERS[name][1])
        if lq_dir is not None and gt_dir is not None:
            return name, lq_dir, gt_dir
    expected = "; ".join(f"{k}: {'|'.join(_FOLDERS[k][0])}/ + {'|'.join(_FOLDERS[k][1])}/" for k in candidates)
    raise InputError(f"{base}: no {layout} pair layout found; expected subfolders {expected}")


def find_pairs(root: str | os.PathLike[str], layout: str = "auto") -> tuple[str, list[Pair]]:
    """Resolve the layout and pair every degraded file with its clean partner (sorted by
    the degraded file's name). Returns (layout, pairs)."""
    name, lq_dir, gt_dir = resolve_layout(root, layout)
    key = _KEYS[name]
    lq_files, gt_files = list_images(lq_dir), list_images(gt_dir)
    by_key: dict[str, Path] = {}
    for gt in gt_files:
        k = key(gt.stem)
        if k in by_key:
            raise InputError(f"{gt_dir}: {by_key[k].name} and {gt.name} both pair as {k!r}; remove one")
        by_key[k] = gt
    pairs: list[Pair] = []
    used: dict[str, Path] = {}
    orphans: list[str] = []
    for lq in lq_files:
        k = key(lq.stem)
        partner = by_key.get(k)
        if partner is None:
            orphans.append(lq.name)
            continue
        if k in used and name != "sots":
            raise InputError(f"{lq_dir}: {used[k].name} and {lq.name} both pair with {partner.name}; remove one")
        used[k] = lq
        pairs.append(Pair(lq.stem, lq, partner))
    unused = [gt.name for k, gt in by_key.items() if k not in used]
    if orphans or unused:
        parts = []
        if orphans:
            parts.append(f"{len(orphans)} in {lq_dir.name}/ without a partner ({', '.join(orphans[:_SHOW])}"
                         f"{', ...' if len(orphans) > _SHOW else ''})")
        if unused:
            parts.append(f"{len(unused)} in {gt_dir.name}/ without a partner ({', '.join(unused[:_SHOW])}"
                         f"{', ...' if len(unused) > _SHOW else ''})")
        raise InputError(f"{Path(root)}: unpaired files in the {name} layout: {'; '.join(parts)}")
    return name, pairs


def load_pair(pair: Pair, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """(lq, gt) as float32 HxWx3 RGB on [0, 1]; same size or ``InputError`` (SOTS: an even
    border on the clean image is centre-cropped away)."""
    lq, gt = to_float(read_image(pair.lq)), to_float(read_image(pair.gt))
    if lq.shape != gt.shape and layout == "sots":
        dh, dw = gt.shape[0] - lq.shape[0], gt.shape[1] - lq.shape[1]
        if dh >= 0 and dw >= 0 and dh % 2 == 0 and dw % 2 == 0:
            gt = gt[dh // 2: dh // 2 + lq.shape[0], dw // 2: dw // 2 + lq.shape[1]]
    if lq.shape != gt.shape:
        raise InputError(
            f"{pair.lq}: size {lq.shape[1]}x{lq.shape[0]} differs from its clean partner {pair.gt.name} "
            f"({gt.shape[1]}x{gt.shape[0]}); pairs must be aligned"
        )
    return lq, np.ascontiguousarray(gt)
