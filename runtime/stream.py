"""Streaming restoration for camera pipelines: frames in, restored frames out, in order.

Two ways to drive it:

- iterator: ``for clean in stream.run(frames): ...`` (any iterable of frames, e.g. a
  :class:`~.video.VideoSource`); at most ``depth + 1`` frames are in flight.
- push/pull: ``stream.push(frame)`` then ``stream.pull()``; results come back in push order.

A worker thread runs the model while the caller's thread decodes or displays the next
frame. Whole frames are *submitted* to the backend ``depth`` deep: on TensorRT the next
frame's upload overlaps the current inference (double-buffered pinned buffers and CUDA
streams, see :mod:`.tensorrt_backend`); on ONNX Runtime the overlap is the caller's
decoding/preprocessing against inference (ONNX Runtime releases the GIL while it runs).
Frames that need tiling run tile by tile, still in order.

Errors: a bad frame is refused by :meth:`push` at once (nothing is queued, the stream goes
on); an error while restoring a frame is raised by the :meth:`pull` for that frame, and the
stream goes on with the next. After :meth:`close`, ``push`` raises :class:`StreamClosedError`
and ``pull`` returns what is still queued, then raises it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ndr_edge.errors import InputError, NDREdgeError, StreamClosedError
from ndr_edge.frames import check_channel_order, check_finite, check_frame
from ndr_edge.runtime.backend import PendingBatch
from ndr_edge.runtime.closing import OrderedStream
from ndr_edge.runtime.prepared import FrameRestorer, Prepared
from ndr_edge.runtime.stats import LatencyStats
from ndr_edge.runtime.tiling import TileConfig

_END = object()


@dataclass
class _Outcome:
    seq: int
    frame: np.ndarray | None
    error: BaseException | None


class StreamRestorer(OrderedStream):
    """Ordered, pipelined restoration of a sequence of frames (see the module docstring)."""

    def __init__(
        self, restorer: FrameRestorer, channel_order: str = "RGB", tile: TileConfig | bool | None = None, depth: int = 2
    ) -> None:
        check_channel_order(channel_order, "channel_order")
        if depth < 1:
            raise InputError(f"stream depth must be at least 1, got {depth}")
        if isinstance(tile, TileConfig):
            tile = restorer.check_tiling(tile)
        self.restorer = restorer
        self.channel_order = channel_order
        self.tile = tile
        self.depth = depth
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._stats = LatencyStats()
        self._pushed = 0
        self._pulled = 0
        self._closed = False
        self._fatal: BaseException | None = None
        self._lock = threading.Lock()
        self._worker = threading.Thread(target=self._work, name="ndr-stream", daemon=True)
        self._worker.start()

    # -- worker -----------------------------------------------------------------------
    def _work(self) -> None:
        restorer = self.restorer
        pending: deque[tuple[int, float, Prepared, PendingBatch]] = deque()

        def emit_oldest() -> None:
            seq, pushed_at, prepared, job = pending.popleft()
            try:
                self._deliver(seq, pushed_at, restorer.finish(prepared, job.result()), None)
            except NDREdgeError as exc:
                self._deliver(seq, pushed_at, None, exc)

        try:
            while True:
                if pending:
                    try:
                        item = self._inbox.get_nowait()
                    except queue.Empty:
                        emit_oldest()
                        continue
                else:
                    item = self._inbox.get()
                if item is _END:
                    while pending:
                        emit_oldest()
                    return
                seq, pushed_at, frame = item
                try:
                    config = restorer.resolve_tiling(frame.shape, self.tile)
                    if config is None:
                        prepared = restorer.prepare(frame, self.channel_order)
                        while len(pending) >= self.depth:
                            emit_oldest()
                        pending.append((seq, pushed_at, prepared, restorer.submit(prepared)))
                    else:
                        while pending:  # keep the order
                            emit_oldest()
                        self._deliver(seq, pushed_at, restorer.restore(frame, self.channel_order, tile=config), None)
                except NDREdgeError as exc:
                    while pending:
                        emit_oldest()
                    self._deliver(seq, pushed_at, None, exc)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who re-raises it
            self._fatal = exc
            while pending:
                seq, pushed_at, _, _ = pending.popleft()
                self._deliver(seq, pushed_at, None, exc)
        finally:
            self._outbox.put(_END)

    def _deliver(self, seq: int, pushed_at: float, frame: np.ndarray | None, error: BaseException | None) -> None:
        if frame is not None:
            now = time.perf_counter()
            self._stats.record(now - pushed_at, done_at=now)
        self._outbox.put(_Outcome(seq, frame, error))

    # -- push / pull ------------------------------------------------------------------
    def push(self, frame: np.ndarray) -> int:
        """Queue one HxWx3 frame (blocks while ``depth`` frames wait); returns its index.
        A frame that cannot be restored is refused here with InputError, nothing queued."""
        if self._closed:
            raise StreamClosedError("stream is closed; open a new one with Restorer.stream()")
        if self._fatal is not None:
            raise StreamClosedError(f"stream stopped after an internal error ({self._fatal!r}); open a new one")
        check_finite(check_frame(frame))
        with self._lock:
            seq = self._pushed
            self._pushed += 1
        now = time.perf_counter()
        self._stats.start(now)
        self._inbox.put((seq, now, frame))
        return seq

    @property
    def in_flight(self) -> int:
        """Frames pushed and not pulled yet."""
        return self._pushed - self._pulled

    def pull(self, timeout: float | None = None) -> np.ndarray:
        """The next restored frame in push order (waits for it). Raises the error of that
        frame if restoring it failed, InputError if nothing is in flight, StreamClosedError
        once a closed stream is drained, TimeoutError after ``timeout`` seconds."""
        if self._pulled >= self._pushed:
            if self._closed or self._fatal is not None:
                raise StreamClosedError("stream is closed and every frame has been pulled")
            raise InputError("pull() with no frame in flight; push a frame first")
        try:
            item = self._outbox.get(timeout=timeout)
        except queue.Empty as exc:
            raise TimeoutError(f"no restored frame within {timeout} s") from exc
        if item is _END:  # the worker stopped before this frame
            self._outbox.put(_END)
            raise StreamClosedError(f"stream stopped before frame {self._pulled} ({self._fatal!r})")
        self._pulled += 1
        if item.error is not None:
            raise item.error
        assert item.frame is not None
        return item.frame


    def close(self, timeout: float | None = None) -> None:
        """Stop taking frames; frames already pushed are still restored and can be pulled."""
        if self._closed:
            return
        self._closed = True
        if self._worker.is_alive():
            self._inbox.put(_END)
            self._worker.join(timeout)

