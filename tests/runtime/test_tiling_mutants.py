"""Tiling (``ndr_edge.runtime.tiling``) against an independent whole-frame reference of the
blend: every tile's output weighted by a raised cosine over ``overlap`` pixels on the sides it
shares with a neighbour, summed, divided by the summed weights. The tile runner here returns
something different per tile, so a wrong weight, window or band shift shows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ndr_edge.errors import InputError
from ndr_edge.runtime.tiling import Tile, TileConfig, blend_ramp, restore_tiled, tile_rows, tile_starts


def _ramp(length: int, overlap: int, start: bool, end: bool) -> np.ndarray:
    n = min(overlap, length // 2)
    w = np.ones(length)
    for i in range(n):
        value = 0.5 - 0.5 * math.cos(math.pi * (i + 0.5) / n)
        if start:
            w[i] = value
        if end:
            w[length - 1 - i] = value
    return w


def _reference(frame: np.ndarray, config: TileConfig, tile_fn) -> np.ndarray:
    h, w = frame.shape[:2]
    th, tw = min(config.tile, h), min(config.tile, w)
    ys, xs = tile_starts(h, config.tile, config.overlap), tile_starts(w, config.tile, config.overlap)
    acc = np.zeros((h, w, 3))
    weight = np.zeros((h, w))
    for r, y in enumerate(ys):
        for c, x in enumerate(xs):
            wt = np.outer(_ramp(th, config.overlap, r > 0, r < len(ys) - 1),
                          _ramp(tw, config.overlap, c > 0, c < len(xs) - 1))
            acc[y:y + th, x:x + tw] += tile_fn(frame[y:y + th, x:x + tw], y, x) * wt[..., None]
            weight[y:y + th, x:x + tw] += wt
    return acc / weight[..., None]


def test_tile_starts_exact() -> None:
    assert tile_starts(100, 32, 8) == [0, 24, 48, 68]
    assert tile_starts(64, 64, 16) == [0]  # a frame exactly one tile long
    assert tile_starts(65, 64, 16) == [0, 1]
    assert tile_starts(10, 64, 16) == [0]
    assert tile_starts(128, 64, 0) == [0, 64]
    assert tile_starts(129, 64, 0) == [0, 64, 65]


@pytest.mark.parametrize(("length", "overlap", "start", "end"), [(64, 16, True, True), (64, 16, False, True),
                                                                 (64, 16, True, False), (64, 16, False, False),
                                                                 (20, 16, True, True), (7, 16, True, False),
                                                                 (32, 0, True, True), (1, 4, True, True)])
def test_blend_ramp_is_the_raised_cosine(length: int, overlap: int, start: bool, end: bool) -> None:
    weights = blend_ramp(length, overlap, start, end)
    assert weights.dtype == np.float32 and weights.shape == (length,)
    np.testing.assert_allclose(weights, _ramp(length, overlap, start, end), rtol=0, atol=1e-7)
    assert weights.min() > 0


def test_tile_config_validation_messages() -> None:
    assert TileConfig(64, 32, 1).validate() == TileConfig(64, 32, 1)  # overlap = half the tile is allowed
    assert TileConfig(48, 0, 1).validate(multiple=16) == TileConfig(48, 0, 1)
    cases = [(TileConfig(100, 8), 8, "tile size 100 must be a positive multiple of 8 (the model's size multiple)"),
             (TileConfig(-8, 0), 8, "tile size -8 must be a positive multiple of 8 (the model's size multiple)"),
             (TileConfig(0, 0), 8, "tile size 0 must be a positive multiple of 8 (the model's size multiple)"),
             (TileConfig(40, 0), 16, "tile size 40 must be a positive multiple of 16 (the model's size multiple)"),
             (TileConfig(64, 33), 8, "overlap 33 must be between 0 and half the tile (32)"),
             (TileConfig(64, -1), 8, "overlap -1 must be between 0 and half the tile (32)"),
             (TileConfig(64, 8, 0), 8, "tile batch 0 must be at least 1")]
    for config, multiple, message in cases:
        with pytest.raises(InputError) as caught:
            config.validate(multiple)
        assert str(caught.value) == message


def test_needed_only_beyond_one_tile() -> None:
    config = TileConfig(64, 16)
    assert not config.needed(64, 64) and not config.needed(10, 64)
    assert config.needed(65, 64) and config.needed(64, 65)


def test_tile_rows() -> None:
    rows = list(tile_rows(100, 40, TileConfig(32, 8)))
    assert rows == [[Tile(y, x, 32, 32) for x in (0, 8)] for y in (0, 24, 48, 68)]
    assert list(tile_rows(20, 30, TileConfig(32, 8))) == [[Tile(0, 0, 20, 30)]]


@pytest.mark.parametrize(("shape", "config"), [((100, 130), TileConfig(32, 8, 3)), ((70, 40), TileConfig(32, 16, 2)),
                                               ((64, 150), TileConfig(64, 16, 4)), ((81, 95), TileConfig(40, 0, 1)),
                                               ((40, 40), TileConfig(64, 16, 1)), ((33, 90), TileConfig(32, 4, 2))])
def test_restore_tiled_is_the_weighted_blend(shape: tuple[int, int], config: TileConfig) -> None:
    rng = np.random.default_rng(shape[0])
    frame = rng.random((*shape, 3), dtype=np.float32)

    # a per-tile answer: the tile scaled, plus a gradient that depends on where the tile sits
    def tile_fn(tile: np.ndarray, y: int, x: int) -> np.ndarray:
        yy, xx = np.mgrid[0:tile.shape[0], 0:tile.shape[1]]
        return 2.0 * tile + ((y + 1) * 0.01 + (x + 1) * 0.001 + 1e-4 * (yy + xx))[..., None]

    calls: list[int] = []

    def run_tiles(tiles: list[np.ndarray]) -> list[np.ndarray]:
        calls.append(len(tiles))
        out = []
        for t in tiles:
            base = t.__array_interface__["data"][0] - frame.__array_interface__["data"][0]
            y, x = divmod(base // (3 * 4), shape[1])  # where the view starts in the frame
            out.append(tile_fn(t, y, x).astype(np.float32))
        return out

    seen: list[np.ndarray] = []

    def finish(rows: np.ndarray) -> np.ndarray:
        seen.append(rows.copy())
        return rows.astype(np.float64)

    out = restore_tiled(frame, run_tiles, config, finish)
    np.testing.assert_allclose(out, _reference(frame, config, tile_fn), rtol=0, atol=2e-6)
    assert out.dtype == np.float64  # the output takes finish's dtype
    assert sum(len(r) for r in seen) == shape[0]  # each output row is finished exactly once
    xs = tile_starts(shape[1], config.tile, config.overlap)
    ys = tile_starts(shape[0], config.tile, config.overlap)
    per_row = [min(config.batch, len(xs) - i) for i in range(0, len(xs), config.batch)]
    assert calls == per_row * len(ys)
