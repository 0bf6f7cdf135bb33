from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ndr_edge.artifact import sha256_file
from ndr_edge.calibration import CalibrationRecipe, CalibrationSet, build_set
from ndr_edge.errors import InputError

RECIPE = CalibrationRecipe(samples=10, crop=32, shard_size=4, seed=7)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(".")]


def test_same_recipe_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    a = build_set(None, RECIPE, tmp_path / "a", progress=False)
    b = build_set(None, RECIPE, tmp_path / "b", progress=False)
    assert _files(a.path) == _files(b.path)
    assert sorted(_files(a.path)) == ["manifest.json", "shard-00000.npy", "shard-00001.npy", "shard-00002.npy"]
    other = build_set(None, CalibrationRecipe(samples=10, crop=32, shard_size=4, seed=8), tmp_path / "c", progress=False)
    assert _files(other.path)["shard-00000.npy"] != _files(a.path)["shard-00000.npy"]
    assert _leftovers(tmp_path) == []


def test_manifest_records_recipe_sources_labels_and_hashes(tmp_path: Path) -> None:
    calib = build_set(None, RECIPE, tmp_path / "set", progress=False)
    manifest = json.loads((calib.path / "manifest.json").read_text())
    assert manifest["recipe"] == RECIPE.to_dict()
    assert manifest["count"] == len(manifest["labels"]) == 10
    assert manifest["label_counts"] == {k: v for k, v in RECIPE.counts().items() if v}
    assert sorted(set(manifest["labels"])) == sorted(manifest["label_counts"])
    assert len(manifest["sources"]) == 6 and all(len(s["sha256"]) == 64 for s in manifest["sources"])
    assert all(s["name"].startswith("demo/") for s in manifest["sources"])
    for shard in manifest["shards"]:
        assert sha256_file(calib.path / shard["file"]) == shard["sha256"]
    assert [s["count"] for s in manifest["shards"]] == [4, 4, 2]
    assert (calib.path / "manifest.json").stat().st_mode & 0o044  # readable like any file, not 0600


def test_folders_of_images_are_sources(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / "small.png")  # < crop: enlarged
    calib = build_set([folder], RECIPE, tmp_path / "set", progress=False)
    names = [s["name"] for s in calib.manifest["sources"]]
    assert names == ["photos/img0.png", "photos/img1.png", "photos/small.png"]
    assert calib.manifest["sources"][0]["sha256"] == sha256_file(folder / "img0.png")
    assert all(p.shape == (32, 32, 3) for _, p in calib.iter_samples())


def test_real_frames_are_cropped_not_degraded(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    colours = [(10, 200, 30), (250, 5, 90)]
    for i, colour in enumerate(colours):
        Image.fromarray(np.full((48, 64, 3), colour, np.uint8)).save(folder / f"f{i}.png")
    calib = build_set([folder], CalibrationRecipe.real(samples=6, crop=32), tmp_path / "real", progress=False)
    assert calib.kind == "real" and set(calib.labels) == {"real"}
    for _, pixels in calib.iter_samples():
        assert tuple(pixels[0, 0]) in colours and (pixels == pixels[0, 0]).all()


def test_empty_folder_is_a_clear_error_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images found"):
        build_set([tmp_path / "empty"], RECIPE, tmp_path / "set", progress=False)
    with pytest.raises(InputError, match="not a folder"):
        build_set([tmp_path / "missing"], RECIPE, tmp_path / "set", progress=False)
    assert not (tmp_path / "set").exists() and _leftovers(tmp_path) == []


def test_unreadable_image_names_the_file_and_nothing_is_written(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(InputError, match="broken.png"):
        build_set([folder], RECIPE, tmp_path / "set", progress=False)
    assert not (tmp_path / "set").exists() and _leftovers(tmp_path) == []


def test_failure_while_writing_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ndr_edge.calibration import build as build_module

    calls = {"n": 0}
    real = build_module.make_sample

    def flaky(*args: object, **kwargs: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 7:  # after the first shard is on disk
            raise RuntimeError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "make_sample", flaky)
    with pytest.raises(RuntimeError, match="disk full"):
        build_set(None, RECIPE, tmp_path / "set", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    first = build_set(None, RECIPE, tmp_path / "set", progress=False)
    with pytest.raises(InputError, match="already exists"):
        build_set(None, RECIPE, tmp_path / "set", progress=False)
    second = CalibrationRecipe(samples=5, crop=32, shard_size=4)
    build_set(None, second, tmp_path / "set", overwrite=True, progress=False)
    assert len(CalibrationSet.open(first.path)) == 5
    assert _leftovers(tmp_path) == []
