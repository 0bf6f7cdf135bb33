"""Feed a calibration set to ONNX Runtime's static quantisation, streaming from disk."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from ndr_edge.artifact import INPUT_NAME
from ndr_edge.calibration.reader import CalibrationSet
from ndr_edge.errors import InputError


class SetDataReader(CalibrationDataReader):
    """``get_next()`` returns ``{"input": float32 NCHW batch}`` in the model's channel order, then None.

    Batches are read lazily from the set's memory-mapped shards; ``rewind()`` starts over,
    and ``set_range()``/``len()`` let ONNX Runtime calibrate in bounded chunks
    (``CalibStridedMinMax``), which keeps its collected activations small for large sets.
    Units of ``len``/``set_range`` are batches.
    """

    def __init__(
        self,
        calib: CalibrationSet,
        channel_order: str = "BGR",
        batch_size: int = 1,
        input_name: str = INPUT_NAME,
        limit: int | None = None,
        on_batch: Callable[[], object] | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        self.calib = calib
        self.channel_order = channel_order
        self.batch_size = batch_size
        self.input_name = input_name
        self.samples = len(calib) if limit is None else max(0, min(limit, len(calib)))
        self._start, self._stop = 0, len(self)
        self._batches: Iterator[np.ndarray] | None = None
        self.on_batch = on_batch

    def __len__(self) -> int:
        return (self.samples + self.batch_size - 1) // self.batch_size

    def set_range(self, start_index: int, end_index: int) -> None:
        self._start, self._stop = max(0, start_index), min(len(self), end_index)
        self._batches = None

    def rewind(self) -> None:
        self.set_range(0, len(self))

    def get_first(self) -> dict[str, np.ndarray] | None:
        """The first batch of the current range, without moving on (ModelOpt asks for it)."""
        start = self._start * self.batch_size
        batch = next(self.calib.iter_batches(self.batch_size, self.channel_order, start, start + self.batch_size), None)
        return None if batch is None else {self.input_name: batch}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._batches is None:
            start = self._start * self.batch_size
            stop = min(self.samples, self._stop * self.batch_size)
            self._batches = self.calib.iter_batches(self.batch_size, self.channel_order, start, stop)
        batch = next(self._batches, None)
        if batch is None:
            return None
        if self.on_batch is not None:
            self.on_batch()
        return {self.input_name: batch}
