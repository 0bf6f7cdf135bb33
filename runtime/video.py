"""Capture and display through OpenCV: a video file, a camera index or a GStreamer pipeline
in; a video file or a window out. Frames are numpy uint8 HxWx3 in OpenCV's BGR order
(``VideoSource.channel_order``), so hand them to the restorer with ``channel_order="BGR"``
and nothing is copied to reorder them.

``cv2`` is imported when a source or sink is opened (``pip install opencv-python-headless``,
i.e. ``ndr-edge[video]``; a window needs the non-headless ``opencv-python``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

from ndr_edge.artifact import publish
from ndr_edge.errors import BackendUnavailableError, InputError
from ndr_edge.runtime.closing import Closing

if TYPE_CHECKING:
    from typing_extensions import Self

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv")
FOURCC_BY_SUFFIX = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "XVID"}


def import_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise BackendUnavailableError(
            "OpenCV is needed for video files, cameras and windows; pip install opencv-python-headless "
            "(ndr-edge[video]), or opencv-python for a window"
        ) from exc
    return cv2


def parse_source(source: str | int) -> tuple[str, str | int]:
    """Classify a source: ``("camera", index)``, ``("gstreamer", pipeline)`` or ``("file", path)``."""
    if isinstance(source, int):
        return "camera", source
    text = source.strip()
    if text.isdigit():
        return "camera", int(text)
    if "!" in text:
        return "gstreamer", text
    return "file", text


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class VideoSource(Closing):
    """Frames from a file, a camera or a GStreamer pipeline (``appsink`` at the end),
    iterated as BGR uint8 HxWx3 arrays."""

    channel_order = "BGR"

    def __init__(self, source: str | int, max_frames: int | None = None) -> None:
        cv2 = import_cv2()
        self.kind, self.target = parse_source(source)
        if self.kind == "file" and not Path(str(self.target)).is_file():
            raise InputError(f"{self.target}: video file not found; check the path (or pass a camera index)")
        if self.kind == "gstreamer":
            capture = cv2.VideoCapture(str(self.target), cv2.CAP_GSTREAMER)
        else:
            capture = cv2.VideoCapture(self.target)
        if not capture.isOpened():
            capture.release()
            hint = {
                "camera": "check that the camera is connected and not used by another program",
                "gstreamer": "check the pipeline (it must end in appsink) and that OpenCV was built with GStreamer",
                "file": "the file is corrupt or its codec is not supported by this OpenCV build",
            }[self.kind]
            raise InputError(f"{self.target}: cannot open {self.kind} source; {hint}")
        self._capture = capture
        self.max_frames = max_frames
        self.frames_read = 0
        self.fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
        self.width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count: int | None = count if self.kind == "file" and count > 0 else None
        if max_frames is not None and self.frame_count is not None:
            self.frame_count = min(self.frame_count, max_frames)
        elif max_frames is not None:
            self.frame_count = max_frames

    def read(self) -> np.ndarray | None:
        """The next frame, or None at the end (or after ``max_frames``)."""
        if self._capture is None:
            raise InputError(f"{self.target}: video source is closed")
        if self.max_frames is not None and self.frames_read >= self.max_frames:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            return None
        self.frames_read += 1
        if frame.ndim == 2:  # some cameras deliver grayscale
            frame = np.repeat(frame[..., None], 3, axis=-1)
        return np.asarray(frame[..., :3])

    def __iter__(self) -> Iterator[np.ndarray]:
        while (frame := self.read()) is not None:
            yield frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None



class VideoWriter(Closing):
    """Writes BGR uint8 frames to a video file atomically: frames go to a temporary file
    beside the target, renamed into place by :meth:`close`; :meth:`abort` (or an exception
    inside a ``with`` block) removes it, so no half-written video is left."""

    channel_order = "BGR"

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int] | None = None, fourcc: str | None = None):
        self._cv2 = import_cv2()
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise InputError(f"{self.path}: unsupported video suffix {suffix!r}; use one of {', '.join(VIDEO_SUFFIXES)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = fps if fps > 0 else 25.0
        self.fourcc = fourcc or FOURCC_BY_SUFFIX.get(suffix, "mp4v")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer: Any = None
        self.size = size  # (width, height); taken from the first frame when None
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        cv2 = self._cv2
        writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*self.fourcc), self.fps, (width, height))
        if not writer.isOpened():
            self.abort()
            raise InputError(f"{self.path}: OpenCV cannot write {self.fourcc} video here; try another suffix (.avi)")
        self._writer = writer
        self.size = (width, height)

    def write(self, frame: np.ndarray) -> None:
        if self._tmp is None:
            raise InputError(f"{self.path}: video writer is closed")
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"{self.path}: video frames must be uint8 HxWx3 BGR, got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        if self._writer is None:
            self._open(width, height)
        elif self.size != (width, height):
            raise InputError(f"{self.path}: frame size {width}x{height} differs from the video's {self.size}")
        self._writer.write(np.ascontiguousarray(frame))
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file and move it into place (nothing is written if no frame came)."""
        if self._tmp is None:
            return
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self.frames_written:
            publish(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)
        self._tmp = None  # type: ignore[assignment]

    def abort(self) -> None:
        """Drop the partial file."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Window(Closing):
    """Shows BGR frames in an OpenCV window; :meth:`show` returns False once the user
    presses ``q`` or Esc (or closes the window)."""

    channel_order = "BGR"

    def __init__(self, title: str = "ndr-restore") -> None:
        self._cv2 = import_cv2()
        self.title = title
        try:
            self._cv2.namedWindow(title, self._cv2.WINDOW_NORMAL)
        except self._cv2.error as exc:
            raise BackendUnavailableError(
                "this OpenCV has no window support (opencv-python-headless or no display); "
                "pip install opencv-python and run with a display, or write to a video file with -o"
            ) from exc

    def show(self, frame: np.ndarray, wait_ms: int = 1) -> bool:
        cv2 = self._cv2
        cv2.imshow(self.title, frame)
        key = cv2.waitKey(wait_ms) & 0xFF
        if key in (ord("q"), 27):
            return False
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) >= 1
        except cv2.error:
            return False

    def close(self) -> None:
        try:
            self._cv2.destroyWindow(self.title)
        except self._cv2.error:
            pass

