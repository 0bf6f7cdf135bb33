"""ndr-export on the command line: help, a real export of the authors' layout, and bad input
(one line naming the thing and the fix, non-zero exit, nothing left behind)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from ndr_edge.export import tensorrt_build
from ndr_edge.export.cli import main

FAST = ["--no-engine", "--quiet", "--precision", "fp32", "--verify-sizes", "64x96,96x128"]


def _run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result, code=2):
    assert result.exit_code == code, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ndr-export: error: "), result.stderr
    return lines[0]


def _nothing_left(folder):
    assert not (folder / "out").exists()
    assert not [p for p in folder.iterdir() if "staging" in p.name]


def test_help_shows_a_full_example():
    result = _run(["--help"])
    assert result.exit_code == 0
    for text in ("Examples:", "ndr-export NDR-Restore.pth -o", "--min 1x3x256x256", "--opt 1x3x720x1280",
                 "--calibration", "manifest.json", "--precision", "--timing-cache", "--workspace-mb"):
        assert text in result.output, text


def test_exports_the_authors_checkpoint(tmp_path, conformance_dir, monkeypatch):
    import ndr_edge.report

    calls = []

    def fake_report(outdir, progress=True):  # the real report measures for minutes; its own tests cover it
        calls.append((outdir, progress))
        return outdir / "report.md"

    monkeypatch.setattr(ndr_edge.report, "write_report", fake_report)
    source = tmp_path / "official-small.pth"
    shutil.copyfile(conformance_dir / "official-small.pth", source)
    result = _run([source, "-o", tmp_path / "out", *FAST, "--report"])
    assert result.exit_code == 0, result.output
    assert "onnx-fp32" in result.stdout and "vs PyTorch" in result.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "official" and manifest["source"]["channel_order"] == "BGR"
    assert manifest["artifacts"][0]["verification"]["vs_torch_max_abs"] <= 1e-4
    assert manifest["stages"]["engines"]["status"] == "skipped"
    assert calls == [(tmp_path / "out", False)] and "report: " in result.stdout


def test_not_a_checkpoint(tmp_path):
    bogus = tmp_path / "notes.pth"
    bogus.write_text("this is not a checkpoint")
    line = _one_line_error(_run([bogus, "-o", tmp_path / "out", *FAST]))
    assert "notes.pth" in line
    _nothing_left(tmp_path)


def test_missing_checkpoint(tmp_path):
    line = _one_line_error(_run([tmp_path / "absent.pth", "-o", tmp_path / "out", *FAST]))
    assert "absent.pth" in line
    _nothing_left(tmp_path)


def test_unknown_keys(tmp_path, xs_checkpoint):
    state = dict(xs_checkpoint.model.state_dict())
    state["restoration_net.extra_head.weight"] = torch.zeros(3)
    path = tmp_path / "extra.pth"
    torch.save(state, path)
    line = _one_line_error(_run([path, "-o", tmp_path / "out", *FAST]))
    assert "extra.pth" in line and "extra_head" in line
    _nothing_left(tmp_path)


def test_unwritable_outdir(tmp_path, xs_checkpoint_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    line = _one_line_error(_run([xs_checkpoint_path, "-o", blocker / "out", *FAST]))
    assert "a-file" in line and "-o" in line
    line = _one_line_error(_run([xs_checkpoint_path, "-o", blocker, *FAST]))
    assert "not a folder" in line
    assert blocker.read_text() == "x"


def test_engine_requested_without_tensorrt(tmp_path, xs_checkpoint_path):
    if tensorrt_build.tensorrt_status()[0]:
        pytest.skip("TensorRT and a GPU are present here")
    line = _one_line_error(_run([xs_checkpoint_path, "-o", tmp_path / "out", "--engine", "--quiet"]), code=3)
    assert "TensorRT" in line and ("--no-engine" in line or "install" in line)
    _nothing_left(tmp_path)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--min", "1x3x64x64", "--max", "1x3x60x60"], "multiples of 8"),
        (["--opt", "1x3x2048x2048"], "min <= opt <= max"),
        (["--min", "1x4x64x64"], "3 channels"),
        (["--max", "4x3x1024"], "NxCxHxW"),
        (["--precision", "fp8"], "fp8"),
        (["--verify-sizes", "64x96"], "two or more sizes"),
    ],
)
def test_bad_options(tmp_path, xs_checkpoint_path, args, expected):
    line = _one_line_error(_run([xs_checkpoint_path, "-o", tmp_path / "out", "--quiet", *args]))
    assert expected in line
    _nothing_left(tmp_path)


def test_size_outside_the_profile(tmp_path, xs_checkpoint_path, monkeypatch):
    # pretend TensorRT is here: the verification batches must fit the engine profile
    monkeypatch.setattr(tensorrt_build, "tensorrt_status", lambda: (True, "TensorRT (simulated)"))
    line = _one_line_error(_run([xs_checkpoint_path, "-o", tmp_path / "out", "--quiet", "--precision", "fp16",
                                 "--max", "1x3x64x64", "--min", "1x3x64x64", "--verify-sizes", "64x96,96x128"]))
    assert "verification batch (--verify-sizes) 1x3x64x96 is outside the engine profile" in line and "--max" in line
    _nothing_left(tmp_path)


def test_unset_verification_sizes_follow_the_profile():
    from ndr_edge.export.pipeline import ExportConfig, verification_shapes
    from ndr_edge.export.profiles import Profile

    hd = ExportConfig(profiles=(Profile((1, 3, 256, 256), (1, 3, 720, 1280), (2, 3, 1088, 1920)),)).check()
    assert verification_shapes(hd, engines=True) == (((256, 256), (384, 384)), 2)
    assert verification_shapes(hd, engines=False) == (((64, 96), (128, 128)), 3)
    fixed = ExportConfig(profiles=(Profile((1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64)),)).check()
    assert verification_shapes(fixed, engines=True) == (((64, 64), (64, 64)), 1)
    default = ExportConfig().check()  # the defaults fit the default profile: unchanged
    assert verification_shapes(default, engines=True) == (((64, 96), (128, 128)), 3)


@pytest.mark.parametrize(("flag", "options"), [([], {}), (["--int8-quantize-depthwise"], {"float_depthwise": False})])
def test_int8_depthwise_choice_reaches_the_quantiser(tmp_path, xs_checkpoint_path, monkeypatch, flag, options):
    from ndr_edge.errors import InputError
    from ndr_edge.export import pipeline

    seen = []

    class Stop:
        def __init__(self, loaded, outdir, config):
            seen.append(config)
            raise InputError("stopped before exporting")

    monkeypatch.setattr(pipeline, "Exporter", Stop)
    result = _run([xs_checkpoint_path, "-o", tmp_path / "out", "--no-engine", "--quiet", *flag])
    assert "stopped before exporting" in _one_line_error(result)
    assert seen[0].int8_options == options
