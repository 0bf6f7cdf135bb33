"""Camera and GStreamer input (README, "Command line"): a camera index and a pipeline reach
OpenCV the way each needs (an int; the string with CAP_GSTREAMER), frames come back BGR
HxWx3 (grayscale cameras repeated to three channels), ``--max-frames`` stops a live source,
and ``ndr-restore MODEL 0 -o cam.avi`` restores what the camera delivers. No camera exists
here, so the camera is a stand-in for ``cv2.VideoCapture``; the GStreamer test runs a real
``videotestsrc`` pipeline where OpenCV has GStreamer and is skipped with the reason elsewhere."""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from ndr_edge.errors import InputError
from tests.runtime.conftest import read_video

pytestmark = pytest.mark.skipif(importlib.util.find_spec("cv2") is None,
                                reason="needs OpenCV (pip install opencv-python-headless)")


def _gstreamer_reason() -> str | None:
    if importlib.util.find_spec("cv2") is None:
        return "needs OpenCV"
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return None if "YES" in line.split(":", 1)[1] else "this OpenCV build has no GStreamer (GStreamer: NO)"
    return "OpenCV's build information does not mention GStreamer"


class FakeCamera:
    """Stands in for ``cv2.VideoCapture(index)``: five frames (index 1: grayscale), no FPS
    reported (as many webcams), records every index opened; a path goes to the real capture."""

    opened: ClassVar[list[tuple]] = []
    real: ClassVar[type | None] = None

    def __new__(cls, target, *api):
        if not isinstance(target, int) and cls.real is not None:
            return cls.real(target, *api)
        return super().__new__(cls)

    def __init__(self, target, *api) -> None:
        FakeCamera.opened.append((target, *api))
        self.target, self.reads, self.released = target, 0, False
        yy, xx = np.mgrid[0:24, 0:40]
        # smooth, different per frame and channel (MJPG keeps those well)
        colour = [np.stack([128 + 100 * np.sin(xx / 6 + i) * np.cos(yy / 5 + c) for c in range(3)], -1)
                  for i in range(5)]
        self.frames = [(f[..., 0] if target == 1 else f).astype(np.uint8) for f in colour]

    def isOpened(self) -> bool:  # OpenCV's name
        return isinstance(self.target, int) and self.target in (0, 1)

    def get(self, prop: int) -> float:
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 40.0, cv2.CAP_PROP_FRAME_HEIGHT: 24.0}.get(prop, 0.0)

    def read(self):
        if self.reads >= len(self.frames):
            return False, None
        self.reads += 1
        return True, self.frames[self.reads - 1].copy()

    def release(self) -> None:
        self.released = True


@pytest.fixture
def camera(monkeypatch):
    import cv2

    FakeCamera.opened = []
    FakeCamera.real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", FakeCamera)
    return FakeCamera


def test_camera_index_frames_and_max_frames(camera) -> None:
    from ndr_edge.runtime import VideoSource

    expected = FakeCamera(0).frames
    camera.opened.clear()
    with VideoSource("0", max_frames=3) as source:
        assert (source.kind, source.target) == ("camera", 0)
        assert camera.opened == [(0,)]  # an int index, no API preference
        assert source.fps == 25.0  # the camera reports none
        assert (source.width, source.height, source.frame_count) == (40, 24, 3)
        frames = list(source)
        capture = source._capture
    assert len(frames) == 3 and capture.reads == 3  # stopped at --max-frames, not at the camera's end
    for got, want in zip(frames, expected):
        np.testing.assert_array_equal(got, want)
    assert capture.released


def test_grayscale_camera_frames_get_three_channels(camera) -> None:
    from ndr_edge.runtime import VideoSource

    with VideoSource(1) as source:
        frames = list(source)
        raw = source._capture.frames
    assert len(frames) == 5 and source.frame_count is None  # a live source has no length
    for got, gray in zip(frames, raw):
        assert got.shape == (24, 40, 3)
        np.testing.assert_array_equal(got, np.repeat(gray[..., None], 3, -1))


def test_a_missing_camera_is_a_clear_error(camera) -> None:
    from ndr_edge.runtime import VideoSource

    with pytest.raises(InputError) as caught:
        VideoSource(7)
    assert str(caught.value) == ("7: cannot open camera source; check that the camera is connected and not used "
                                 "by another program")


def test_ndr_restore_from_a_camera(camera, tiny_model, tmp_path) -> None:
    """``ndr-restore MODEL 0 -o cam.avi --max-frames 4``: four restored frames, each the
    library's restoration of the camera's frame (MJPG is lossy: compared on the mean)."""

    from ndr_edge.runtime import Restorer
    from ndr_edge.runtime.cli import main

    frames = FakeCamera(0).frames[:4]
    camera.opened.clear()
    out = tmp_path / "cam.avi"
    result = CliRunner().invoke(main, [str(tiny_model("mix")), "0", "-o", str(out), "--max-frames", "4", "--quiet"])
    assert result.exit_code == 0, result.output
    assert camera.opened == [(0,)]
    with Restorer.open(tiny_model("mix")) as restorer:
        expected = [restorer.restore(f, channel_order="BGR") for f in frames]
    decoded = read_video(out)  # a path: the real capture
    assert len(decoded) == 4
    for got, want, raw in zip(decoded, expected, frames):
        assert got.shape == want.shape
        error = np.abs(got.astype(int) - want.astype(int)).mean()
        assert error < 6  # MJPG rounding ...
        assert error < np.abs(got.astype(int) - raw.astype(int)).mean() / 2  # ... not the unrestored frame


@pytest.mark.skipif(_gstreamer_reason() is not None, reason=_gstreamer_reason() or "")
def test_videotestsrc_pipeline() -> None:
    from ndr_edge.runtime import VideoSource

    pipeline = "videotestsrc num-buffers=3 ! video/x-raw,format=BGR,width=64,height=48 ! videoconvert ! appsink"
    with VideoSource(pipeline) as source:
        assert source.kind == "gstreamer"
        frames = list(source)
    assert len(frames) == 3 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    assert all(f.std() > 0 for f in frames)  # the test pattern, not a blank frame


@pytest.mark.skipif(_gstreamer_reason() is None, reason="OpenCV has GStreamer here: the pipeline opens")
def test_a_pipeline_without_gstreamer_says_so() -> None:
    from ndr_edge.runtime import VideoSource

    pipeline = "videotestsrc num-buffers=3 ! videoconvert ! appsink"
    with pytest.raises(InputError) as caught:
        VideoSource(pipeline)
    assert str(caught.value) == (f"{pipeline}: cannot open gstreamer source; check the pipeline (it must end in "
                                 "appsink) and that OpenCV was built with GStreamer")
