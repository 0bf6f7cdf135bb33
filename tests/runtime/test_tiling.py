"""Tiling: geometry, exact blending, tile-sized batches, bounded memory, and agreement with
whole-frame inference on the real NDR model."""

from __future__ import annotations

import itertools
import tracemalloc

import numpy as np
import pytest

from ndr_edge.errors import InputError
from ndr_edge.runtime import Restorer, TileConfig, tile_starts
from ndr_edge.runtime.tiling import blend_ramp


@pytest.mark.parametrize("length,tile,overlap", [(100, 32, 8), (512, 512, 32), (513, 512, 32), (1000, 128, 0),
                                                 (40, 64, 16), (3840, 512, 32)])
def test_windows_cover_the_axis_with_the_overlap(length, tile, overlap) -> None:
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length
    assert all(b > a for a, b in itertools.pairwise(starts))
    assert all(a + size - b >= overlap for a, b in itertools.pairwise(starts))  # at least `overlap` shared


def test_blend_ramp_is_positive_and_flat_at_frame_borders() -> None:
    w = blend_ramp(64, 16, ramp_start=False, ramp_end=True)
    assert w[0] == 1.0 and w.min() > 0 and w[-1] < 0.05
    assert np.all(np.diff(w[-16:]) < 0)


@pytest.mark.parametrize("shape,config", [((100, 130, 3), TileConfig(32, 8, 3)), ((37, 200, 3), TileConfig(64, 16, 2)),
                                          ((64, 64, 3), TileConfig(64, 16, 1)), ((81, 95, 3), TileConfig(40, 0, 4))])
def test_tiling_an_identity_model_is_exact(numpy_backend, rng, shape, config) -> None:
    frame = rng.random(shape, dtype=np.float32)
    backend = numpy_backend()
    out = Restorer(backend).restore(frame, tile=config)
    np.testing.assert_allclose(out, frame, atol=2e-6)
    # every call is one batch of whole tiles, never the frame
    side_h, side_w = min(config.tile, shape[0]), min(config.tile, shape[1])
    pad = lambda n: n + (-n) % 8
    for n, c, h, w in backend.shapes:
        assert 1 <= n <= config.batch and c == 3 and (h, w) == (pad(side_h), pad(side_w))


def test_local_operator_tiled_matches_whole_frame(tiny_model, rng) -> None:
    # multiples of 8, so the whole frame is not padded and only tile edges differ
    frame = rng.integers(0, 256, (152, 216, 3), dtype=np.uint8)
    with Restorer.open(tiny_model("blur")) as restorer:
        whole = restorer.restore(frame, tile=False)
        tiled = restorer.restore(frame, tile=TileConfig(64, 16, 4))
    diff = np.abs(whole.astype(int) - tiled.astype(int))
    assert diff.max() <= 1  # the blend hides tile-edge padding completely at this overlap


def test_auto_tiling_only_for_frames_larger_than_a_tile(numpy_backend) -> None:
    backend = numpy_backend()
    restorer = Restorer(backend, tiling=TileConfig(64, 16, 1))
    restorer.restore(np.zeros((64, 64, 3), np.uint8))
    assert backend.shapes == [(1, 3, 64, 64)]
    backend.shapes.clear()
    restorer.restore(np.zeros((64, 100, 3), np.uint8))
    assert backend.shapes == [(1, 3, 64, 64)] * 2
    backend.shapes.clear()
    restorer.restore(np.zeros((64, 100, 3), np.uint8), tile=False)
    assert backend.shapes == [(1, 3, 64, 104)]
    backend.shapes.clear()
    Restorer(backend, tiling=TileConfig(64, 16, 1), auto_tile=False).restore(np.zeros((64, 100, 3), np.uint8))
    assert backend.shapes == [(1, 3, 64, 104)]


@pytest.mark.parametrize("config,match", [(TileConfig(100, 8), "multiple of 8"), (TileConfig(64, 40), "half the tile"),
                                          (TileConfig(64, 8, 0), "at least 1"), (TileConfig(0, 0), "multiple")])
def test_bad_tile_configs(numpy_backend, config, match) -> None:
    restorer = Restorer(numpy_backend())
    with pytest.raises(InputError, match=match):
        restorer.restore(np.zeros((200, 200, 3), np.uint8), tile=config)


def _peak_bytes(func) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        func()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_tiled_memory_is_bounded_by_the_tile_not_the_frame(numpy_backend) -> None:
    """Peak numpy memory beyond the output frame stays flat as the frame grows (the band is
    one tile high), and is far below whole-frame inference."""
    config = TileConfig(128, 16, 2)
    extra = {}
    for height in (768, 1536):
        frame = np.zeros((height, 1024, 3), np.uint8)
        restorer = Restorer(numpy_backend(), tiling=config)
        peak = _peak_bytes(lambda restorer=restorer, frame=frame: restorer.restore(frame))
        extra[height] = peak - frame.nbytes  # minus the output frame itself
    whole_frame = np.zeros((1536, 1024, 3), np.uint8)
    whole = _peak_bytes(lambda: Restorer(numpy_backend()).restore(whole_frame, tile=False))
    band = config.tile * 1024 * 16  # float32 rows + weights
    tiles = config.batch * 3 * config.tile**2 * 4  # one float32 batch of tiles
    assert extra[1536] < 1.15 * extra[768]  # flat: doubling the frame height adds nothing
    assert extra[1536] < 1.5 * band + 8 * tiles
    assert extra[1536] * 4 < whole


def test_ndr_model_tiled_agrees_with_whole_frame(ndr_onnx, record_property) -> None:
    """Tiled vs whole-frame output of the real NDR graph on a real photo (scikit-image's).
    The network has global operations (channel attention, the degradation query), so tiles
    see different statistics than the whole frame: agreement is high, not exact."""
    from ndr_edge.imageio import demo_images
    from ndr_edge.metrics import psnr_between

    name, photo = demo_images("heldout")[0]
    crop = np.ascontiguousarray(photo[:160, :224])
    with Restorer.open(ndr_onnx) as restorer:
        whole = restorer.restore(crop, tile=False)
        tiled = restorer.restore(crop, tile=TileConfig(96, 32, 4))
    score = psnr_between(tiled / 255.0, whole / 255.0)
    record_property("tiled_vs_whole_psnr_db", round(score, 2))
    print(f"\n{name} 160x224, tile 96 overlap 32: tiled vs whole PSNR {score:.2f} dB")
    assert score > 35.0
