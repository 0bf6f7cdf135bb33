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
"""

from .backend import Backend, BackendClosedError, InputLimits, PendingBatch
from .engine_sidecar import EngineSidecar, check_compatibility, pick_profile
from .restorer import BACKENDS, PRECISIONS, Prepared, Restorer, Selection, backend_unavailable_reason, select_artifact
from .stats import LatencyStats, LatencySummary
from .stream import StreamClosedError, StreamRestorer
from .tiling import TileConfig, restore_tiled, tile_starts
from .video import VideoSource, VideoWriter, Window, parse_source

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "BackendClosedError",
    "EngineSidecar",
    "InputLimits",
    "LatencyStats",
    "LatencySummary",
    "PendingBatch",
    "Prepared",
    "Restorer",
    "Selection",
    "StreamClosedError",
    "StreamRestorer",
    "TileConfig",
    "VideoSource",
    "VideoWriter",
    "Window",
    "backend_unavailable_reason",
    "check_compatibility",
    "parse_source",
    "pick_profile",
    "restore_tiled",
    "select_artifact",
    "tile_starts",
]
