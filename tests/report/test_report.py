"""ndr-report end to end on a tiny export: the JSON a script reads, the Markdown a person
reads, the figures, and the bad inputs (no manifest, a missing file, a variant that fails)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ndr_edge.cli.report import main
from ndr_edge.errors import ArtifactError, InputError
from ndr_edge.report import ACCURACY_PNG, REPORT_JSON, REPORT_MD, SAMPLES_PNG, ReportConfig, run_report, write_report

DEGRADATIONS = ("noise25", "rain", "haze")
# tiny and single-threaded: the whole file stays well under a minute on a busy 2-core machine
FAST: dict[str, Any] = {"degradations": DEGRADATIONS, "images": 1, "max_side": 32, "sizes": ((32, 32),),
                        "batches": (1, 2), "warmup": 1, "repeats": 3, "threads": 1, "crop": 32}


@pytest.fixture(scope="module")
def report(export_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("report")
    path = run_report(export_dir, config=ReportConfig(out=out, **FAST), progress=False)
    return out, json.loads(path.read_text())


def by_name(payload: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in payload["variants"]}


def test_json_schema(report: tuple[Path, dict[str, Any]], export_dir: Path) -> None:
    out, payload = report
    assert (out / REPORT_JSON).is_file()
    assert payload["reference"] == "pytorch-fp32"
    variants = by_name(payload)
    expected = {"pytorch-fp32", "onnx-fp32"}
    assert expected <= set(variants)
    for v in payload["variants"]:
        for key in ("name", "backend", "precision", "status", "latency_ms", "psnr", "ssim", "fidelity_psnr_db",
                    "size_bytes", "psnr_loss_db", "peak_memory_mb", "throughput_fps", "latency"):
            assert key in v, (v["name"], key)
        if v["status"] == "skipped":  # only OpenVINO's bf16 hint, on a CPU without native bf16
            assert v["name"] == "onnx-fp32-openvino-bf16" and "AVX512-BF16 or AMX" in v["reason"], v
            continue
        assert v["status"] == "ok", (v["name"], v["reason"])
        assert set(v["psnr"]) == set(DEGRADATIONS) and set(v["ssim"]) == set(DEGRADATIONS)
        assert all(np.isfinite(x) for x in v["psnr"].values())
        assert all(-1.0 <= x <= 1.0 for x in v["ssim"].values())
        latency = v["latency_ms"]
        assert 0 < latency["median"] <= latency["p90"]
        assert (latency["size"], latency["batch"]) == ("32x32", 1)
        assert [(e["size"], e["batch"]) for e in v["latency"]] == [("32x32", 1), ("32x32", 2)]
        assert all(e["runs"] == 3 and e["fps"] > 0 for e in v["latency"])
        assert v["peak_memory_mb"] >= 0 and v["memory"]["peak_rss_mb"] > v["memory"]["baseline_rss_mb"] > 0
    assert variants["onnx-fp32"]["size_bytes"] == (export_dir / "model-fp32.onnx").stat().st_size
    assert variants["pytorch-fp32"]["size_bytes"] == (export_dir / "xs.safetensors").stat().st_size
    assert variants["onnx-fp32"]["backend"] == "onnxruntime" and variants["pytorch-fp32"]["backend"] == "pytorch"
    assert payload["machine"]["cpu"] and payload["machine"]["python"]
    assert {"numpy", "onnxruntime", "torch"} <= set(payload["versions"])
    assert payload["evaluation"]["kind"] == "synthetic" and payload["evaluation"]["samples"] == len(DEGRADATIONS)
    assert set(payload["best"]) == set(DEGRADATIONS)


def test_numbers_are_consistent(report: tuple[Path, dict[str, Any]]) -> None:
    _, payload = report
    variants = by_name(payload)
    ref, fp32 = variants["pytorch-fp32"], variants["onnx-fp32"]
    assert ref["fidelity_psnr_db"] is None and ref["reference"] is True
    assert fp32["fidelity_psnr_db"] == "inf" or fp32["fidelity_psnr_db"] > 80.0
    assert fp32["fidelity_max_abs"] < 1e-3
    for d in DEGRADATIONS:  # same network, same inputs: the same scores, and the loss is the difference
        assert fp32["psnr"][d] == pytest.approx(ref["psnr"][d], abs=0.01)
        assert fp32["psnr_loss_db"][d] == pytest.approx(ref["psnr"][d] - fp32["psnr"][d], abs=2e-4)
    if "onnx-fp16" in variants:
        fp16 = variants["onnx-fp16"]
        assert fp16["precision"] == "fp16"
        assert 30.0 < fp16["fidelity_psnr_db"] < 120.0  # FP16 rounding: close to, but not exactly, the reference
        assert fp16["fidelity_max_abs"] > fp32["fidelity_max_abs"]
    # the degraded input's scores do not depend on the variant and differ per degradation
    inputs = payload["evaluation"]["input_psnr"]
    assert set(inputs) == set(DEGRADATIONS) and len(set(inputs.values())) == len(DEGRADATIONS)


def test_markdown_tables_and_best_mark(report: tuple[Path, dict[str, Any]]) -> None:
    out, payload = report
    text = (out / REPORT_MD).read_text()
    for heading in ("## Variants", "PSNR (dB) per degradation", "SSIM per degradation", "## Best artifact",
                    "## Latency", "## Machine"):
        assert heading in text
    for d in DEGRADATIONS:
        assert f"| {d} |" in text
    assert "★" in text and "**" in text
    for d, pick in payload["best"].items():
        # artifacts only (on either backend), never the PyTorch reference
        assert pick["variant"] in {"onnx-fp32", "onnx-fp16", "onnx-fp32-openvino", "onnx-fp16-openvino"}
        assert f"| {d} | `{pick['variant']}` |" in text
    assert f"![PSNR against latency]({ACCURACY_PNG})" in text


def test_figures_are_valid_pngs(report: tuple[Path, dict[str, Any]]) -> None:
    out, _ = report
    for name in (ACCURACY_PNG, SAMPLES_PNG):
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 300 and image.height > 200
            pixels = np.asarray(image.convert("L"))
            assert pixels.std() > 5  # something is drawn
    with Image.open(out / SAMPLES_PNG) as image:  # one row per degradation: taller with more rows
        assert image.height > 1.5 * 32 * len(DEGRADATIONS)
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_bad_variants_are_reported_and_the_others_measured(broken_export: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [str(broken_export), "--quiet", "--out", str(tmp_path / "r"), "--degradations",
                                       "noise25", "--images", "1", "--max-side", "32", "--size", "32x32", "--batch", "1",
                                       "--warmup", "0", "--repeats", "2", "--threads", "1"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "r" / REPORT_JSON).read_text())
    variants = by_name(payload)
    assert variants["pytorch-fp32"]["status"] == "skipped" and "not on this machine" in variants["pytorch-fp32"]["reason"]
    assert variants["onnx-int8"]["status"] == "failed" and "missing" in variants["onnx-int8"]["reason"]
    assert variants["onnx-fp16"]["status"] == "failed" and "model-fp16.onnx" in variants["onnx-fp16"]["reason"]
    assert variants["engine-fp16"]["status"] in ("skipped", "failed") and variants["engine-fp16"]["reason"]
    fp32 = variants["onnx-fp32"]
    assert fp32["status"] == "ok" and fp32["psnr"]["noise25"] > 0 and fp32["latency_ms"]["median"] > 0
    assert payload["reference"] == "onnx-fp32" and fp32["reference"] is True  # no checkpoint: ONNX FP32 instead
    text = (tmp_path / "r" / REPORT_MD).read_text()
    assert "`onnx-int8` **failed**" in text and "`onnx-fp16` **failed**" in text
    assert "onnx-int8" in result.output and "failed" in result.output


def test_directory_without_manifest_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [str(tmp_path), "--quiet"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ndr-report: error: ") and "manifest" in lines[0]
    assert not (tmp_path / REPORT_JSON).exists()
    with pytest.raises(ArtifactError, match="no export manifest"):
        write_report(tmp_path, progress=False)


def test_nothing_measurable_is_an_error(broken_export: Path) -> None:
    with pytest.raises(ArtifactError, match="nothing can be measured"):
        run_report(broken_export, config=ReportConfig(variants=("onnx-int8",), reference=False), progress=False)


@pytest.mark.parametrize("changes, message", [
    ({"sizes": ((30, 32),)}, "multiples of 8"),
    ({"degradations": ("snow",)}, "unknown degradation"),
    ({"layout": "rain100l"}, "--data"),
    ({"budget_ms": -1.0}, "budget"),
    ({"batches": ()}, "batch"),
])
def test_bad_configuration(export_dir: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        run_report(export_dir, config=ReportConfig(**changes), progress=False)


def test_unknown_variant_names_what_exists(export_dir: Path) -> None:
    with pytest.raises(InputError, match="onnx-fp32"):
        run_report(export_dir, config=ReportConfig(variants=("onnx-int4",), **FAST), progress=False)


def test_cli_parses_sizes_and_batches() -> None:
    from ndr_edge.report import parse_batches, parse_size

    assert parse_size("720x1280") == (720, 1280) and parse_size("256") == (256, 256)
    assert parse_batches("1, 4,4") == (1, 4)
    for bad in ("72x", "0x8", "axb"):
        with pytest.raises(InputError):
            parse_size(bad)
    with pytest.raises(InputError):
        parse_batches("1,-2")


def test_paired_folder(export_dir: Path, tmp_path: Path) -> None:
    from ndr_edge.imageio import demo_images, write_image

    (tmp_path / "data" / "lq").mkdir(parents=True)
    (tmp_path / "data" / "gt").mkdir()
    rng = np.random.default_rng(0)
    for name, image in demo_images("heldout"):
        clean = image[:44, :52]
        noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
        write_image(tmp_path / "data" / "gt" / f"{name}.png", clean)
        write_image(tmp_path / "data" / "lq" / f"{name}.png", noisy)
    config = ReportConfig(data=tmp_path / "data", layout="pairs", max_side=None, sizes=((32, 32),), batches=(1,),
                          warmup=0, repeats=1, threads=1, variants=("onnx-fp32",), reference=False, out=tmp_path / "r")
    payload = json.loads(run_report(export_dir, config=config, progress=False).read_text())
    assert payload["evaluation"]["kind"] == "paired" and payload["evaluation"]["images"] == ["coffee", "rocket"]
    (variant,) = payload["variants"]
    assert variant["name"] == "onnx-fp32" and variant["reference"] is True and variant["status"] == "ok"
    assert list(variant["psnr"]) == ["pairs"] and payload["evaluation"]["images_per_degradation"] == {"pairs": 2}
    # 44x52 is not a multiple of 8: padded and cropped back, scored at the image's own size
    assert 20.0 < payload["evaluation"]["input_psnr"]["pairs"] < 30.0
