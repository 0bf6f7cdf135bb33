"""Streaming: order, push/pull and iterator APIs, statistics, closed streams, bad frames."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_edge.errors import InputError
from ndr_edge.runtime import Restorer, StreamClosedError, TileConfig


def _frames(count: int, shape=(16, 24, 3)) -> list[np.ndarray]:
    return [np.full(shape, i % 256, dtype=np.uint8) for i in range(count)]


def test_iterator_keeps_the_order_and_reports_stats(tiny_model) -> None:
    frames = _frames(40)
    with Restorer.open(tiny_model("identity")) as restorer, restorer.stream(channel_order="BGR", depth=3) as stream:
        outputs = list(stream.run(iter(frames)))
        stats = stream.stats()
    assert [int(o[0, 0, 0]) for o in outputs] == list(range(40))
    assert stats.frames == 40 and stats.fps > 0
    assert 0 < stats.p50_ms <= stats.p95_ms <= stats.max_ms
    assert "FPS" in stats.line()


def test_push_pull_in_order_with_mixed_sizes_and_tiled_frames(numpy_backend) -> None:
    restorer = Restorer(numpy_backend(), tiling=TileConfig(32, 8, 2))
    shapes = [(16, 16, 3), (40, 72, 3), (8, 8, 3), (64, 33, 3), (16, 16, 3)]  # two of them tiled
    with restorer.stream() as stream:
        for i, shape in enumerate(shapes):
            assert stream.push(np.full(shape, i * 10, np.uint8)) == i
        assert stream.in_flight == len(shapes)
        outputs = [stream.pull(timeout=30) for _ in shapes]
    assert [o.shape for o in outputs] == shapes
    assert [int(o.max()) for o in outputs] == [0, 10, 20, 30, 40]


def test_bad_frames_are_refused_at_push_and_the_stream_goes_on(tiny_model) -> None:
    with Restorer.open(tiny_model("identity")) as restorer, restorer.stream() as stream:
        for bad in (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8), np.zeros((0, 8, 3), np.uint8),
                    np.zeros((8, 8, 3), np.int64), np.full((8, 8, 3), np.inf, np.float32)):
            with pytest.raises(InputError):
                stream.push(bad)
        assert stream.in_flight == 0
        with pytest.raises(InputError, match="push a frame first"):
            stream.pull()
        stream.push(np.full((8, 8, 3), 7, np.uint8))
        assert int(stream.pull(timeout=30)[0, 0, 0]) == 7


def test_an_error_while_restoring_is_raised_for_that_frame_only(numpy_backend) -> None:
    def fail_on_wide(batch: np.ndarray) -> np.ndarray:
        if batch.shape[-1] > 32:
            raise InputError("too wide for this backend")
        return batch.copy()

    restorer = Restorer(numpy_backend(fail_on_wide), auto_tile=False)
    with restorer.stream() as stream:
        stream.push(np.full((8, 8, 3), 1, np.uint8))
        stream.push(np.full((8, 64, 3), 2, np.uint8))
        stream.push(np.full((8, 8, 3), 3, np.uint8))
        assert int(stream.pull(timeout=30)[0, 0, 0]) == 1
        with pytest.raises(InputError, match="too wide"):
            stream.pull(timeout=30)
        assert int(stream.pull(timeout=30)[0, 0, 0]) == 3


def test_closed_stream(tiny_model) -> None:
    restorer = Restorer.open(tiny_model("identity"))
    stream = restorer.stream()
    stream.push(np.full((8, 8, 3), 5, np.uint8))
    stream.close()
    stream.close()  # idempotent
    assert stream.closed
    with pytest.raises(StreamClosedError, match="closed"):
        stream.push(np.zeros((8, 8, 3), np.uint8))
    assert int(stream.pull(timeout=30)[0, 0, 0]) == 5  # what was pushed before close() still comes out
    with pytest.raises(StreamClosedError):
        stream.pull()
    # the restorer is not broken by a closed stream
    with restorer.stream() as again:
        assert next(iter(again.run([np.full((8, 8, 3), 9, np.uint8)])))[0, 0, 0] == 9
    restorer.close()


def test_stream_settings_are_checked(tiny_model) -> None:
    with Restorer.open(tiny_model("identity")) as restorer:
        with pytest.raises(InputError, match="channel_order"):
            restorer.stream(channel_order="YUV")
        with pytest.raises(InputError, match="depth"):
            restorer.stream(depth=0)
        with pytest.raises(InputError, match="multiple of 8"):
            restorer.stream(tile=TileConfig(30, 4))


def test_short_soak_does_not_grow_memory(numpy_backend) -> None:
    """Python-side memory of a long-running stream is flat (statistics keep a bounded window,
    nothing is retained per frame). The 10,000-frame soak on the real model is in
    benchmarks/runtime_bench.py."""
    import itertools
    import tracemalloc

    frames = _frames(4, shape=(16, 16, 3))
    restorer = Restorer(numpy_backend(record=False))  # the test backend's own log would grow
    tracemalloc.start()
    try:
        with restorer.stream(depth=2) as stream:
            results = stream.run(itertools.cycle(frames))
            for _ in range(3000):  # past the statistics window (2048)
                next(results)
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(3000):
                next(results)
            after = tracemalloc.get_traced_memory()[0]
            results.close()
    finally:
        tracemalloc.stop()
    assert stream.stats().frames >= 6000
    assert after - before < 64 * 1024, f"grew by {after - before} bytes over 3000 frames"

