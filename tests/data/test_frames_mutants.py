"""Frame conventions (``ndr_edge.frames``) against numpy references: the padding mode the
published protocol uses (np.pad reflect, edge for frames smaller than the pad), dtype
scaling, rounding, channel swaps and the exact error messages."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_edge import frames
from ndr_edge.errors import InputError


def _message(func, *args) -> str:
    with pytest.raises(InputError) as caught:
        func(*args)
    return str(caught.value)


def test_check_channel_order() -> None:
    assert frames.check_channel_order("RGB") == "RGB" and frames.check_channel_order("BGR") == "BGR"
    assert _message(frames.check_channel_order, "rgb") == (
        "channel order must be one of ('RGB', 'BGR') (said explicitly), got 'rgb'")
    assert _message(frames.check_channel_order, "auto", "--channel-order").startswith("--channel-order must be")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.float16])
def test_check_frame_accepts_the_frame_dtypes_and_returns_the_same_object(dtype) -> None:
    frame = np.zeros((2, 3, 3), dtype)
    assert frames.check_frame(frame) is frame


def test_check_frame_messages() -> None:
    assert _message(frames.check_frame, [[0, 0, 0]]) == "frame: expected a numpy array, got list"
    hint = " (convert grayscale with np.repeat(f[..., None], 3, -1), drop alpha with f[..., :3])"
    assert _message(frames.check_frame, np.zeros((4, 5, 4), np.uint8), "tile") == (
        f"tile: expected shape HxWx3, got (4, 5, 4){hint}")
    assert _message(frames.check_frame, np.zeros((4, 5), np.uint8)) == f"frame: expected shape HxWx3, got (4, 5){hint}"
    assert _message(frames.check_frame, np.zeros((0, 5, 3), np.uint8)) == "frame: empty frame of shape (0, 5, 3)"
    assert _message(frames.check_frame, np.zeros((5, 0, 3), np.uint8)) == "frame: empty frame of shape (5, 0, 3)"
    assert _message(frames.check_frame, np.zeros((2, 2, 3), np.int32)) == (
        "frame: unsupported dtype int32; use uint8, uint16 or float32 on [0, 1]")
    assert _message(frames.check_frame, np.zeros((2, 2, 3), bool)).startswith("frame: unsupported dtype bool")


def test_check_finite() -> None:
    ok = np.full((2, 2, 3), 0.5, np.float32)
    assert frames.check_finite(ok) is ok
    ints = np.zeros((2, 2, 3), np.uint8)
    assert frames.check_finite(ints) is ints
    for bad in (np.nan, np.inf, -np.inf):
        frame = ok.copy()
        frame[1, 1, 2] = bad  # one value is enough
        assert _message(frames.check_finite, frame, "frame 3") == (
            "frame 3: contains NaN or infinite values; clean the float frame before restoring")
    assert "NaN" in _message(frames.check_finite, np.array([[[np.nan, 0, 0]]], np.float16))


def test_to_float_scales_by_the_dtype_maximum() -> None:
    u8 = np.array([[[0, 128, 255]]], np.uint8)
    out = frames.to_float(u8)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[[0, 128, 255]]], np.float32) / np.float32(255))
    u16 = np.array([[[0, 32768, 65535]]], np.uint16)
    out = frames.to_float(u16)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[[0, 32768, 65535]]], np.float32) / np.float32(65535))
    f64 = np.array([[[0.25, 1.5, -0.5]]])
    out = frames.to_float(f64)
    assert out.dtype == np.float32 and np.array_equal(out, f64.astype(np.float32))  # floats are not rescaled
    f32 = np.zeros((1, 1, 3), np.float32)
    assert frames.to_float(f32) is f32  # no copy


def test_to_uint8_clips_and_rounds_half_up() -> None:
    values = np.array([-1.0, 0.0, 0.5 / 255, 0.49 / 255, 1.5 / 255, 127.5 / 255, 0.999, 1.0, 2.0], np.float32)
    expected = np.floor(np.clip(values.astype(np.float64), 0, 1) * 255 + 0.5).astype(np.uint8)
    out = frames.to_uint8(values)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(out, [0, 0, 1, 0, 2, 128, 255, 255, 255])


def test_reorder() -> None:
    frame = np.arange(2 * 2 * 3).reshape(2, 2, 3)
    np.testing.assert_array_equal(frames.reorder(frame, "RGB", "BGR"), frame[..., ::-1])
    np.testing.assert_array_equal(frames.reorder(frame, "BGR", "RGB"), frame[..., ::-1])
    assert frames.reorder(frame, "RGB", "RGB") is frame and frames.reorder(frame, "BGR", "BGR") is frame
    assert "got 'XYZ'" in _message(frames.reorder, frame, "XYZ", "RGB")
    assert "got 'XYZ'" in _message(frames.reorder, frame, "RGB", "XYZ")


@pytest.mark.parametrize(("h", "w", "multiple"), [(13, 21, 8), (16, 21, 8), (13, 16, 8), (9, 9, 4), (30, 17, 16)])
def test_pad_to_multiple_is_np_pad_reflect(h: int, w: int, multiple: int) -> None:
    batch = np.random.default_rng(h * w).random((2, 3, h, w), dtype=np.float32)
    padded, size = frames.pad_to_multiple(batch, multiple)
    ph, pw = (-h) % multiple, (-w) % multiple
    np.testing.assert_array_equal(padded, np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect"))
    assert size == (h, w) and padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0


def test_pad_to_multiple_leaves_multiples_alone() -> None:
    batch = np.zeros((1, 3, 16, 24), np.float32)
    padded, size = frames.pad_to_multiple(batch, 8)
    assert padded is batch and size == (16, 24)


@pytest.mark.parametrize(("h", "w"), [(3, 20), (20, 3), (4, 4), (1, 1), (7, 1)])
def test_frames_smaller_than_the_pad_are_edge_padded(h: int, w: int) -> None:
    """Reflection needs pad < size on both axes; otherwise both axes are edge-padded."""
    batch = np.random.default_rng(7).random((1, 3, h, w), dtype=np.float32)
    padded, size = frames.pad_to_multiple(batch, 8)
    ph, pw = (-h) % 8, (-w) % 8
    np.testing.assert_array_equal(padded, np.pad(batch, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge"))
    assert size == (h, w)


def test_reflect_at_the_boundary_of_what_reflection_allows() -> None:
    # h = 5 -> pad 3 < 5: reflect; w = 4 -> pad 4 == 4: edge (for both axes)
    batch = np.random.default_rng(3).random((1, 1, 5, 12), dtype=np.float32)
    padded, _ = frames.pad_to_multiple(batch, 8)
    np.testing.assert_array_equal(padded, np.pad(batch, ((0, 0), (0, 0), (0, 3), (0, 4)), mode="reflect"))
    batch = np.random.default_rng(3).random((1, 1, 12, 4), dtype=np.float32)
    padded, _ = frames.pad_to_multiple(batch, 8)
    np.testing.assert_array_equal(padded, np.pad(batch, ((0, 0), (0, 0), (0, 4), (0, 4)), mode="edge"))


def test_frames_to_batch_and_back() -> None:
    rng = np.random.default_rng(1)
    frames_u8 = [rng.integers(0, 256, (5, 7, 3), dtype=np.uint8) for _ in range(2)]
    batch = frames.frames_to_batch(frames_u8, "RGB", "BGR")
    expected = np.stack([f[..., ::-1].astype(np.float32) / np.float32(255) for f in frames_u8]).transpose(0, 3, 1, 2)
    assert batch.dtype == np.float32 and batch.flags.c_contiguous
    np.testing.assert_array_equal(batch, expected)
    same = frames.frames_to_batch(frames_u8, "BGR", "BGR")
    np.testing.assert_array_equal(same, expected[:, ::-1])
    back = frames.batch_to_frames(batch, "BGR", "RGB")
    assert len(back) == 2 and all(b.flags.c_contiguous and b.shape == (5, 7, 3) for b in back)
    for b, f in zip(back, frames_u8):
        np.testing.assert_array_equal(b, f.astype(np.float32) / np.float32(255))
    kept = frames.batch_to_frames(batch, "BGR", "BGR")
    np.testing.assert_array_equal(kept[0], batch[0].transpose(1, 2, 0))
    with pytest.raises(InputError, match="expected shape HxWx3"):
        frames.frames_to_batch([np.zeros((5, 7), np.uint8)], "RGB", "RGB")
