"""Classical baselines: each really restores its degradation, and missing packages are named."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from ndr_edge import baselines
from ndr_edge.degradations import HazeParams, add_haze, degrade
from ndr_edge.errors import BackendUnavailableError
from ndr_edge.metrics import psnr

pytest.importorskip("cv2", reason="OpenCV (ndr-edge[video] or [baselines]) not installed")


@pytest.fixture(scope="module")
def big_photo() -> np.ndarray:
    from ndr_edge.imageio import demo_images

    image = dict(demo_images("heldout"))["coffee"]
    return image[72:328, 172:428].astype(np.float32) / 255.0


def test_dark_channel_prior_removes_dense_grey_haze(big_photo):
    hazy = add_haze(big_photo, np.random.default_rng(0), HazeParams(beta=(1.0, 1.0), airlight=(0.9, 0.9), tint=0.0))
    out = baselines.dark_channel_prior(hazy)
    assert out.shape == hazy.shape and out.dtype == np.float32
    assert psnr(out, big_photo) > psnr(hazy, big_photo) + 3.0


def test_non_local_means_denoises_at_the_estimated_sigma(big_photo):
    noisy = degrade(big_photo, "noise25", np.random.default_rng(1))
    assert abs(baselines._sigma(noisy) * 255 - 25) < 5  # the blind estimate is near the truth
    assert psnr(baselines.non_local_means(noisy), big_photo) > psnr(noisy, big_photo) + 2.0


@pytest.mark.skipif(importlib.util.find_spec("bm3d") is None, reason="bm3d not installed")
def test_bm3d_beats_non_local_means(big_photo):
    noisy = degrade(big_photo[:96, :96], "noise25", np.random.default_rng(2))
    clean = big_photo[:96, :96]
    assert psnr(baselines.bm3d_denoise(noisy), clean) > psnr(baselines.non_local_means(noisy), clean)


def test_bicubic_is_the_input_and_each_degradation_has_its_methods(big_photo):
    np.testing.assert_array_equal(baselines.bicubic(big_photo), big_photo)
    assert [b.name for b in baselines.baselines_for("noise25")] == ["nlm", "bm3d"]
    assert [b.name for b in baselines.baselines_for("lowres4")] == ["bicubic"]
    assert [b.name for b in baselines.baselines_for("haze")] == ["dcp"]
    assert baselines.baselines_for("mix") == []


def test_missing_package_is_named_with_the_install_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bm3d" else real(name, *a))
    with pytest.raises(BackendUnavailableError, match=r"needs bm3d: pip install bm3d"):
        baselines.require_baselines()
