"""``examples/``: the capture loop run on a small video with a tiny model (its output is the
library's restoration of each frame), and both examples' ``--help``. ``scripts/demo.sh`` is
not run here: it installs (scripts/setup.sh) and exports at full size, with no size knob."""

from __future__ import annotations

import importlib.util
import runpy
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.runtime.conftest import read_video

needs_cv2 = pytest.mark.skipif(importlib.util.find_spec("cv2") is None,
                               reason="needs OpenCV for video (pip install opencv-python-headless)")


def _load(name: str):  # type: ignore[no-untyped-def]
    return runpy.run_path(str(REPO / "examples" / f"{name}.py"), run_name=f"example_{name}")


@needs_cv2
def test_capture_loop_restores_a_video(tiny_model, tmp_path, capsys) -> None:
    import cv2

    from ndr_edge.runtime import Restorer

    yy, xx = np.mgrid[0:48, 0:64]
    frames = [np.stack([128 + 100 * np.sin(xx / 7 + i) * np.cos(yy / 6 + c) for c in range(3)], -1).astype(np.uint8)
              for i in range(5)]
    source = tmp_path / "in.avi"
    writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    for f in frames:
        writer.write(f)
    writer.release()
    decoded_in = read_video(source)  # what OpenCV will hand the loop (MJPG is lossy)
    out = tmp_path / "out.avi"
    main = _load("capture_loop")["main"]
    assert main([str(tiny_model("mix")), str(source), "-o", str(out), "--max-frames", "3", "--report-every", "2"]) == 0
    printed = capsys.readouterr().out
    assert f"<- file {source} (64x48)" in printed
    with Restorer.open(tiny_model("mix")) as restorer:
        expected = [restorer.restore(f, channel_order="BGR") for f in decoded_in[:3]]
    got = read_video(out)
    assert len(got) == 3  # --max-frames
    for g, e, raw in zip(got, expected, decoded_in):
        error = np.abs(g.astype(int) - e.astype(int)).mean()
        assert error < 4 and error < np.abs(g.astype(int) - raw.astype(int)).mean() / 2


def test_capture_loop_errors_are_one_line(tiny_model, tmp_path, capsys) -> None:
    main = _load("capture_loop")["main"]
    code = main([str(tiny_model("mix")), str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.avi")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [(f"capture_loop: error: {tmp_path / 'missing.mp4'}: video file not found; check the path "
                    "(or pass a camera index)")]
    with pytest.raises(SystemExit):
        main([str(tiny_model("mix")), "0"])  # neither -o nor --show


@pytest.mark.parametrize("name", ["capture_loop", "many_cameras"])
def test_examples_help(name: str) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "examples" / f"{name}.py"), "--help"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:")
