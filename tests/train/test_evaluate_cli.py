"""ndr-eval: scores beside classical baselines, the NDR probe, and bad input as one line."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ndr_edge.cli.evaluate import main
from ndr_edge.imageio import demo_images


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean")
    for name, image in demo_images("heldout"):
        Image.fromarray(image[100:164, 200:264]).save(root / f"{name}.png")
    return root


def _run(*args: str):
    return CliRunner().invoke(main, ["--quiet", "--threads", "1", *args], catch_exceptions=False)


@pytest.mark.skipif(importlib.util.find_spec("cv2") is None or importlib.util.find_spec("bm3d") is None,
                    reason="baselines need OpenCV and bm3d")
def test_baselines_and_probe_in_one_run(folder, tmp_path):
    out, png = tmp_path / "scores.json", tmp_path / "confusion.png"
    result = _run("--data", str(folder), "--degradations", "noise25,haze,lowres4,rain", "--baselines", "--max-side", "64",
                  "--ndr", str(png), "--json", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert set(payload["baselines"]) == {"nlm", "bm3d", "dcp", "bicubic", "median"}
    assert set(payload["baselines"]["nlm"]) == {"noise25"} and set(payload["baselines"]["dcp"]) == {"haze"}
    assert payload["baselines"]["bicubic"]["lowres4"]["gain_db"] == pytest.approx(0.0, abs=1e-9)
    assert payload["baselines"]["bm3d"]["noise25"]["gain_db"] > 3.0  # BM3D really denoises
    probe = payload["ndr_probe"]
    assert np.array(probe["confusion"]).sum() == 2 * 4  # every non-mix frame classified once
    assert 0.0 <= probe["accuracy"] <= 1.0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "bm3d" in result.output and "NDR probe" in result.output


def test_bad_output_path_fails_before_any_work(folder, tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["--data", str(folder), "--json", str(blocker / "out.json")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("ndr-eval: error:") and "is a file, not a folder" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_baselines_without_bm3d_is_one_line(folder, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bm3d" else real(name, *a))
    result = CliRunner().invoke(main, ["--data", str(folder), "--baselines"])
    assert result.exit_code == 3
    assert result.output.strip() == ("ndr-eval: error: --baselines needs bm3d: pip install bm3d "
                                     "(or pip install 'ndr-edge[baselines]')")


def test_unknown_degradation_is_one_line(folder):
    result = CliRunner().invoke(main, ["--data", str(folder), "--degradations", "snow"])
    assert result.exit_code == 2 and "unknown degradation(s) snow" in result.output


def test_clean_frames_score_how_much_the_network_changes_them(folder, tmp_path):
    out = tmp_path / "scores.json"
    result = _run("--data", str(folder), "--degradations", "clean,noise25", "--max-side", "64", "--json", str(out))
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    clean, noisy = payload["scores"]["clean"], payload["scores"]["noise25"]
    assert clean["psnr_input"] is None and clean["gain_db"] is None  # infinite input PSNR, no gain
    assert 10.0 < clean["psnr"] < 100.0 and noisy["gain_db"] is not None
    row = next(line for line in result.output.splitlines() if line.startswith("clean "))
    assert row.split()[2] == "-" and row.split()[4] == "-"
