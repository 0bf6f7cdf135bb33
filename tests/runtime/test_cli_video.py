"""ndr-restore on an image, a folder and a small video; bad input exits non-zero with one
line; the OpenCV capture/writer helpers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ndr_edge.errors import InputError
from ndr_edge.imageio import read_image, write_image
from ndr_edge.runtime import VideoSource, VideoWriter, parse_source
from ndr_edge.runtime.cli import main
from ndr_edge.runtime.tensorrt_backend import tensorrt_unavailable_reason

from .conftest import write_video

cv2 = pytest.importorskip("cv2")


def _invoke(*args: str):
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
    assert (tmp_path / "dir" / "img1.png").is_file()


def test_a_folder_with_tiling_options(tiny_model, images, tmp_path) -> None:
    out = tmp_path / "restored"
    result = _invoke(tiny_model("blur"), images, "-o", out, "--tile", 16, "--overlap", 4, "--tile-batch", 2, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png", "img2.png"]
    assert read_image(out / "img2.png").shape == (32, 44, 3)
    assert "3 frames" in result.stdout


def test_a_video(tiny_model, tmp_path, rng) -> None:
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(5)]
    video = write_video(tmp_path / "in.avi", frames)
    out = tmp_path / "out.avi"
    result = _invoke(tiny_model("identity"), video, "-o", out)
    assert result.exit_code == 0, result.output
    with VideoSource(str(out)) as restored:
        got = list(restored)
    assert len(got) == 5 and got[0].shape == (48, 64, 3)
    assert "5 frames" in result.stdout
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    limited = _invoke(tiny_model("identity"), video, "-o", tmp_path / "two.mp4", "--max-frames", 2, "-q")
    assert limited.exit_code == 0 and "2 frames" in limited.stdout


@pytest.mark.parametrize("case", ["missing input", "missing model", "bad tile", "no output", "same folder",
                                  "unknown suffix", "video to png", "truncated model", "tensorrt"])
def test_bad_input_exits_non_zero_with_one_line(case, tiny_model, images, tmp_path) -> None:
    model = tiny_model("identity")
    bad_model = tmp_path / "bad.onnx"
    bad_model.write_bytes(Path(model).read_bytes()[:40])
    video = write_video(tmp_path / "v.avi", [np.zeros((16, 16, 3), np.uint8)] * 2)
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
    with VideoWriter(target, fps=10) as writer:
        writer.write(frames[0])
        with pytest.raises(InputError, match="differs"):
            writer.write(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(InputError, match="uint8"):
            writer.write(np.zeros((32, 40, 3), np.float32))
    assert target.is_file()
