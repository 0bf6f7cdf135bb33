"""Latency and throughput statistics with bounded memory (a running count/sum/max plus a
window of recent samples for percentiles), so a stream can run for days without growing."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

WINDOW = 2048


@dataclass(frozen=True)
class LatencySummary:
    """Per-frame latency in milliseconds (percentiles over the last ``window`` frames) and
    throughput over the whole run."""

    frames: int
    fps: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    wall_s: float
    window: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if not self.frames:
            return "no frames"
        return (
            f"{self.frames} frames in {self.wall_s:.2f} s: {self.fps:.2f} FPS, latency mean {self.mean_ms:.1f} ms, "
            f"p50 {self.p50_ms:.1f} ms, p95 {self.p95_ms:.1f} ms, max {self.max_ms:.1f} ms"
        )


class LatencyStats:
    """Thread-safe accumulator: :meth:`record` each frame's latency (seconds)."""

    def __init__(self, window: int = WINDOW) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=window)
        self._window = window
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()
            self._count = 0
            self._total = 0.0
            self._min = float("inf")
            self._max = 0.0
            self._first: float | None = None
            self._last: float | None = None

    def start(self, when: float | None = None) -> None:
        """Mark the start of the run (first frame in) if not marked yet."""
        with self._lock:
            if self._first is None:
                self._first = time.perf_counter() if when is None else when

    def record(self, seconds: float, done_at: float | None = None) -> None:
        now = time.perf_counter() if done_at is None else done_at
        with self._lock:
            if self._first is None:
                self._first = now - seconds
            self._last = now
            self._count += 1
            self._total += seconds
            self._min = min(self._min, seconds)
            self._max = max(self._max, seconds)
            self._recent.append(seconds)

    def summary(self) -> LatencySummary:
        with self._lock:
            count = self._count
            if not count:
                return LatencySummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, self._window)
            recent = np.fromiter(self._recent, dtype=np.float64) * 1e3
            wall = max((self._last or 0.0) - (self._first or 0.0), 1e-9)
            return LatencySummary(
                frames=count,
                fps=count / wall,
                mean_ms=self._total / count * 1e3,
                p50_ms=float(np.percentile(recent, 50)),
                p95_ms=float(np.percentile(recent, 95)),
                min_ms=self._min * 1e3,
                max_ms=self._max * 1e3,
                wall_s=wall,
                window=self._window,
            )
