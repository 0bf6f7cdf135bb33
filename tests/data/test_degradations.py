"""Degradation synthesis: reproducible, plausible strengths, physical behaviour, validation."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

from ndr_edge.degradations import (
    EVAL_NAMES,
    MIX_ORDER,
    NAMES,
    TRAIN_NAMES,
    DegradationParams,
    HazeParams,
    LowResParams,
    NoiseParams,
    RainParams,
    add_haze,
    degrade,
    mix,
    parse_names,
    rain_layer,
)
from ndr_edge.errors import InputError
from ndr_edge.metrics import psnr


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_name_tables_are_consistent():
    assert set(EVAL_NAMES) <= set(NAMES) and set(TRAIN_NAMES) <= set(NAMES)
    assert set(MIX_ORDER) == set(TRAIN_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_bit_identical_other_seed_differs(photo, name):
    a = degrade(photo, name, rng(3))
    b = degrade(photo, name, rng(3))
    assert a.tobytes() == b.tobytes()
    others = [degrade(photo, name, rng(s)) for s in (4, 5, 6)]
    if name in ("lowres2", "lowres4", "clean"):  # bicubic down/up has no randomness
        assert all(np.array_equal(a, c) for c in others)
    else:
        assert any(not np.array_equal(a, c) for c in others)


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_range_on_odd_size(name):
    clean = np.random.default_rng(1).random((37, 53, 3), dtype=np.float32)
    out = degrade(clean, name, rng(0))
    assert out.shape == clean.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.array_equal(out, clean) == (name == "clean")


def test_clean_is_an_unchanged_copy(photo):
    out = degrade(photo, "clean", rng(0))
    assert out is not photo and np.array_equal(out, photo)
    out[0, 0, 0] = 1.0 - photo[0, 0, 0]  # the caller may write to it without touching the source
    assert out[0, 0, 0] != photo[0, 0, 0]


def test_uint8_input_matches_float_input(photo):
    as_uint8 = (photo * 255 + 0.5).astype(np.uint8)
    expected = degrade(as_uint8.astype(np.float32) / 255, "rain", rng(2))
    np.testing.assert_array_equal(degrade(as_uint8, "rain", rng(2)), expected)


def test_input_is_not_modified(photo):
    before = photo.copy()
    for name in NAMES:
        degrade(photo, name, rng(0))
    np.testing.assert_array_equal(photo, before)


@pytest.mark.parametrize("sigma", [15, 25, 50])
def test_fixed_noise_psnr_matches_sigma(sigma):
    grey = np.full((128, 128, 3), 0.5, np.float32)  # clipping is negligible at 0.5
    out = degrade(grey, f"noise{sigma}", rng(sigma))
    expected = 20 * math.log10(255 / sigma)  # 24.61, 20.17, 14.15 dB
    assert abs(psnr(out, grey) - expected) < 0.25
    assert abs(float(np.mean(out - grey))) < 0.01  # zero-mean


def test_continuous_noise_spans_its_range():
    grey = np.full((64, 64, 3), 0.5, np.float32)
    values = [psnr(degrade(grey, "noise", rng(s)), grey) for s in range(30)]
    low, high = 20 * math.log10(255 / 60), 20 * math.log10(255 / 1)
    assert all(low - 0.5 < v < high + 0.5 for v in values)
    assert min(values) < 20 * math.log10(255 / 45)  # reaches heavy noise (sigma > 45)
    assert max(values) - min(values) > 8  # really a range, not one sigma


def test_noise_range_is_configurable():
    grey = np.full((64, 64, 3), 0.5, np.float32)
    params = DegradationParams(noise=NoiseParams(sigma_range=(10.0, 10.0)))
    assert abs(psnr(degrade(grey, "noise", rng(0), params), grey) - 20 * math.log10(25.5)) < 0.3


def test_lowres_strength_grows_with_scale(photo):
    p2 = psnr(degrade(photo, "lowres2", rng(0)), photo)
    p4 = psnr(degrade(photo, "lowres4", rng(0)), photo)
    assert 18 < p4 < p2 < 45


def test_lowres_keeps_flat_images_and_draws_both_scales(photo):
    grey = np.full((30, 45, 3), 0.25, np.float32)
    assert np.abs(degrade(grey, "lowres4", rng(0)) - grey).max() < 1e-4
    p2 = psnr(degrade(photo, "lowres2", rng(0)), photo)
    p4 = psnr(degrade(photo, "lowres4", rng(0)), photo)
    drawn = {round(psnr(degrade(photo, "lowres", rng(s)), photo), 4) for s in range(12)}
    assert drawn == {round(p2, 4), round(p4, 4)}


def test_lowres_tiny_images():
    tiny = np.random.default_rng(0).random((3, 2, 3), dtype=np.float32)
    assert degrade(tiny, "lowres4", rng(0)).shape == (3, 2, 3)


def test_haze_pulls_every_pixel_toward_the_airlight(photo):
    params = HazeParams(airlight=(0.9, 0.9), beta=(1.0, 1.0), tint=0.0)
    out = add_haze(photo, rng(0), params)
    assert np.all(np.abs(out - 0.9) <= np.abs(photo - 0.9) + 1e-6)
    assert out.std() < photo.std()  # contrast drops


def test_haze_default_brightens_and_lowers_psnr(photo):
    outs = [degrade(photo, "haze", rng(s)) for s in range(20)]
    assert all(o.mean() > photo.mean() + 0.01 for o in outs)
    values = [psnr(o, photo) for o in outs]
    assert all(8 < v < 40 for v in values)
    assert min(values) < 15 and max(values) > 22  # light to dense


def test_haze_reaches_low_transmission_and_tinted_airlight():
    black = np.zeros((64, 64, 3), np.float32)  # the output is then A (1 - t): t and A readable
    params = HazeParams(beta=(1.2, 1.2), airlight=(1.0, 1.0), weights=(1.0, 0.0, 0.0), tilt=0.0)
    out = add_haze(black, rng(3), params)
    t_far = 1.0 - out[0].mean(axis=0) / out[0].mean(axis=0).max()
    assert out[0].max() > 0.6  # transmission of the far rows near exp(-1.2) = 0.30
    tints = [add_haze(black, rng(s), HazeParams(beta=(1.0, 1.0)))[0, 0] for s in range(10)]
    spread = [float(t.max() - t.min()) / float(t.mean()) for t in tints]
    assert max(spread) > 0.03 and t_far.min() >= 0.0  # some airlights are tinted, not grey


def test_haze_is_thicker_far_away():
    dark = np.full((64, 64, 3), 0.1, np.float32)
    params = HazeParams(weights=(1.0, 0.0, 0.0), tilt=0.0, airlight=(1.0, 1.0), beta=(1.5, 1.5))
    out = add_haze(dark, rng(0), params)
    assert out[:8].mean() > out[-8:].mean() + 0.2  # the ramp puts the top far away


def test_rain_ranges_from_light_to_heavy(photo):
    values = [psnr(degrade(photo, "rain", rng(s)), photo) for s in range(20)]
    assert max(values) - min(values) > 6  # density, width and brightness really vary
    angles = RainParams().angle
    assert angles[0] <= -25 and angles[1] >= 25


def test_rain_only_brightens_and_covers_part_of_the_image(photo):
    out = degrade(photo, "rain", rng(5))
    assert np.all(out >= photo - 1e-6)  # screen blend never darkens
    changed = np.mean(np.abs(out - photo).max(axis=-1) > 0.02)
    assert 0.005 < changed < 0.8  # heavy rain (Rain100H-like) may touch half the frame
    assert 12 < psnr(out, photo) < 40


def test_rain_streaks_follow_the_angle():
    vertical = rain_layer((96, 96), rng(0), RainParams(angle=(0.0, 0.0), length=(20.0, 20.0)))
    down = float(np.mean(vertical[1:] * vertical[:-1]))
    across = float(np.mean(vertical[:, 1:] * vertical[:, :-1]))
    assert down > 2 * across
    assert vertical.max() <= RainParams().brightness[1] + 1e-6


def test_rain_add_blend_and_bad_blend():
    grey = np.full((32, 32, 3), 0.5, np.float32)
    out = degrade(grey, "rain", rng(1), DegradationParams(rain=RainParams(blend="add")))
    assert out.max() > 0.6 and out.min() >= 0.5
    with pytest.raises(InputError, match="blend"):
        RainParams(blend="multiply")


def test_mix_composes_two_in_physical_order(photo):
    seen = set()
    for seed in range(20):
        out, parts = mix(photo, rng(seed))
        assert len(parts) == 2 and len(set(parts)) == len(parts)
        assert list(parts) == sorted(parts, key=MIX_ORDER.index)
        np.testing.assert_array_equal(out, degrade(photo, "mix", rng(seed)))
        seen.add(parts)
    assert len(seen) >= 4  # many different pairs
    _, three = mix(photo, rng(0), DegradationParams(mix_count=(3, 3)))
    assert len(three) == 3


def test_mix_count_is_configurable(photo):
    _, parts = mix(photo, rng(0), DegradationParams(mix_count=(4, 4)))
    assert parts == MIX_ORDER


def test_params_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NoiseParams().sigma_range = (1.0, 2.0)  # type: ignore[misc]
    with pytest.raises(InputError):
        LowResParams(scales=())


def test_parse_names():
    assert parse_names("noise, rain,haze") == ("noise", "rain", "haze")
    assert parse_names(["lowres4", "mix", "lowres4"]) == ("lowres4", "mix")
    assert parse_names("Noise25") == ("noise25",)
    with pytest.raises(InputError, match="snow.*valid names: noise15"):
        parse_names("noise,snow")
    with pytest.raises(InputError, match="no degradation"):
        parse_names(" , ")


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="unknown degradation"):
        degrade(np.zeros((8, 8, 3), np.float32), "blur", rng())
    with pytest.raises(InputError, match="HxWx3"):
        degrade(np.zeros((8, 8), np.float32), "noise", rng())
    with pytest.raises(InputError, match="dtype"):
        degrade(np.zeros((8, 8, 3), np.int32), "noise", rng())


def test_torch_free_modules_do_not_import_torch():
    code = (
        "import sys; import ndr_edge.degradations, ndr_edge.imageio, ndr_edge.metrics, ndr_edge.data; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
