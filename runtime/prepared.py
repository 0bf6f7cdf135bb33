"""What :mod:`.restorer` and :mod:`.stream` share: a frame prepared as a model batch, and the
restorer calls a stream makes (so the stream needs no import of the restorer)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ndr_edge.runtime.backend import PendingBatch
from ndr_edge.runtime.tiling import TileConfig


@dataclass(frozen=True)
class Prepared:
    """A frame turned into a model batch, with what is needed to turn the output back."""

    batch: np.ndarray  # float32 1x3xHpxWp, model order and range
    height: int
    width: int
    dtype: np.dtype[Any]
    channel_order: str


class FrameRestorer(Protocol):
    """The part of :class:`~.restorer.Restorer` a :class:`~.stream.StreamRestorer` drives."""

    def check_tiling(self, tiling: TileConfig) -> TileConfig: ...
    def resolve_tiling(self, frame_shape: tuple[int, ...], tile: TileConfig | bool | None) -> TileConfig | None: ...
    def prepare(self, frame: np.ndarray, channel_order: str = "RGB") -> Prepared: ...
    def submit(self, prepared: Prepared) -> PendingBatch: ...
    def finish(self, prepared: Prepared, output: np.ndarray) -> np.ndarray: ...
    def restore(self, frame: np.ndarray, channel_order: str = "RGB", tile: TileConfig | bool | None = None
                ) -> np.ndarray: ...
