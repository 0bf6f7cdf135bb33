"""Datasets: synthetic pairs are deterministic per (seed, i); paired folders in every layout;
synthetic evaluation sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ndr_edge.data import (
    CropConfig,
    EvalSample,
    PairedFolder,
    SyntheticPairs,
    find_pairs,
    load_clean_folder,
    spread_crops,
    synthetic_eval_set,
)
from ndr_edge.errors import InputError

TRAIN = ("noise", "rain", "haze", "lowres")


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (70, 90, 3), dtype=np.uint8), rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)]


def _pairs(images, **kw) -> SyntheticPairs:
    args: dict = {"degradations": TRAIN, "crop": CropConfig(size=32), "samples": 16, "seed": 3, **kw}
    return SyntheticPairs(images, **args)


# -- SyntheticPairs -----------------------------------------------------------------------
def test_items_are_shaped_tensors(images):
    ds = _pairs(images)
    assert len(ds) == 16
    for i in range(len(ds)):
        item = ds[i]
        for key in ("lq", "gt"):
            t = item[key]
            assert isinstance(t, torch.Tensor) and t.shape == (3, 32, 32) and t.dtype == torch.float32
            assert 0.0 <= float(t.min()) and float(t.max()) <= 1.0
        assert item["degradation"] in TRAIN
        assert not torch.equal(item["lq"], item["gt"])
    assert {ds[i]["degradation"] for i in range(16)} == set(TRAIN)


def test_deterministic_per_seed_and_index(images):
    a, b = _pairs(images), _pairs(images)
    later = [b[i] for i in (9, 2, 5)]  # other order, other instance
    for item, i in zip(later, (9, 2, 5)):
        assert torch.equal(item["lq"], a[i]["lq"]) and torch.equal(item["gt"], a[i]["gt"])
    other = _pairs(images, seed=4)
    assert not all(torch.equal(a[i]["gt"], other[i]["gt"]) for i in range(4))
    assert not torch.equal(a[0]["gt"], a[1]["gt"])


def test_workers_see_the_same_data(images):
    ds = _pairs(images, samples=8)
    single = next(iter(DataLoader(ds, batch_size=8, num_workers=0)))
    multi = torch.cat([b["lq"] for b in DataLoader(ds, batch_size=4, num_workers=2)])
    assert single["lq"].shape == (8, 3, 32, 32) and len(single["degradation"]) == 8
    assert torch.equal(single["lq"], multi)


def test_channel_order(images):
    bgr, rgb = _pairs(images), _pairs(images, channel_order="RGB")
    assert torch.equal(bgr[0]["gt"], rgb[0]["gt"].flip(0)) and torch.equal(bgr[0]["lq"], rgb[0]["lq"].flip(0))


def _coordinates(h: int, w: int) -> np.ndarray:
    """float image whose red channel is the row and green channel the column (in 1/256)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / 256
    return np.stack([yy, xx, np.zeros_like(yy)], axis=-1)


def test_plain_crop_is_a_window_of_the_image():
    image = _coordinates(100, 120)
    ds = SyntheticPairs([image], ["noise15"], CropConfig(24, flips=False, rotations=False), 6, seed=0, channel_order="RGB")
    for i in range(6):
        gt = ds[i]["gt"].numpy()
        top, left = round(gt[0, 0, 0] * 256), round(gt[1, 0, 0] * 256)
        np.testing.assert_array_equal(gt.transpose(1, 2, 0), image[top:top + 24, left:left + 24])


def test_augmentations_cover_flips_and_rotations():
    ds = SyntheticPairs([_coordinates(64, 64)], ["noise15"], CropConfig(16), 64, seed=1, channel_order="RGB")
    seen = set()
    for i in range(len(ds)):
        gt = ds[i]["gt"].numpy()
        down, right = gt[0, 1, 0] - gt[0, 0, 0], gt[0, 0, 1] - gt[0, 0, 0]  # how the row index moves
        seen.add((round(float(down) * 256), round(float(right) * 256)))
    assert seen == {(1, 0), (-1, 0), (0, 1), (0, -1)}


def test_small_images_are_reflect_padded():
    small = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    ds = SyntheticPairs([small], ["noise15"], CropConfig(16, flips=False, rotations=False), 2, seed=0, channel_order="RGB")
    gt = ds[0]["gt"].numpy().transpose(1, 2, 0)
    expected = np.pad(small, ((0, 11), (0, 10), (0, 0)), mode="reflect").astype(np.float32) / 255
    np.testing.assert_array_equal(gt, expected)
    one = SyntheticPairs([np.full((1, 1, 3), 9, np.uint8)], ["haze"], CropConfig(8), 1, seed=0)
    assert one[0]["gt"].shape == (3, 8, 8)


def test_synthetic_pairs_validation(images):
    with pytest.raises(InputError, match="no clean images"):
        _pairs([])
    with pytest.raises(InputError, match="snow"):
        _pairs(images, degradations=["snow"])
    with pytest.raises(InputError, match="channel order"):
        _pairs(images, channel_order="YUV")
    with pytest.raises(InputError, match="seed"):
        _pairs(images, seed=-1)
    with pytest.raises(InputError, match="HxWx3"):
        _pairs([np.zeros((8, 8), np.uint8)])
    with pytest.raises(InputError, match="crop size"):
        CropConfig(size=0)
    with pytest.raises(IndexError):
        _pairs(images)[16]


# -- folders ------------------------------------------------------------------------------
def _write(path: Path, value: int, size: tuple[int, int] = (12, 10)) -> np.ndarray:
    """Write a (w, h) PNG/JPEG of distinct content; return it as uint8 HxWx3."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (np.arange(size[0] * size[1] * 3).reshape(size[1], size[0], 3) * 7 + value * 31) % 256
    Image.fromarray(data.astype(np.uint8)).save(path)
    return data.astype(np.uint8)


def test_load_clean_folder(tmp_path):
    b = _write(tmp_path / "b.png", 2)
    a = _write(tmp_path / "a.png", 1)
    loaded = load_clean_folder(tmp_path)
    assert [n for n, _ in loaded] == ["a", "b"]
    np.testing.assert_array_equal(loaded[0][1], a)
    np.testing.assert_array_equal(loaded[1][1], b)


def test_rain100l_layout(tmp_path):
    expected = {}
    for k in (1, 2, 3):
        lq = _write(tmp_path / "rainy" / f"rain-{k:03d}.png", k)
        gt = _write(tmp_path / "norain" / f"norain-{k:03d}.png", 10 + k)
        expected[f"rain-{k:03d}"] = (lq, gt)
    ds = PairedFolder(tmp_path)
    assert ds.layout == "rain100l" and len(ds) == 3 and ds.names == sorted(expected)
    for i in range(3):
        item = ds[i]
        lq, gt = expected[item["name"]]
        assert item["lq"].dtype == np.float32 and item["lq"].shape == (10, 12, 3)
        np.testing.assert_array_equal(item["lq"], lq / np.float32(255))
        np.testing.assert_array_equal(item["gt"], gt / np.float32(255))
    t = ds.tensors(0)
    assert t["lq"].shape == (3, 10, 12)
    assert torch.equal(t["gt"], torch.from_numpy(ds[0]["gt"][..., ::-1].transpose(2, 0, 1).copy()))  # BGR


def test_rain100l_naming_variants(tmp_path):
    _write(tmp_path / "rain" / "norain-7x2.png", 1)  # JORDER: the rainy file of image 7
    _write(tmp_path / "norain" / "norain-007.png", 2)
    _write(tmp_path / "rain" / "12.png", 3)
    _write(tmp_path / "norain" / "12.png", 4)
    layout, pairs = find_pairs(tmp_path, "rain100l")
    assert layout == "rain100l"
    assert {(p.lq.name, p.gt.name) for p in pairs} == {("norain-7x2.png", "norain-007.png"), ("12.png", "12.png")}


def test_sots_layout_with_several_hazy_per_clean_and_border(tmp_path):
    _write(tmp_path / "hazy" / "0001_0.8_0.2.png", 1, size=(12, 10))
    _write(tmp_path / "hazy" / "0001_0.9_0.16.png", 2, size=(12, 10))
    big = _write(tmp_path / "clear" / "0001.png", 3, size=(16, 14))  # 2-pixel border all round
    _write(tmp_path / "hazy" / "0002_1_0.1.jpg", 4)
    _write(tmp_path / "clear" / "0002.png", 5)
    ds = PairedFolder(tmp_path, layout="auto")
    assert ds.layout == "sots" and ds.names == ["0001_0.8_0.2", "0001_0.9_0.16", "0002_1_0.1"]
    np.testing.assert_array_equal(ds[0]["gt"], big[2:12, 2:14] / np.float32(255))
    assert ds[2]["lq"].shape == ds[2]["gt"].shape == (10, 12, 3)


def test_pairs_layout_matches_stems_across_suffixes(tmp_path):
    _write(tmp_path / "lq" / "a.png", 1)
    _write(tmp_path / "gt" / "a.jpg", 2)
    assert PairedFolder(tmp_path).layout == "pairs"
    assert [p.gt.name for p in find_pairs(tmp_path, "pairs")[1]] == ["a.jpg"]


def test_unpaired_files_are_named(tmp_path):
    for k in range(1, 9):
        _write(tmp_path / "lq" / f"img{k}.png", k)
    _write(tmp_path / "gt" / "img1.png", 1)
    _write(tmp_path / "gt" / "extra.png", 1)
    with pytest.raises(InputError, match=r"7 in lq/ without a partner \(img2.png, .*img6.png, \.\.\.\); "
                                         r"1 in gt/ without a partner \(extra.png\)") as err:
        PairedFolder(tmp_path)
    assert str(tmp_path) in str(err.value) and "img8.png" not in str(err.value)


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        PairedFolder(tmp_path / "missing")
    with pytest.raises(InputError, match=r"no auto pair layout found; expected subfolders sots: hazy/"):
        PairedFolder(tmp_path)
    with pytest.raises(InputError, match="unknown pair layout"):
        PairedFolder(tmp_path, layout="gopro")
    (tmp_path / "lq").mkdir()
    (tmp_path / "gt").mkdir()
    with pytest.raises(InputError, match="no images found"):
        PairedFolder(tmp_path, layout="pairs")


def test_duplicate_keys_and_size_mismatch(tmp_path):
    _write(tmp_path / "rainy" / "rain-1.png", 1)
    _write(tmp_path / "rainy" / "rain-001.png", 1)
    _write(tmp_path / "norain" / "norain-1.png", 2)
    with pytest.raises(InputError, match="both pair with norain-1.png"):
        PairedFolder(tmp_path)
    (tmp_path / "rainy" / "rain-1.png").unlink()
    _write(tmp_path / "norain" / "norain-1.png", 2, size=(14, 10))
    ds = PairedFolder(tmp_path)
    with pytest.raises(InputError, match=r"rain-001.png: size 12x10 differs from its clean partner norain-1.png \(14x10\)"):
        ds[0]


# -- synthetic evaluation sets ------------------------------------------------------------
def test_synthetic_eval_set(images):
    named = [("a", images[0]), ("b", images[1])]
    samples = synthetic_eval_set(named, ["noise25", "haze"], seed=0, max_side=32)
    assert [(s.degradation, s.name) for s in samples] == [("noise25", "a"), ("noise25", "b"), ("haze", "a"), ("haze", "b")]
    for s in samples:
        assert isinstance(s, EvalSample) and s.lq.dtype == s.gt.dtype == np.float32
        assert s.lq.shape == s.gt.shape == (32, 32, 3)
    np.testing.assert_array_equal(samples[0].gt, images[0][19:51, 29:61] / np.float32(255))  # centre crop
    np.testing.assert_array_equal(samples[0].gt, samples[2].gt)


def test_spread_crops_are_distinct_windows_that_avoid_the_centre():
    image = np.arange(400 * 600 * 3, dtype=np.int32).reshape(400, 600, 3)
    crops = spread_crops([("p", image)], 128, 4)
    assert [name for name, _ in crops] == ["p@36,86", "p@36,386", "p@236,86", "p@236,386"]
    for name, crop in crops:
        top, left = map(int, name.split("@")[1].split(","))
        np.testing.assert_array_equal(crop, image[top: top + 128, left: left + 128])
        # none overlaps the 128 px centre crop (rows 136-263, cols 236-363) that reports score
        assert top + 128 <= 136 or top >= 264 or left + 128 <= 236 or left >= 364
    assert [name for name, _ in spread_crops([("p", image)], 128, 1)] == ["p"]
    assert [c.shape for _, c in spread_crops([("p", image)], 128, 6)] == [(128, 128, 3)] * 6
    small = spread_crops([("s", image[:50, :40])], 128, 4)  # larger than the image: the whole image, clipped
    assert all(c.shape == (50, 40, 3) for _, c in small)
    with pytest.raises(InputError, match="positive"):
        spread_crops([("p", image)], 128, 0)


def test_default_int8_eval_set_samples_each_degradation_eight_times():
    from ndr_edge.calibration.evaluate import default_eval_set

    samples = default_eval_set(degradations=["mix", "noise25"])
    assert len(samples) == 16 and {s.lq.shape for s in samples} == {(128, 128, 3)}
    mixes = [s.lq for s in samples if s.degradation == "mix"]
    assert len(mixes) == 8 and len({m.tobytes() for m in mixes}) == 8


def test_default_int8_eval_set_adds_flat_grey_crops_under_x4():
    from ndr_edge.calibration.evaluate import FLAT_GROUP, default_eval_set
    from ndr_edge.data.datasets import flat_grey

    samples = default_eval_set(degradations=["lowres4"])
    flat = [s for s in samples if s.degradation == FLAT_GROUP]
    assert len(samples) == 16 and len(flat) == 8
    for s in flat:  # grey, and flatter than the colour crop it was made from
        assert np.allclose(s.gt[..., 0], s.gt[..., 2], atol=1e-6)
    colour = [s for s in samples if s.degradation == "lowres4"]
    assert np.mean([s.gt.std() for s in flat]) < 0.8 * np.mean([s.gt.std() for s in colour])
    assert not any(s.degradation == FLAT_GROUP for s in default_eval_set(degradations=["noise25"]))
    assert len(default_eval_set(degradations=["lowres4"], flat=False)) == 8
    image = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    out = flat_grey(image)
    assert out.dtype == np.float32 and out.shape == image.shape and out.std() < image.std()
    assert abs(float(out.mean()) - float(image.mean())) < 0.02


def test_eval_set_is_deterministic_and_independent_of_composition(images):
    named = [("a", images[0]), ("b", images[1])]
    full = synthetic_eval_set(named, ["noise25", "haze", "mix"], seed=5, max_side=None)
    alone = synthetic_eval_set(named[1:], ["mix"], seed=5, max_side=None)
    np.testing.assert_array_equal(full[-1].lq, alone[0].lq)
    assert full[0].lq.shape == (70, 90, 3)
    other = synthetic_eval_set(named, ["noise25"], seed=6, max_side=None)
    assert not np.array_equal(full[0].lq, other[0].lq)
    with pytest.raises(InputError, match="no images"):
        synthetic_eval_set([], ["noise25"])
    with pytest.raises(InputError, match="max_side"):
        synthetic_eval_set(named, ["noise25"], max_side=0)


def test_offset_continues_the_stream_and_balanced_cycles(photo):
    import torch

    from ndr_edge.data import CropConfig, SyntheticPairs
    from ndr_edge.data.procedural import dead_leaves_set

    pool = [img for _, img in dead_leaves_set(2, 48, seed=1)]
    kw = {"crop": CropConfig(size=32), "seed": 3, "procedural": pool, "procedural_fraction": 0.5, "balanced": True}
    whole = SyntheticPairs([photo], ["noise", "rain", "haze"], samples=12, **kw)
    tail = SyntheticPairs([photo], ["noise", "rain", "haze"], samples=6, offset=6, **kw)
    for i in range(6):
        assert torch.equal(tail[i]["lq"], whole[i + 6]["lq"]) and tail[i]["degradation"] == whole[i + 6]["degradation"]
    assert [whole[i]["degradation"] for i in range(6)] == ["noise", "rain", "haze"] * 2
    # a flat pool makes its crops recognisable: about half the crops come from it
    flat = SyntheticPairs([photo], ["noise"], samples=40, **{**kw, "procedural": [np.full((48, 48, 3), 0.25, np.float32)]})
    from_pool = sum(1 for i in range(40) if torch.allclose(flat[i]["gt"], torch.tensor(0.25), atol=1e-6))
    assert 10 <= from_pool <= 30


def test_procedural_fraction_needs_a_pool(photo):
    from ndr_edge.data import CropConfig, SyntheticPairs

    with pytest.raises(InputError, match="procedural"):
        SyntheticPairs([photo], ["noise"], CropConfig(size=32), samples=1, seed=0, procedural_fraction=0.5)


def test_structured_pool_takes_its_share_and_leaves_old_streams_alone(photo):
    import torch

    from ndr_edge.data import CropConfig, SyntheticPairs

    kw = {"crop": CropConfig(size=32, flips=False, rotations=False), "seed": 4, "samples": 60}
    dead = [np.full((48, 48, 3), 0.25, np.float32)]
    walls = [np.full((48, 48, 3), 0.75, np.float32)]
    both = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, structured=walls,
                          structured_fraction=0.3, **kw)
    counts = {v: sum(1 for i in range(60) if torch.allclose(both[i]["gt"], torch.tensor(v), atol=1e-6)) for v in (0.25, 0.75)}
    assert 8 <= counts[0.25] <= 30 and 8 <= counts[0.75] <= 30, counts
    # structured_fraction 0 draws exactly what a run without the option drew
    old = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, **kw)
    new = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, structured=walls, **kw)
    assert all(torch.equal(old[i]["lq"], new[i]["lq"]) for i in range(10))
    with pytest.raises(InputError, match="structured"):
        SyntheticPairs([photo], ["noise"], structured_fraction=0.2, **kw)
    with pytest.raises(InputError, match="structured"):
        SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.7, structured=walls,
                       structured_fraction=0.5, **kw)


def test_objects_pool_takes_its_share_and_leaves_old_streams_alone(photo):
    import torch

    from ndr_edge.data import CropConfig, SyntheticPairs

    kw = {"crop": CropConfig(size=32, flips=False, rotations=False), "seed": 4, "samples": 60}
    dead = [np.full((48, 48, 3), 0.25, np.float32)]
    walls = [np.full((48, 48, 3), 0.75, np.float32)]
    coins = [np.full((48, 48, 3), 0.5, np.float32)]
    three = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, structured=walls,
                           structured_fraction=0.3, objects=coins, objects_fraction=0.3, **kw)
    counts = {v: sum(1 for i in range(60) if torch.allclose(three[i]["gt"], torch.tensor(v), atol=1e-6))
              for v in (0.25, 0.75, 0.5)}
    assert all(8 <= c <= 30 for c in counts.values()), counts
    # objects_fraction 0 draws exactly what a run without the option drew
    old = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, structured=walls,
                         structured_fraction=0.3, **kw)
    new = SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.3, structured=walls,
                         structured_fraction=0.3, objects=coins, **kw)
    assert all(torch.equal(old[i]["lq"], new[i]["lq"]) for i in range(10))
    with pytest.raises(InputError, match="objects"):
        SyntheticPairs([photo], ["noise"], objects_fraction=0.2, **kw)
    with pytest.raises(InputError, match="objects"):
        SyntheticPairs([photo], ["noise"], procedural=dead, procedural_fraction=0.5, structured=walls,
                       structured_fraction=0.3, objects=coins, objects_fraction=0.3, **kw)


def test_retone_flattens_without_clipping_and_is_seeded():
    from ndr_edge.data.datasets import retone

    image = np.random.default_rng(0).uniform(0.1, 0.9, (32, 32, 3)).astype(np.float32)
    outs = [retone(image, np.random.default_rng(s)) for s in range(20)]
    for out in outs:
        assert out.dtype == np.float32 and out.shape == image.shape
        assert 0.0 <= out.min() and out.max() <= 1.0
        ratio = out.std() / image.std()
        assert 0.3 - 1e-4 <= ratio <= 1.0 + 1e-4  # contrast only goes down, within the range
        # an affine map of the image: the centred image is a scaled copy of the original
        np.testing.assert_allclose(out - out.mean(), ratio * (image - image.mean()), atol=1e-5)
    assert len({round(float(o.mean()), 4) for o in outs}) > 10  # the level moves
    np.testing.assert_array_equal(retone(image, np.random.default_rng(3)), outs[3])


def test_tone_changes_some_clean_crops_and_zero_keeps_the_stream(images):
    kw = {"degradations": ["noise15"], "samples": 12, "seed": 5}
    plain = SyntheticPairs(images, crop=CropConfig(size=32), **kw)
    toned = SyntheticPairs(images, crop=CropConfig(size=32, tone=1.0), **kw)
    again = SyntheticPairs(images, crop=CropConfig(size=32, tone=0.0), **kw)
    for i in range(12):
        torch.testing.assert_close(plain[i]["gt"], again[i]["gt"])
    # with tone=1 every clean crop is a flatter (or equal) copy of the plain one
    stds = [(toned[i]["gt"].std() / plain[i]["gt"].std()).item() for i in range(12)]
    assert all(s <= 1.0 + 1e-4 for s in stds) and min(stds) < 0.9
    with pytest.raises(InputError, match="tone"):
        CropConfig(tone=1.5)
    with pytest.raises(InputError, match="contrast"):
        CropConfig(contrast=(0.0, 1.0))
