"""Tiled inference for frames larger than a tile, with overlap and smooth blending.

A frame is cut into ``tile x tile`` windows that overlap by at least ``overlap`` pixels
(the last window of a row or column is moved back to end at the frame's edge, so every
window has the same size and a batch of windows is one array). Each window's output is
weighted by a separable raised-cosine ramp over ``overlap`` pixels on the sides it shares
with a neighbour (flat 1 elsewhere, so frame borders are not attenuated), accumulated, and
normalised by the summed weights.

Memory is bounded by the tile, not the frame: tiles are read as views of the input frame,
converted a batch at a time, and blended into a band of ``tile`` rows; once a row of tiles
is done, the rows above the next row's start are final and written to the output frame.
Beyond the input and output frames themselves, the working set is one band
(``tile x width x 4`` float32) plus one batch of tiles and the backend's activations at the
tile size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ndr_edge.errors import InputError
from ndr_edge.export.variants import DEFAULT_OVERLAP, DEFAULT_TILE


@dataclass(frozen=True)
class TileConfig:
    """``tile``: window side in pixels (a multiple of the model's size multiple);
    ``overlap``: minimum overlap between neighbouring windows (blended over that width);
    ``batch``: windows per backend call."""

    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    batch: int = 1

    def validate(self, multiple: int = 8) -> TileConfig:
        if self.tile <= 0 or self.tile % multiple:
            raise InputError(f"tile size {self.tile} must be a positive multiple of {multiple} (the model's size multiple)")
        if self.overlap < 0 or self.overlap * 2 > self.tile:
            raise InputError(f"overlap {self.overlap} must be between 0 and half the tile ({self.tile // 2})")
        if self.batch < 1:
            raise InputError(f"tile batch {self.batch} must be at least 1")
        return self

    def needed(self, height: int, width: int) -> bool:
        """Whether a frame of this size is larger than one tile."""
        return height > self.tile or width > self.tile


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis: stride ``tile - overlap``, the last window flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def blend_ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D window weights: a raised cosine over ``overlap`` pixels at the sides that meet a
    neighbour, 1 elsewhere; strictly positive so every pixel has a defined blend."""
    weights = np.ones(length, dtype=np.float32)
    ramp_len = min(overlap, length // 2)
    if ramp_len > 0:
        ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(ramp_len, dtype=np.float32) + 0.5) / ramp_len)).astype(np.float32)
        if ramp_start:
            weights[:ramp_len] = ramp
        if ramp_end:
            weights[length - ramp_len :] = ramp[::-1]
    return weights


@dataclass(frozen=True)
class Tile:
    y: int
    x: int
    h: int
    w: int


def tile_rows(height: int, width: int, config: TileConfig) -> Iterator[list[Tile]]:
    """The tiles of a frame, one list per row of tiles, top to bottom."""
    ys = tile_starts(height, config.tile, config.overlap)
    xs = tile_starts(width, config.tile, config.overlap)
    th, tw = min(config.tile, height), min(config.tile, width)
    for y in ys:
        yield [Tile(y, x, th, tw) for x in xs]


# Runs a list of same-sized HxWx3 tiles (views of the input frame) through the model and
# returns the restored tiles as float32 HxWx3 in the caller's channel order.
TileRunner = Callable[[list[np.ndarray]], list[np.ndarray]]


def restore_tiled(
    frame: np.ndarray, run_tiles: TileRunner, config: TileConfig, finish: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """Restore ``frame`` (HxWx3) tile by tile. ``run_tiles`` restores a batch of tiles;
    ``finish`` turns blended float32 rows into the output dtype (e.g. to uint8); it may
    modify the rows it is given in place."""
    height, width = frame.shape[:2]
    ys = tile_starts(height, config.tile, config.overlap)
    xs = tile_starts(width, config.tile, config.overlap)
    th, tw = min(config.tile, height), min(config.tile, width)
    col_weights = [blend_ramp(tw, config.overlap, i > 0, i < len(xs) - 1) for i in range(len(xs))]
    output: np.ndarray | None = None
    band = np.zeros((th, width, 3), dtype=np.float32)
    band_weight = np.zeros((th, width), dtype=np.float32)
    for row, y in enumerate(ys):
        row_weight = blend_ramp(th, config.overlap, row > 0, row < len(ys) - 1)
        for first in range(0, len(xs), config.batch):
            group = xs[first : first + config.batch]
            restored = run_tiles([frame[y : y + th, x : x + tw] for x in group])
            for offset, (x, tile_out) in enumerate(zip(group, restored)):
                weight = row_weight[:, None] * col_weights[first + offset][None, :]
                band[:, x : x + tw] += tile_out * weight[..., None]
                band_weight[:, x : x + tw] += weight
        # Rows above the next tile row's start are final.
        next_y = ys[row + 1] if row + 1 < len(ys) else height
        done = next_y - y
        rows = band[:done]
        rows /= band_weight[:done, :, None]  # in place: these rows leave the band now
        final = finish(rows)
        if output is None:
            output = np.empty((height, width, 3), dtype=final.dtype)
        output[y:next_y] = final
        keep = th - done
        if keep > 0:
            band[:keep] = band[done:]
            band_weight[:keep] = band_weight[done:]
        band[keep:] = 0.0
        band_weight[keep:] = 0.0
    assert output is not None
    return output
