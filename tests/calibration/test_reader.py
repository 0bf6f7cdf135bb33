from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ndr_edge.calibration import CalibrationSet
from ndr_edge.calibration.datareader import SetDataReader
from ndr_edge.errors import InputError

from .conftest import CROP


@pytest.fixture
def set_copy(calib_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(calib_dir, tmp_path / "set"))


def test_reader_yields_every_sample_as_model_batches(calib_dir: Path) -> None:
    calib = CalibrationSet.open(calib_dir)
    reader = SetDataReader(calib, channel_order="BGR", batch_size=1)
    assert len(reader) == 6
    feeds = list(iter(reader.get_next, None))
    assert len(feeds) == 6
    rgb = [pixels for _, pixels in calib.iter_samples()]
    for feed, pixels in zip(feeds, rgb, strict=True):
        batch = feed["input"]
        assert batch.shape == (1, 3, CROP, CROP) and batch.dtype == np.float32
        assert 0.0 <= batch.min() and batch.max() <= 1.0
        # BGR: channel 0 of the batch is the blue channel of the stored RGB crop
        np.testing.assert_allclose(batch[0, 0], pixels[..., 2] / 255.0, atol=1e-6)
        np.testing.assert_allclose(batch[0, 2], pixels[..., 0] / 255.0, atol=1e-6)
    rgb_reader = SetDataReader(calib, channel_order="RGB")
    np.testing.assert_allclose(rgb_reader.get_next()["input"][0, 0], rgb[0][..., 0] / 255.0, atol=1e-6)


def test_batches_rewind_and_ranges(calib_dir: Path) -> None:
    calib = CalibrationSet.open(calib_dir)
    reader = SetDataReader(calib, batch_size=4)
    shapes = [f["input"].shape[0] for f in iter(reader.get_next, None)]
    assert shapes == [4, 2] and len(reader) == 2
    assert reader.get_next() is None
    reader.rewind()
    first = reader.get_next()["input"]
    reader.set_range(1, 2)
    assert reader.get_next()["input"].shape[0] == 2 and reader.get_next() is None
    reader.rewind()
    np.testing.assert_array_equal(reader.get_next()["input"], first)
    assert len(SetDataReader(calib, limit=3)) == 3


def test_shards_are_memory_mapped_one_at_a_time(calib_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calib = CalibrationSet.open(calib_dir)
    loads: list[str] = []
    real_load = np.load

    def spy(file: object, *args: object, **kwargs: object) -> object:
        loads.append(f"{Path(str(file)).name}:{kwargs.get('mmap_mode')}")
        return real_load(file, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(np, "load", spy)
    reader = SetDataReader(calib)
    reader.get_next()
    assert loads == ["shard-00000.npy:r"]  # opening the set and the first batch touch one shard only
    for _ in range(3):
        reader.get_next()
    assert loads == ["shard-00000.npy:r"]
    reader.get_next()
    assert loads == ["shard-00000.npy:r", "shard-00001.npy:r"]
    assert isinstance(calib.load_shard(0), np.memmap)


def test_corrupt_shard_is_named(set_copy: Path) -> None:
    shard = set_copy / "shard-00001.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    calib = CalibrationSet.open(set_copy)  # the manifest is fine; shards are checked when read
    reader = SetDataReader(calib)
    for _ in range(4):
        assert reader.get_next() is not None
    with pytest.raises(InputError, match=r"shard-00001\.npy: shard is corrupt"):
        reader.get_next()
    with pytest.raises(InputError, match="shard-00001.npy"):
        calib.verify_all()


def test_truncated_shard_without_hash_check(set_copy: Path) -> None:
    shard = set_copy / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:200])
    calib = CalibrationSet.open(set_copy, verify=False)
    with pytest.raises(InputError, match=r"shard-00000\.npy: shard"):
        calib.load_shard(0)


def test_missing_shard_and_bad_manifest(set_copy: Path, tmp_path: Path) -> None:
    (set_copy / "shard-00001.npy").unlink()
    with pytest.raises(InputError, match="shard-00001.npy: shard listed in the manifest is missing"):
        CalibrationSet.open(set_copy)
    (set_copy / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable manifest"):
        CalibrationSet.open(set_copy)
    (set_copy / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(InputError, match="not an ndr-edge calibration set"):
        CalibrationSet.open(set_copy)
    with pytest.raises(InputError, match="no such calibration set"):
        CalibrationSet.open(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match="no manifest.json"):
        CalibrationSet.open(tmp_path / "plain")


def test_set_must_fit_the_model_input(calib_dir: Path) -> None:
    calib = CalibrationSet.open(calib_dir)
    calib.check_input_size(["batch", 3, "height", "width"])  # dynamic: any multiple of 8
    calib.check_input_size([1, 3, CROP, CROP])
    with pytest.raises(InputError, match=f"built for {CROP}x{CROP}, model exported for 64x64"):
        calib.check_input_size([1, 3, 64, 64])
    with pytest.raises(InputError, match="profile allows 64x64 to 256x256"):
        calib.check_input_size(None, profile=((64, 64), (256, 256)))
    with pytest.raises(InputError, match="not a multiple of 48"):
        calib.check_input_size(None, multiple=48)
