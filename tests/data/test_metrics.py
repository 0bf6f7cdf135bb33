"""Metrics follow the published protocol: all channels, [0, 1] after clipping, no crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ndr_edge.errors import InputError
from ndr_edge.metrics import max_abs, psnr, psnr_between, ssim


@pytest.fixture
def clean() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.2, 0.8, (40, 48, 3)).astype(np.float32)


def test_identical_images(clean):
    assert psnr(clean, clean) == math.inf
    assert ssim(clean, clean) == pytest.approx(1.0)


def test_constant_offset_gives_known_psnr(clean):
    assert psnr(clean + 0.1, clean) == pytest.approx(20.0, abs=1e-5)
    assert psnr(clean - 0.01, clean) == pytest.approx(40.0, abs=1e-3)


def test_values_are_clipped_before_scoring():
    clean = np.full((16, 16, 3), 0.8, np.float32)
    assert psnr(clean + 0.5, clean) == pytest.approx(-20 * math.log10(0.2))  # 1.3 -> 1.0: error 0.2
    assert psnr(np.full_like(clean, 1.4), np.full_like(clean, 1.0)) == math.inf


def test_no_border_crop_and_all_channels(clean):
    damaged = clean.copy()
    damaged[0, 0, 2] += 0.1  # one corner pixel of the blue channel
    expected = 10 * math.log10(1 / (0.1**2 / clean.size))
    assert psnr(damaged, clean) == pytest.approx(expected, rel=1e-4)


def test_uint8_is_scaled(clean):
    as8 = (clean * 255).round().astype(np.uint8)
    assert psnr(as8, clean) == pytest.approx(psnr(as8.astype(np.float32) / 255, clean))


def test_ssim_protocol(photo):
    clean = photo
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 0.1, clean.shape), 0, 1).astype(np.float32)
    value = ssim(noisy, clean)
    expected = structural_similarity(
        noisy.astype(np.float64), clean.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=1.0, channel_axis=-1,
    )
    assert value == pytest.approx(expected, abs=1e-12)
    default = structural_similarity(noisy, clean, data_range=1.0, channel_axis=-1)  # 7x7 box, sample cov
    assert abs(value - default) > 0.01
    assert 0.0 < value < 0.9
    per_channel = [ssim(np.repeat(noisy[..., c:c + 1], 3, -1), np.repeat(clean[..., c:c + 1], 3, -1)) for c in range(3)]
    assert value == pytest.approx(np.mean(per_channel), abs=1e-9)


def test_ssim_needs_the_window():
    small = np.zeros((8, 20, 3), np.float32)
    with pytest.raises(InputError, match="11x11"):
        ssim(small, small)


def test_shapes_are_checked(clean):
    with pytest.raises(InputError, match="shapes differ"):
        psnr(clean, clean[:-1])
    with pytest.raises(InputError, match="HxWx3"):
        psnr(clean.transpose(2, 0, 1), clean.transpose(2, 0, 1))


def test_psnr_between_any_shape_no_clipping():
    a = np.zeros((2, 3, 4, 5), np.float32)
    assert psnr_between(a, a + 0.01) == pytest.approx(40.0, abs=1e-3)
    assert psnr_between(a + 2.0, a + 2.1) == pytest.approx(20.0, abs=1e-3)  # beyond [0, 1]: not clipped
    assert psnr_between(a, a) == math.inf
    with pytest.raises(InputError, match="shapes differ"):
        psnr_between(a, a[0])


def test_max_abs():
    a = np.zeros((3, 4), np.float32)
    b = a.copy()
    b[1, 2] = -0.25
    assert max_abs(a, b) == pytest.approx(0.25)
    assert max_abs(a, a) == 0.0
