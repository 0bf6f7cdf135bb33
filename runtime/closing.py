"""The context-manager protocol of every runtime object whose contract is ``close()``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from typing_extensions import Self


class Closing:
    """``with obj: ...`` calls ``obj.close()`` on the way out, error or not."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class OrderedStream(Closing):
    """What every in-order frame stream shares (``StreamRestorer``, ``RemoteStream``):
    ``run`` over an iterable, latency statistics, ``closed``. Subclasses provide ``push``,
    ``pull``, ``in_flight``, ``depth``, ``_stats`` (a ``LatencyStats``) and ``_closed``."""

    depth: int
    _closed: bool
    _stats: Any

    def push(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def pull(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        raise NotImplementedError

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Restore an iterable of frames, yielding results in order (``depth`` in flight)."""
        from ndr_edge.errors import InputError

        if self.in_flight:
            raise InputError("run() on a stream with pushed frames not pulled; pull them first")
        for frame in frames:
            self.push(frame)
            while self.in_flight > self.depth:
                yield self.pull()
        while self.in_flight:
            yield self.pull()

    def stats(self) -> Any:
        """Per-frame latency (push to result ready) and FPS so far (a ``LatencySummary``)."""
        return self._stats.summary()

    def reset_stats(self) -> None:
        self._stats.reset()

    @property
    def closed(self) -> bool:
        return self._closed
