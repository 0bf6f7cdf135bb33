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


def test_psnr_from_mse_uses_the_peak_squared():
    from ndr_edge.metrics import psnr_from_mse

    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr_from_mse(4.0, peak=255.0) == pytest.approx(10 * math.log10(255.0**2 / 4.0))
    assert psnr_from_mse(0.0, peak=255.0) == math.inf


def test_json_float():
    from ndr_edge.metrics import json_float

    assert json_float(None) is None
    assert json_float(math.inf) == "inf" and json_float(-math.inf) == "-inf"
    value = json_float(np.float32(1.23456), 2)
    assert value == 1.23 and type(value) is float
    exact = json_float(np.float64(31.123456789))
    assert exact == 31.123456789 and type(exact) is float
    assert json_float(0.0) == 0.0 and json_float(-2.5, 0) == -2.0


def test_negative_values_are_clipped_to_zero():
    clean = np.zeros((12, 12, 3), np.float32)
    assert psnr(clean - 0.5, clean) == math.inf  # -0.5 clips to 0
    half = clean.copy()
    half[..., 0] = -1.0
    assert psnr(half, clean + 0.1) == pytest.approx(psnr(clean, clean + 0.1))


def test_bad_inputs_name_the_side_and_the_shape(clean):
    def message(a, b, func=psnr) -> str:
        with pytest.raises(InputError) as caught:
            func(a, b)
        return str(caught.value)

    assert message(clean.tolist(), clean) == "metrics: restored must be an HxWx3 array (HWC), got list"
    assert message(clean, clean[..., :2]) == "metrics: clean must be an HxWx3 array (HWC), got (40, 48, 2)"
    assert message(clean, clean[..., 0]) == "metrics: clean must be an HxWx3 array (HWC), got (40, 48)"
    small = np.zeros((8, 20, 3), np.float32)
    assert message(small, small, ssim) == "metrics: SSIM needs images of at least 11x11, got (8, 20)"


def test_max_abs_is_of_the_difference():
    assert max_abs(np.array([1.0, 2.0]), np.array([1.5, 1.0])) == pytest.approx(1.0)
    assert max_abs(np.array([3.0]), np.array([3.0])) == 0.0  # a single element is not "empty"
    assert psnr_between(np.array([0.5]), np.array([0.6])) == pytest.approx(20.0)
    with pytest.raises(InputError) as caught:
        max_abs(np.zeros(0), np.zeros(0))
    assert str(caught.value) == "metrics: empty arrays"
