from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from ndr_edge.calibration import CalibrationSet
from ndr_edge.calibration.cli import main


def _run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_build_and_info(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = _run("build", "-o", str(out), "--samples", "5", "--crop", "32", "--seed", "3",
                  "--recipe", "noise=0.4,rain=0.3,haze=0.3", "--quiet")
    assert result.exit_code == 0, result.output
    assert "5 synthetic crops of 32x32 from 6 images, seed 3" in result.output
    calib = CalibrationSet.open(out)
    assert len(calib) == 5 and set(calib.labels) <= {"noise", "rain", "haze"}
    info = _run("info", str(out), "--verify")
    assert info.exit_code == 0 and "verified" in info.output


def test_bad_recipe_is_one_line_error_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = _run("build", "-o", str(out), "--recipe", "noise=0.5,rain=0.2", "--quiet")
    assert result.exit_code == 2
    assert result.stderr.startswith("ndr-calib: error: calibration recipe: ratios sum to 0.7, not 1")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_empty_folder_and_bad_crop(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _run("build", str(tmp_path / "empty"), "-o", str(tmp_path / "set"), "--quiet")
    assert result.exit_code == 2 and "empty: no images found" in result.stderr
    result = _run("build", "-o", str(tmp_path / "set"), "--crop", "30", "--quiet")
    assert result.exit_code == 2 and "crop 30 must be a positive multiple of 8" in result.stderr
    assert not (tmp_path / "set").exists()


def test_info_names_a_corrupt_shard(calib_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(calib_dir, tmp_path / "set"))
    shard = copy / "shard-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")
    result = _run("info", str(copy), "--verify")
    assert result.exit_code == 2 and "shard-00000.npy: shard is corrupt" in result.stderr


def test_quantize_command(micro_onnx: Path, calib_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    result = _run("quantize", str(micro_onnx), "-o", str(out), "--set", str(calib_dir), "--method", "minmax",
                  "--budget", "none", "--degradations", "noise25", "--eval-max-side", "32", "--latency-size", "0",
                  "--threads", "1", "--json", str(tmp_path / "int8.json"), "--quiet")
    assert result.exit_code == 0, result.output + result.stderr
    assert out.is_file() and (tmp_path / "int8.json").is_file()
    assert "noise25" in result.output and "by --float-depthwise/--float-act-matmul; 0 layer groups for quality" in result.output
    assert "kept in float: 0 nodes" not in result.output  # the micro model has depthwise convolutions
    every = _run("quantize", str(micro_onnx), "-o", str(out), "--set", str(calib_dir), "--method", "minmax",
                 "--budget", "none", "--quantize-depthwise", "--quantize-act-matmul", "--degradations", "noise25", "--eval-max-side", "32",
                 "--latency-size", "0", "--threads", "1", "--quiet")
    assert every.exit_code == 0 and "kept in float: 0 nodes" in every.output, every.output + every.stderr
    typo = _run("quantize", str(micro_onnx), "-o", str(tmp_path / "y.onnx"), "--set", str(calib_dir),
                "--op-types", "Conv,Convv", "--quiet")
    assert typo.exit_code == 2 and "--op-types 'Conv,Convv': Convv" in typo.stderr
    assert not (tmp_path / "y.onnx").exists()
    bad = _run("quantize", str(micro_onnx), "-o", str(tmp_path / "x.onnx"), "--set", str(calib_dir),
               "--budget", "lots", "--quiet")
    assert bad.exit_code == 2 and "--budget 'lots' is not a number" in bad.stderr
