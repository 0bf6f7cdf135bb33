"""ndr-report end to end on a tiny export: the JSON a script reads, the Markdown a person
reads, the figures, and the bad inputs (no manifest, a missing file, a variant that fails)."""

from __future__ import annotations

import json
import math
import re
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


# -- the report's numbers, recomputed here without its code -----------------------------
def _runner(variant: dict[str, Any], export_dir: Path) -> Any:
    """A batch function for one measured row, opened with its library's own API: torch for the
    checkpoint, onnxruntime or openvino (f32, or its bf16 hint) for the graphs."""
    if variant["backend"] == "pytorch":
        import torch

        from ndr_edge.checkpoint import load_checkpoint
        from ndr_edge.model import RestorationOnly

        net = RestorationOnly(load_checkpoint(export_dir / "xs.safetensors").model.restoration_net).eval()

        def run_torch(batch: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return net(torch.from_numpy(batch)).numpy()

        return run_torch
    path = str(export_dir / variant["path"])
    if variant["backend"] == "onnxruntime":
        import onnxruntime as ort

        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda batch: session.run(None, {"input": batch})[0]
    assert variant["backend"] == "openvino", variant["backend"]
    import openvino as ov

    from ndr_edge.runtime.openvino_backend import open_core  # a Core that keeps the signal stack

    # f32 unless the row is the bf16 hint's: OpenVINO's own CPU default is bf16 where the CPU has it
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16" if variant["name"].endswith("-bf16") else "f32"}
    core = open_core()
    model, compiled = core.read_model(path), {}

    def run_openvino(batch: np.ndarray) -> np.ndarray:  # compiled per input shape, as the backend does
        if batch.shape not in compiled:
            static = model.clone()
            static.reshape({"input": ov.PartialShape(list(batch.shape))})
            compiled[batch.shape] = core.compile_model(static, "CPU", config)
        model_for_shape = compiled[batch.shape]
        return np.asarray(model_for_shape([batch])[model_for_shape.output(0)])

    return run_openvino


def _restore(run: Any, lq: np.ndarray) -> np.ndarray:
    """The protocol written out: RGB -> the model's BGR, NCHW, reflect-pad right/bottom to a
    multiple of 8, run, crop back, RGB HxWx3 (unclipped)."""
    h, w = lq.shape[:2]
    batch = np.pad(lq[..., ::-1].transpose(2, 0, 1)[None], ((0, 0), (0, 0), (0, -h % 8), (0, -w % 8)), mode="reflect")
    out = run(np.ascontiguousarray(batch, dtype=np.float32))
    return out[0, :, :h, :w].transpose(1, 2, 0)[..., ::-1].astype(np.float64)


def _psnr(a: np.ndarray, b: np.ndarray, clip: bool = True) -> float:
    if clip:
        a, b = np.clip(a, 0.0, 1.0), np.clip(b, 0.0, 1.0)
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


@pytest.fixture(scope="module")
def recomputed(report: tuple[Path, dict[str, Any]], export_dir: Path) -> tuple[list[Any], dict[str, list[np.ndarray]]]:
    """The report's evaluation samples and, for every measured row, its restored images, run here."""
    from ndr_edge.report.evalset import build_eval_set

    _, payload = report
    samples = build_eval_set(ReportConfig(**FAST).check()).samples
    outputs = {}
    for variant in payload["variants"]:
        if variant["status"] == "ok":
            run = _runner(variant, export_dir)
            outputs[variant["name"]] = [_restore(run, sample.lq) for sample in samples]
    return samples, outputs


def _mean_by_degradation(samples: list[Any], values: list[float]) -> dict[str, float]:
    return {d: float(np.mean([x for x, s in zip(values, samples) if s.degradation == d])) for d in DEGRADATIONS}


def non_dominated(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats: at most as slow (x) and at least as good (y), one of them strictly."""
    return [p for p in points if not any(q != p and q[0] <= p[0] and q[1] >= p[1] for q in points)]


def _best_by_the_rule(payload: dict[str, Any], degradation: str) -> str:
    """The report's stated rule: highest PSNR compared to 0.01 dB, ties to the faster, never the checkpoint."""
    candidates = [v for v in payload["variants"] if v["status"] == "ok" and v["format"] != "checkpoint"
                  and degradation in v["psnr"] and v["latency_ms"]]
    return max(candidates, key=lambda v: (round(v["psnr"][degradation], 2), -v["latency_ms"]["median"]))["name"]


def test_json_schema(report: tuple[Path, dict[str, Any]], export_dir: Path) -> None:
    out, payload = report
    assert (out / REPORT_JSON).is_file()
    assert payload["reference"] == "pytorch-fp32"
    variants = by_name(payload)
    expected = {"pytorch-fp32", "onnx-fp32", "onnx-fp16"}  # the fixture always makes the FP16 graph
    assert expected <= set(variants)
    for v in payload["variants"]:
        for key in ("name", "backend", "precision", "status", "latency_ms", "psnr", "ssim", "fidelity_psnr_db",
                    "size_bytes", "psnr_loss_db", "peak_memory_mb", "throughput_fps", "latency"):
            assert key in v, (v["name"], key)
        if v["status"] == "skipped":  # only OpenVINO's bf16 hint rows, on a CPU without native bf16
            assert v["name"].endswith("-openvino-bf16") and "AVX512-BF16 or AMX" in v["reason"], v
            continue
        assert v["status"] == "ok", (v["name"], v["reason"])
        assert set(v["psnr"]) == set(DEGRADATIONS) and set(v["ssim"]) == set(DEGRADATIONS)  # values: below
        latency = v["latency_ms"]
        assert 0 < latency["median"] <= latency["p90"]
        assert (latency["size"], latency["batch"]) == ("32x32", 1)
        assert [(e["size"], e["batch"]) for e in v["latency"]] == [("32x32", 1), ("32x32", 2)]
        assert all(e["runs"] == 3 and e["fps"] > 0 for e in v["latency"])
        # 30 FPS camera streams: the best throughput at the first size over 30, recomputed here
        best_fps = max(e["fps"] for e in v["latency"] if e["size"] == "32x32")
        assert v["throughput_fps"] == pytest.approx(best_fps, rel=1e-3)
        assert v["streams"] == pytest.approx(best_fps / payload["config"]["stream_fps"], rel=1e-3, abs=1e-3)
        assert payload["config"]["stream_fps"] == 30.0
        assert v["peak_memory_mb"] >= 0 and v["memory"]["peak_rss_mb"] > v["memory"]["baseline_rss_mb"] > 0
    assert variants["onnx-fp32"]["size_bytes"] == (export_dir / "model-fp32.onnx").stat().st_size
    assert variants["pytorch-fp32"]["size_bytes"] == (export_dir / "xs.safetensors").stat().st_size
    assert variants["onnx-fp32"]["backend"] == "onnxruntime" and variants["pytorch-fp32"]["backend"] == "pytorch"
    assert payload["machine"]["cpu"] and payload["machine"]["python"]
    assert {"numpy", "onnxruntime", "torch"} <= set(payload["versions"])
    assert payload["evaluation"]["kind"] == "synthetic" and payload["evaluation"]["samples"] == len(DEGRADATIONS)
    assert set(payload["best"]) == set(DEGRADATIONS)


def test_scores_and_fidelity_are_what_the_outputs_give(report: tuple[Path, dict[str, Any]], recomputed: Any) -> None:
    """Every measured row's PSNR and SSIM per degradation, its loss against the reference and its
    fidelity, against the same numbers computed here from outputs made here."""
    from skimage.metrics import structural_similarity

    _, payload = report
    samples, outputs = recomputed
    variants = by_name(payload)
    assert payload["reference"] == "pytorch-fp32" and variants["pytorch-fp32"]["reference"] is True
    assert variants["onnx-fp16"]["status"] == "ok" and variants["onnx-fp16"]["precision"] == "fp16"
    assert {n for n, v in variants.items() if v["status"] == "ok"} == set(outputs)

    def ssim(a: np.ndarray, b: np.ndarray) -> float:
        return float(structural_similarity(np.clip(a, 0, 1), np.clip(b, 0, 1), gaussian_weights=True, sigma=1.5,
                                           use_sample_covariance=False, data_range=1.0, channel_axis=-1))

    ref_out = outputs["pytorch-fp32"]
    ref_psnr = _mean_by_degradation(samples, [_psnr(o, s.gt) for o, s in zip(ref_out, samples)])
    for name, out in outputs.items():
        v = variants[name]
        mine = _mean_by_degradation(samples, [_psnr(o, s.gt) for o, s in zip(out, samples)])
        mine_ssim = _mean_by_degradation(samples, [ssim(o, s.gt) for o, s in zip(out, samples)])
        for d in DEGRADATIONS:
            assert v["psnr"][d] == pytest.approx(mine[d], abs=1e-3), (name, d)
            assert v["ssim"][d] == pytest.approx(mine_ssim[d], abs=1e-4), (name, d)
            if not v["reference"]:
                assert v["psnr_loss_db"][d] == pytest.approx(ref_psnr[d] - mine[d], abs=2e-3), (name, d)
        if v["reference"]:
            assert v["fidelity_psnr_db"] is None and v["psnr_loss_db"] == {}
            continue
        # fidelity: against the reference's restored images, unclipped, over every pixel of every sample
        diff = np.concatenate([(o - r).ravel() for o, r in zip(out, ref_out)])
        fidelity, worst = _psnr(diff, np.zeros_like(diff), clip=False), float(np.abs(diff).max())
        if name == "onnx-fp32":  # ONNX Runtime runs the FP32 graph as PyTorch runs the network
            assert worst < 1e-5 and fidelity > 100.0
        if v["precision"] == "fp16":  # really computed in half precision
            assert worst > 1e-5
        if fidelity > 100.0:  # float32 arithmetic throughout: identical up to rounding, too small to compare
            assert v["fidelity_max_abs"] < 1e-5 and (v["fidelity_psnr_db"] == "inf" or v["fidelity_psnr_db"] > 100.0)
        else:  # FP16 (or OpenVINO's bf16 default on CPUs that have it)
            assert v["fidelity_psnr_db"] == pytest.approx(fidelity, abs=0.05), name
            assert v["fidelity_max_abs"] == pytest.approx(worst, rel=0.02, abs=1e-6), name
    # FP16 meets the export's fidelity goal (50 dB against FP32)
    assert variants["onnx-fp16"]["fidelity_psnr_db"] >= 50.0
    # the degraded input's scores, the same for every variant
    inputs = payload["evaluation"]["input_psnr"]
    mine_inputs = _mean_by_degradation(samples, [_psnr(s.lq, s.gt) for s in samples])
    assert inputs == pytest.approx(mine_inputs, abs=1e-3) and len(set(inputs.values())) == len(DEGRADATIONS)


def test_markdown_tables_and_best_mark(report: tuple[Path, dict[str, Any]]) -> None:
    out, payload = report
    text = (out / REPORT_MD).read_text()
    for heading in ("## Variants", "PSNR (dB) per degradation", "SSIM per degradation", "## Best artifact",
                    "## Latency", "## Machine"):
        assert heading in text
    # the PSNR table: one row per degradation, one column per measured variant
    section = text.split("## Restoration quality: PSNR (dB) per degradation", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")]
    columns = [cell.strip() for cell in table[0].strip("|").split("|")]
    names = [re.search(r"`([^`]+)`", c).group(1) if "`" in c else c for c in columns]  # type: ignore[union-attr]
    assert names[:2] == ["degradation", "degraded input"]
    assert names[2:] == [v["name"] for v in payload["variants"] if v["psnr"]]
    rows = {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in table[2:])}
    assert set(DEGRADATIONS) <= set(rows)
    for d in DEGRADATIONS:
        best = _best_by_the_rule(payload, d)
        assert best != "pytorch-fp32"  # the reference is never a candidate
        # exactly one cell has the star, bold, and it is in the column of the best artifact
        starred = [names[i] for i, cell in enumerate(rows[d]) if "★" in cell]
        assert starred == [best], (d, starred, best)
        assert rows[d][names.index(best)].startswith("**")
        assert payload["best"][d]["variant"] == best
        assert f"| {d} | `{best}` |" in text  # and the best-artifact table says the same
    assert not any("★" in cell for cell in rows["**mean**"])
    assert f"![PSNR against latency]({ACCURACY_PNG})" in text


def test_the_figure_shows_every_mean_and_exactly_the_non_dominated_ones_as_the_front(
        report: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """accuracy_latency.png, drawn again from the payload with matplotlib's calls recorded: both
    panels (PSNR, and change against the reference) mark every variant's mean and join as the
    Pareto front exactly the means no other variant beats on latency and quality together."""
    from matplotlib.axes import Axes

    from ndr_edge.report.plot import accuracy_latency_png

    _, payload = report
    drawn: dict[str, list[list[tuple[float, float]]]] = {"front": [], "mean": []}
    plot, scatter = Axes.plot, Axes.scatter

    def record(kind: str, original: Any) -> Any:
        def wrapper(self: Axes, *args: Any, **kwargs: Any) -> Any:
            label = {"Pareto front (mean)": "front", "mean": "mean"}.get(kwargs.get("label"))
            if label == kind:
                drawn[kind].append([(float(x), float(y)) for x, y in zip(args[0], args[1])])
            return original(self, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(Axes, "plot", record("front", plot))
    monkeypatch.setattr(Axes, "scatter", record("mean", scatter))
    accuracy_latency_png(payload)
    shown = [v for v in payload["variants"] if v["latency_ms"] and v["psnr"]]
    assert len(shown) >= 3  # the checkpoint, ONNX FP32 and FP16 (and OpenVINO's rows where it is installed)
    psnr_means = [(v["latency_ms"]["median"], float(np.mean(list(v["psnr"].values())))) for v in shown]
    change_means = [(v["latency_ms"]["median"], 0.0 if v["reference"] else -float(np.mean(list(v["psnr_loss_db"].values()))))
                    for v in shown]
    assert len(drawn["mean"]) == len(drawn["front"]) == 2  # one of each per panel
    for means, marked, front in zip((psnr_means, change_means), drawn["mean"], drawn["front"]):
        assert sorted(marked) == sorted(means)
        expected = sorted(non_dominated(means))
        assert expected and front == expected  # joined from the fastest to the best


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
