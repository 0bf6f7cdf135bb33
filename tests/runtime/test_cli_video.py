"""ndr-restore on an image, a folder and a small video, each compared pixel for pixel with
the library call (same model, same tiling); bad input exits non-zero with one line; the
OpenCV capture/writer helpers. Only the tests that read or write video need OpenCV."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ndr_edge.errors import InputError
from ndr_edge.imageio import read_image, write_image
from ndr_edge.runtime import Restorer, TileConfig, VideoSource, VideoWriter, parse_source
from ndr_edge.runtime.cli import main
from ndr_edge.runtime.tensorrt_backend import tensorrt_unavailable_reason

from .conftest import MIX, read_video, write_video

needs_cv2 = pytest.mark.skipif(importlib.util.find_spec("cv2") is None,
                               reason="needs OpenCV for video (pip install opencv-python-headless)")


def _invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def images(tmp_path, rng) -> Path:
    folder = tmp_path / "in"
    for i in range(3):
        write_image(folder / f"img{i}.png", rng.integers(0, 256, (30 + i, 44, 3), dtype=np.uint8))
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_one_image(tiny_model, images, tmp_path) -> None:
    out = tmp_path / "out.png"
    result = _invoke(tiny_model("identity"), images / "img0.png", "-o", out, "--json", tmp_path / "s.json")
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(out), read_image(images / "img0.png"))
    assert "FPS" in result.stdout and "latency" in result.stdout
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["latency"]["frames"] == 1 and summary["model"]["backend"] == "onnxruntime"
    # an output folder takes the input's name
    (tmp_path / "dir").mkdir()
    assert _invoke(tiny_model("identity"), images / "img1.png", "-o", tmp_path / "dir", "-q").exit_code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "dir" / "img1.png"), read_image(images / "img1.png"))


NAMES = ["img0.png", "img1.png", "img2.png"]


def _library(model: Path, images: Path, tile: TileConfig | bool) -> dict[str, np.ndarray]:
    """What the library restores for each image of the folder, as int for differences."""
    with Restorer.open(model) as restorer:
        return {n: restorer.restore(read_image(images / n), channel_order="RGB", tile=tile).astype(int) for n in NAMES}


def _restored(folder: Path) -> dict[str, np.ndarray]:
    assert sorted(p.name for p in folder.iterdir()) == NAMES
    return {n: read_image(folder / n).astype(int) for n in NAMES}


def test_a_folder_with_tiling_options(tiny_model, images, tmp_path) -> None:
    """The blur model pads with zeros, so tiles show: where the tile options are ignored, or
    taken differently from the library, the pictures differ."""
    blur = tiny_model("blur")
    result = _invoke(blur, images, "-o", tmp_path / "t16", "--tile", 16, "--overlap", 4, "--tile-batch", 2, "-q",
                     "--json", tmp_path / "t16.json")
    assert result.exit_code == 0, result.output
    assert "3 frames" in result.stdout
    assert json.loads((tmp_path / "t16.json").read_text())["model"]["tiling"] == {"tile": 16, "overlap": 4, "batch": 2}
    tiled, whole = _restored(tmp_path / "t16"), _library(blur, images, tile=False)
    library = _library(blur, images, tile=TileConfig(16, 4, 2))
    no_overlap = _invoke(blur, images, "-o", tmp_path / "t16-0", "--tile", 16, "--overlap", 0, "-q")
    untiled = _invoke(blur, images, "-o", tmp_path / "t0", "--tile", 0, "-q")
    default = _invoke(blur, images, "-o", tmp_path / "auto", "-q")  # 512 px tiles: these frames are whole
    assert no_overlap.exit_code == untiled.exit_code == default.exit_code == 0
    seams = _restored(tmp_path / "t16-0")
    library_seams = _library(blur, images, tile=TileConfig(16, 0, 1))
    inner = (slice(0, -1), slice(0, -1))  # the last row/column: reflect padding whole, zero padding in a tile
    for name in NAMES:
        np.testing.assert_array_equal(tiled[name], library[name], err_msg=name)
        np.testing.assert_array_equal(seams[name], library_seams[name], err_msg=name)
        assert tiled[name].shape == whole[name].shape == read_image(images / name).shape
        assert np.abs(tiled[name] - whole[name]).max() > 20, name  # the tiles are real
        assert np.abs(tiled[name] - whole[name])[inner].max() <= 8, name  # blended over the 4 px overlap
        assert np.abs(seams[name] - whole[name])[inner].max() > 50, name  # no overlap: hard seams
    for folder in ("t0", "auto"):
        for name, picture in _restored(tmp_path / folder).items():
            np.testing.assert_array_equal(picture, whole[name], err_msg=f"{folder}/{name}")


@needs_cv2
def test_a_video(tiny_model, tmp_path, rng) -> None:
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    video = write_video(tmp_path / "in.avi", frames)  # MJPG: lossy, so the reference decodes it too
    decoded = read_video(video)
    assert len(decoded) == 5
    mix = tiny_model("mix")  # a BGR model that mixes colours: a swapped channel order shows
    with Restorer.open(mix) as restorer:
        expected = [restorer.restore(f, channel_order="BGR") for f in decoded]
    by_hand = [(np.clip(np.einsum("oc,hwc->hwo", MIX, f / 255.0), 0, 1) * 255 + 0.5).astype(np.uint8) for f in decoded]
    out = tmp_path / "out.avi"
    result = _invoke(mix, video, "-o", out, "--fourcc", "FFV1")  # lossless, so pixels can be compared
    assert result.exit_code == 0, result.output
    assert "5 frames" in result.stdout
    got = read_video(out)
    assert len(got) == 5
    for index, (frame, want, hand) in enumerate(zip(got, expected, by_hand)):
        np.testing.assert_array_equal(frame, want, err_msg=f"frame {index}")
        assert np.abs(frame.astype(int) - hand).max() <= 1, index
    assert np.abs(got[0].astype(int) - decoded[0]).mean() > 5  # the model really changed the frames
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    limited = _invoke(mix, video, "-o", tmp_path / "two.avi", "--fourcc", "FFV1", "--max-frames", 2, "-q")
    assert limited.exit_code == 0 and "2 frames" in limited.stdout
    two = read_video(tmp_path / "two.avi")
    assert len(two) == 2
    for frame, want in zip(two, expected[:2]):
        np.testing.assert_array_equal(frame, want)
    mp4 = _invoke(mix, video, "-o", tmp_path / "two.mp4", "--max-frames", 2, "-q")  # the default codec by suffix
    assert mp4.exit_code == 0 and len(read_video(tmp_path / "two.mp4")) == 2


@pytest.mark.parametrize("case", ["missing input", "missing model", "bad tile", "no output", "same folder",
                                  "unknown suffix", pytest.param("video to png", marks=needs_cv2), "truncated model",
                                  "tensorrt"])
def test_bad_input_exits_non_zero_with_one_line(case, tiny_model, images, tmp_path) -> None:
    model = tiny_model("identity")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(Path(model).read_bytes()[:40])
    video = tmp_path / "v.avi"
    if case == "video to png":
        write_video(video, [np.zeros((16, 16, 3), np.uint8)] * 2)
    (tmp_path / "data.xyz").write_text("?")
    args = {
        "missing input": (model, tmp_path / "nope.png", "-o", tmp_path / "o.png"),
        "missing model": (tmp_path / "nope.onnx", images / "img0.png", "-o", tmp_path / "o.png"),
        "bad tile": (model, images / "img0.png", "-o", tmp_path / "o.png", "--tile", 30),
        "no output": (model, images / "img0.png"),
        "same folder": (model, images, "-o", images),
        "unknown suffix": (model, tmp_path / "data.xyz", "-o", tmp_path / "o.png"),
        "video to png": (model, video, "-o", tmp_path / "o.png"),
        "truncated model": (bad_model, images / "img0.png", "-o", tmp_path / "o.png"),
        "tensorrt": (model, images / "img0.png", "-o", tmp_path / "o.png", "--backend", "tensorrt"),
    }[case]
    if case == "tensorrt" and tensorrt_unavailable_reason() is None:
        pytest.skip("TensorRT works here")
    result = _invoke(*args)
    assert result.exit_code in (2, 3), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ndr-restore: error: "), result.stderr
    assert not (tmp_path / "o.png").exists()


def test_help_and_a_real_process(tiny_model, tmp_path) -> None:
    result = _invoke("--help")
    assert result.exit_code == 0 and "Examples:" in result.output and "--tile-batch" in result.output
    done = subprocess.run([sys.executable, "-m", "ndr_edge.runtime.cli", str(tiny_model("identity")),
                           str(tmp_path / "missing.png"), "-o", str(tmp_path / "x.png")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "input not found" in done.stderr


def test_parse_source() -> None:
    assert parse_source(0) == ("camera", 0)
    assert parse_source("2") == ("camera", 2)
    assert parse_source("v4l2src ! videoconvert ! appsink") == ("gstreamer", "v4l2src ! videoconvert ! appsink")
    assert parse_source("clip.mp4") == ("file", "clip.mp4")


@needs_cv2
def test_video_source_and_atomic_writer(tmp_path, rng) -> None:
    frames = [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(4)]
    video = write_video(tmp_path / "in.avi", frames)
    with VideoSource(str(video), max_frames=3) as source:
        assert (source.width, source.height, source.frame_count) == (40, 32, 3)
        assert source.channel_order == "BGR" and len(list(source)) == 3
    with pytest.raises(InputError, match="not found"):
        VideoSource(str(tmp_path / "none.mp4"))
    target = tmp_path / "out.avi"
    with pytest.raises(RuntimeError), VideoWriter(target, fps=10) as writer:
        writer.write(frames[0])
        raise RuntimeError("capture failed half-way")
    assert not target.exists() and list(tmp_path.glob(".out*")) == []  # aborted: nothing left
    with VideoWriter(target, fps=10, fourcc="FFV1") as writer:  # lossless: the pixels can be compared
        writer.write(frames[0])
        with pytest.raises(InputError, match="differs"):
            writer.write(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(InputError, match="uint8"):
            writer.write(np.zeros((32, 40, 3), np.float32))
        writer.write(frames[1])
    assert writer.frames_written == 2
    written = read_video(target)  # the refused frames are not in the file; the good ones are, exactly
    assert len(written) == 2
    np.testing.assert_array_equal(written[0], frames[0])
    np.testing.assert_array_equal(written[1], frames[1])
