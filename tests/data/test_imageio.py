"""Image IO: documented conversions, errors naming the file, atomic writes, demo photos."""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from ndr_edge import imageio
from ndr_edge.errors import InputError
from ndr_edge.imageio import DEMO_HELDOUT, DEMO_TRAIN, demo_images, list_images, read_image, write_image


def _assert_rgb8(a: np.ndarray, shape: tuple[int, int]) -> None:
    assert a.dtype == np.uint8 and a.shape == (*shape, 3)


def test_png_roundtrip_is_exact(tmp_path, rgb8):
    write_image(tmp_path / "x.png", rgb8)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), rgb8)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".tiff", ".PNG"])
def test_lossless_formats_roundtrip(tmp_path, rgb8, suffix):
    write_image(tmp_path / f"x{suffix}", rgb8)
    np.testing.assert_array_equal(read_image(tmp_path / f"x{suffix}"), rgb8)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_lossy_formats_roundtrip_closely(tmp_path, suffix):
    smooth = np.linspace(0, 255, 32 * 32 * 3).reshape(32, 32, 3).astype(np.uint8)
    write_image(tmp_path / f"x{suffix}", smooth)
    back = read_image(tmp_path / f"x{suffix}")
    _assert_rgb8(back, (32, 32))
    assert np.abs(back.astype(int) - smooth).mean() < 3


def test_float_input_is_clipped_and_rounded(tmp_path):
    frame = np.array([[[0.5, -0.2, 1.7], [1 / 255 * 0.49, 1 / 255 * 0.51, 1.0]]], np.float32)
    write_image(tmp_path / "f.png", frame)
    np.testing.assert_array_equal(read_image(tmp_path / "f.png"), [[[128, 0, 255], [0, 1, 255]]])


def test_uint16_input_is_scaled_with_rounding(tmp_path):
    frame = np.array([[[2000, 65535, 128]]], np.uint16)  # 7.78 -> 8, 255, 0.498 -> 0
    write_image(tmp_path / "w.png", frame)
    np.testing.assert_array_equal(read_image(tmp_path / "w.png"), [[[8, 255, 0]]])


def test_grayscale_is_replicated(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 12
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    _assert_rgb8(out, (4, 5))
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], gray)


def test_gray_alpha_drops_alpha(tmp_path):
    la = np.stack([np.full((3, 4), 90, np.uint8), np.zeros((3, 4), np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), np.full((3, 4, 3), 90))


def test_rgba_drops_alpha_without_compositing(tmp_path, rgb8):
    alpha = np.zeros(rgb8.shape[:2], np.uint8)  # fully transparent: colours must survive
    alpha[0, 0] = 255
    Image.fromarray(np.dstack([rgb8, alpha])).save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), rgb8)


def test_palette_goes_through_the_palette(tmp_path):
    img = Image.new("P", (3, 2))
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    img.putdata([0, 1, 2, 2, 1, 0])
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0], [[255, 0, 0], [0, 255, 0], [0, 0, 255]])
    np.testing.assert_array_equal(out[1], [[0, 0, 255], [0, 255, 0], [255, 0, 0]])


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_grayscale_scaled_with_rounding(tmp_path, suffix):
    values = np.array([[0, 128, 129, 2000, 32896, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / f"g16{suffix}")
    out = read_image(tmp_path / f"g16{suffix}")
    expected = np.rint(values / 257).astype(np.uint8)  # 0, 0, 1, 8, 128, 255 (truncation: 7 for 2000)
    np.testing.assert_array_equal(out[..., 0], expected)
    np.testing.assert_array_equal(out[..., 2], expected)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_colour_scaled_with_rounding(tmp_path, suffix):
    cv2 = pytest.importorskip("cv2", reason="exact 16-bit colour decoding needs OpenCV")
    rgb = np.array([[[2000, 129, 65535], [40000, 0, 300]]], np.uint16)
    assert cv2.imwrite(str(tmp_path / f"c16{suffix}"), rgb[..., ::-1])
    out = read_image(tmp_path / f"c16{suffix}")
    np.testing.assert_array_equal(out, np.rint(rgb / 257).astype(np.uint8))


def test_16bit_rgba_drops_alpha(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="exact 16-bit colour decoding needs OpenCV")
    bgra = np.array([[[1000, 2000, 3000, 0]]], np.uint16)
    assert cv2.imwrite(str(tmp_path / "a16.png"), bgra)
    np.testing.assert_array_equal(read_image(tmp_path / "a16.png"), [[[12, 8, 4]]])


def test_cmyk_becomes_rgb(tmp_path):
    Image.new("CMYK", (2, 2), (0, 255, 0, 0)).save(tmp_path / "c.tif")  # magenta ink
    np.testing.assert_array_equal(read_image(tmp_path / "c.tif"), np.tile([255, 0, 255], (2, 2, 1)))


def test_one_bit_and_float_images(tmp_path):
    Image.fromarray(np.array([[True, False]])).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_image(tmp_path / "b.png")[..., 1], [[255, 0]])
    Image.fromarray(np.array([[0.0, 0.5, 2.0]], np.float32)).save(tmp_path / "f.tif")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif")[..., 0], [[0, 128, 255]])


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    data = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(data).save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as img:
        expected = np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    np.testing.assert_array_equal(read_image(tmp_path / "o.png"), expected)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(InputError, match=r"nope\.png: image not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="not a file"):
        read_image(tmp_path)


def test_corrupt_and_truncated_files_name_the_file(tmp_path, rgb8):
    (tmp_path / "junk.png").write_bytes(b"this is not an image")
    with pytest.raises(InputError, match=r"junk\.png: cannot read image"):
        read_image(tmp_path / "junk.png")
    buffer = io.BytesIO()
    Image.fromarray(np.tile(rgb8, (8, 8, 1))).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(InputError, match=r"cut\.png: cannot read image"):
        read_image(tmp_path / "cut.png")


def test_write_is_atomic_and_leaves_no_temp_file(tmp_path, rgb8):
    target = tmp_path / "out" / "x.png"  # parent created
    write_image(target, rgb8)
    write_image(target, rgb8[::-1])  # replace
    assert [p.name for p in target.parent.iterdir()] == ["x.png"]
    np.testing.assert_array_equal(read_image(target), rgb8[::-1])


def test_failed_write_keeps_the_old_file(tmp_path, rgb8, monkeypatch):
    target = tmp_path / "x.png"
    write_image(target, rgb8)
    before = target.read_bytes()

    def fail(fd, mode):  # the encode succeeded; writing the temporary file fails
        raise OSError("disk full")

    monkeypatch.setattr("ndr_edge.artifact.os.fdopen", fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(target, rgb8[::-1])
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    assert target.read_bytes() == before


def test_write_rejects_bad_input(tmp_path, rgb8):
    with pytest.raises(InputError, match="suffix"):
        write_image(tmp_path / "x.gif", rgb8)
    with pytest.raises(InputError, match="HxWx3"):
        write_image(tmp_path / "x.png", rgb8[..., 0])
    with pytest.raises(InputError, match="dtype"):
        write_image(tmp_path / "x.png", rgb8.astype(np.int64))
    assert list(tmp_path.iterdir()) == []


def test_list_images(tmp_path, rgb8):
    for name in ["b.jpg", "a.PNG", "c.webp", ".hidden.png", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.PNG", "b.jpg", "c.webp"]


def test_list_images_errors(tmp_path):
    with pytest.raises(InputError, match="folder not found"):
        list_images(tmp_path / "missing")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(InputError, match="not a folder"):
        list_images(tmp_path / "f.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match="empty: no images found"):
        list_images(tmp_path / "empty")


def test_demo_images():
    train, held = demo_images("train"), demo_images("heldout")
    assert [n for n, _ in train] == list(DEMO_TRAIN) and [n for n, _ in held] == list(DEMO_HELDOUT)
    assert [n for n, _ in demo_images()] == list(DEMO_TRAIN + DEMO_HELDOUT)
    assert "motorcycle_right" not in DEMO_TRAIN + DEMO_HELDOUT
    for name, image in train + held:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3, name
        assert min(image.shape[:2]) >= 256, name
        assert image.std() > 10, name  # a photo, not a blank
    train[0][1][:] = 0  # callers get copies
    assert demo_images("train")[0][1].any()
    with pytest.raises(InputError, match="split"):
        demo_images("test")


def test_demo_images_without_scikit_image(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(InputError, match="pip install scikit-image"):
        imageio.demo_folder()
