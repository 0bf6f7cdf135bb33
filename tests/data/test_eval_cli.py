"""``ndr-eval``: the JSON's scores recomputed here from the images (the model run by hand with
the protocol's reflect padding, PSNR/SSIM with numpy and scikit-image), and the bundled
checkpoint as the default."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from skimage.metrics import structural_similarity

from ndr_edge.cli.evaluate import main
from tests.models import untrained

SIZES = [(30, 44), (37, 24)]  # not multiples of 8: the padding is exercised


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """A ``pairs`` layout (lq/, gt/) written here: smooth clean images, noisy degraded copies."""
    root = tmp_path_factory.mktemp("pairs")
    (root / "lq").mkdir()
    (root / "gt").mkdir()
    rng = np.random.default_rng(5)
    for i, (h, w) in enumerate(SIZES):
        yy, xx = np.mgrid[0:h, 0:w]
        clean = np.stack([128 + 100 * np.sin(xx / 5 + c) * np.cos(yy / 7) for c in range(3)], -1)
        noisy = clean + rng.normal(0, 20, clean.shape)
        Image.fromarray(np.clip(clean, 0, 255).astype(np.uint8)).save(root / "gt" / f"img{i}.png")
        Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(root / "lq" / f"img{i}.png")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from ndr_edge.checkpoint import CheckpointMeta, save_checkpoint

    model = untrained("ndr-edge-xs", with_degradation_net=False)
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "xs.safetensors", model,
                           CheckpointMeta(preset="ndr-edge-xs", config={}))
    return path, model


def _restore_by_hand(model, rgb: np.ndarray) -> np.ndarray:
    """RGB float HxWx3 -> BGR NCHW, reflect-pad right/bottom to 8 (np.pad), run, crop, RGB."""
    h, w = rgb.shape[:2]
    batch = rgb[..., ::-1].transpose(2, 0, 1)[None]
    padded = np.pad(batch, ((0, 0), (0, 0), (0, (-h) % 8), (0, (-w) % 8)), mode="reflect")
    with torch.no_grad():
        out = model.restoration_net(torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32)))
    out = out[0] if isinstance(out, (tuple, list)) else out
    return out[0].numpy()[:, :h, :w].transpose(1, 2, 0)[..., ::-1]


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / float(np.mean((np.clip(a, 0, 1).astype(np.float64) - b) ** 2)))


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(np.clip(a, 0, 1).astype(np.float64), b.astype(np.float64), gaussian_weights=True,
                                 sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=-1)


def test_json_scores_are_the_images_scores(pairs, checkpoint, tmp_path) -> None:
    path, model = checkpoint
    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, [str(path), "--data", str(pairs), "--layout", "pairs", "--json", str(out),
                                       "--quiet", "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert payload["preset"] == "ndr-edge-xs" and payload["layout"] == "pairs"
    assert list(payload["scores"]) == ["real"]
    score = payload["scores"]["real"]
    psnr_in, psnr_out, ssim_in, ssim_out = [], [], [], []
    for i in range(len(SIZES)):
        lq = np.asarray(Image.open(pairs / "lq" / f"img{i}.png"), dtype=np.float32) / 255.0
        gt = np.asarray(Image.open(pairs / "gt" / f"img{i}.png"), dtype=np.float32) / 255.0
        restored = _restore_by_hand(model, lq)
        psnr_in.append(_psnr(lq, gt))
        psnr_out.append(_psnr(restored, gt))
        ssim_in.append(_ssim(lq, gt))
        ssim_out.append(_ssim(restored, gt))
    assert score["images"] == len(SIZES)
    assert score["psnr_input"] == pytest.approx(np.mean(psnr_in), abs=1e-9)
    assert score["ssim_input"] == pytest.approx(np.mean(ssim_in), abs=1e-9)
    assert score["psnr"] == pytest.approx(np.mean(psnr_out), abs=1e-4)
    assert score["ssim"] == pytest.approx(np.mean(ssim_out), abs=1e-5)
    assert score["gain_db"] == pytest.approx(np.mean(psnr_out) - np.mean(psnr_in), abs=1e-4)
    assert abs(score["psnr"] - score["psnr_input"]) > 0.01  # the random network really changed the images
    # the printed table says the same numbers
    row = next(line.split() for line in result.output.splitlines() if line.startswith("real"))
    assert [float(v) for v in row[2:4]] == [round(score["psnr_input"], 2), round(score["psnr"], 2)]


def test_the_bundled_checkpoint_is_the_default(pairs, tmp_path) -> None:
    from ndr_edge import BUNDLED_CHECKPOINT

    out = tmp_path / "scores.json"
    result = CliRunner().invoke(main, ["--data", str(pairs), "--layout", "pairs", "--json", str(out), "--quiet",
                                       "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["sha256"] == hashlib.sha256(BUNDLED_CHECKPOINT.read_bytes()).hexdigest()
    assert payload["checkpoint"] == str(BUNDLED_CHECKPOINT) and payload["preset"] == "ndr-edge-xs"
    # a denoiser trained on noise: sigma-20 noise comes back better
    assert payload["scores"]["real"]["gain_db"] > 1.0
