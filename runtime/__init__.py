"""The lean, torch-free runtime that runs on the device.

Needs numpy and the backend in use, nothing more: ONNX Runtime (``pip install
onnxruntime``) or TensorRT + pycuda; OpenCV only for video, cameras and windows. Importing
this package imports none of them (nor torch): each is imported when it is first used.

>>> from ndr_edge.runtime import Restorer, TileConfig
>>> with Restorer.open("export/", precision="fp16") as restorer:        # or x.onnx / x.engine
...     clean = restorer.restore(frame, channel_order="BGR")             # uint8 HxWx3 -> uint8
...     big = restorer.restore(frame_4k, tile=TileConfig(512, 32, 4))    # tiled, 4 tiles a call
...     with restorer.stream(channel_order="BGR") as stream:             # camera pipelines
...         for out in stream.run(frames): ...
...     print(stream.stats().line())

Every model run in the project opens through :func:`open_backend` (``backends.py``), with
one settings dataclass per backend (:class:`OnnxRuntimeSettings`, :class:`TensorRTSettings`).
"""

from ndr_edge.export.variants import BACKEND_CHOICES, PRECISIONS
from ndr_edge.runtime.backend import Backend, BackendClosedError, InputLimits, PendingBatch
from ndr_edge.runtime.backends import OnnxRuntimeSettings, TensorRTSettings, backend_unavailable_reason, open_backend
from ndr_edge.runtime.engine_sidecar import EngineSidecar, check_compatibility, pick_profile
from ndr_edge.runtime.prepared import Prepared
from ndr_edge.runtime.restorer import Restorer, Selection, select_artifact
from ndr_edge.runtime.stats import LatencyStats, LatencySummary
from ndr_edge.runtime.stream import StreamClosedError, StreamRestorer
from ndr_edge.runtime.tiling import TileConfig, restore_tiled, tile_starts
from ndr_edge.runtime.video import VideoSource, VideoWriter, Window, parse_source

__all__ = [
    "BACKEND_CHOICES",
    "PRECISIONS",
    "Backend",
    "BackendClosedError",
    "EngineSidecar",
    "InputLimits",
    "LatencyStats",
    "LatencySummary",
    "OnnxRuntimeSettings",
    "PendingBatch",
    "Prepared",
    "Restorer",
    "Selection",
    "StreamClosedError",
    "StreamRestorer",
    "TensorRTSettings",
    "TileConfig",
    "VideoSource",
    "VideoWriter",
    "Window",
    "backend_unavailable_reason",
    "check_compatibility",
    "open_backend",
    "parse_source",
    "pick_profile",
    "restore_tiled",
    "select_artifact",
    "tile_starts",
]
