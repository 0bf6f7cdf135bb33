"""The report's quality and fidelity measurement (``ndr_edge.report.measure``) against a
by-hand computation: a numpy "model" that treats the channels differently, run on samples of
sizes that need padding, scored here with np.pad, numpy PSNR and scikit-image SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from ndr_edge.artifact import ArtifactMeta
from ndr_edge.data import EvalSample
from ndr_edge.report.measure import Fidelity, measure_quality, shown_samples
from tests.runtime.conftest import NumpyBackend

GAIN = np.array([0.8, 1.0, 1.15], np.float32)[None, :, None, None]  # per channel of the model's order


def _model(batch: np.ndarray) -> np.ndarray:
    """A 'restoration' that scales channels (in the model's order) and smooths along W."""
    return (batch * GAIN + 0.25 * np.roll(batch, 1, axis=-1)) / 1.25


def _samples() -> list[EvalSample]:
    rng = np.random.default_rng(0)
    out = []
    for degradation, sizes in (("noise25", [(13, 19), (16, 11)]), ("rain", [(21, 12)]), ("haze", [(11, 17), (12, 13)])):
        for i, (h, w) in enumerate(sizes):
            gt = rng.random((h, w, 3), dtype=np.float32)
            lq = np.clip(gt + rng.normal(0, 0.1, gt.shape), 0, 1).astype(np.float32)
            out.append(EvalSample(degradation, f"img{i}", lq, gt))
    return out


def _by_hand(lq_rgb: np.ndarray, order: str, value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    h, w = lq_rgb.shape[:2]
    x = lq_rgb[..., ::-1] if order == "BGR" else lq_rgb
    batch = x.transpose(2, 0, 1)[None]
    batch = np.pad(batch, ((0, 0), (0, 0), (0, (-h) % 8), (0, (-w) % 8)),
                   mode="reflect" if (-h) % 8 < h and (-w) % 8 < w else "edge")
    low, high = value_range
    out = (_model(batch * (high - low) + low) - low) / (high - low) if value_range != (0.0, 1.0) else _model(batch)
    out = out[0, :, :h, :w].transpose(1, 2, 0)
    return out[..., ::-1] if order == "BGR" else out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.clip(a.astype(np.float64), 0, 1) - np.clip(b.astype(np.float64), 0, 1)) ** 2))
    return 10 * math.log10(1 / mse)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.clip(a.astype(np.float64), 0, 1), np.clip(b.astype(np.float64), 0, 1)
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=1.0, channel_axis=-1)


def test_shown_samples_are_the_first_of_each_degradation() -> None:
    samples = _samples()
    assert shown_samples(samples) == [0, 2, 3]
    assert shown_samples([]) == []


@pytest.mark.parametrize(("order", "value_range"), [("BGR", (0.0, 1.0)), ("RGB", (0.0, 1.0)), ("BGR", (0.0, 255.0))])
def test_quality_and_fidelity_are_the_by_hand_scores(order: str, value_range: tuple[float, float]) -> None:
    samples = _samples()
    backend = NumpyBackend(_model, ArtifactMeta(preset="numpy", channel_order=order, value_range=value_range))
    expected = [_by_hand(s.lq, order, value_range) for s in samples]
    rng = np.random.default_rng(9)
    reference = [e + rng.normal(0, 0.01, e.shape).astype(np.float32) for e in expected]
    result = measure_quality(backend, samples, reference, keep_outputs=True)

    assert result.outputs is not None and len(result.outputs) == len(samples)
    for got, want in zip(result.outputs, expected):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert sorted(result.kept) == [0, 2, 3]
    for index, image in result.kept.items():
        np.testing.assert_array_equal(image, result.outputs[index])
    names = ["noise25", "rain", "haze"]
    assert list(result.psnr) == names and result.images == {"noise25": 2, "rain": 1, "haze": 2}
    for name in names:
        group = [i for i, s in enumerate(samples) if s.degradation == name]
        assert result.psnr[name] == pytest.approx(np.mean([_psnr(expected[i], samples[i].gt) for i in group]), abs=1e-5)
        assert result.input_psnr[name] == pytest.approx(np.mean([_psnr(samples[i].lq, samples[i].gt) for i in group]),
                                                        abs=1e-9)
        assert result.ssim[name] == pytest.approx(np.mean([_ssim(expected[i], samples[i].gt) for i in group]),
                                                  abs=1e-5)
        assert result.input_ssim[name] == pytest.approx(np.mean([_ssim(samples[i].lq, samples[i].gt) for i in group]),
                                                        abs=1e-9)
    # fidelity: unclipped, over every pixel of every sample, and per degradation
    fid = result.fidelity
    assert fid is not None
    diffs = [(expected[i].astype(np.float64) - reference[i]) for i in range(len(samples))]
    total = sum(float(np.sum(d * d)) for d in diffs)
    count = sum(d.size for d in diffs)
    assert fid.count == count
    assert fid.psnr_db == pytest.approx(10 * math.log10(count / total), abs=1e-3)
    assert fid.max_abs == pytest.approx(max(float(np.abs(d).max()) for d in diffs), abs=1e-5)
    for name, value in fid.psnr_by_degradation().items():
        group = [i for i, s in enumerate(samples) if s.degradation == name]
        sq = sum(float(np.sum(diffs[i] ** 2)) for i in group)
        n = sum(diffs[i].size for i in group)
        assert value == pytest.approx(10 * math.log10(n / sq), abs=1e-3), name
    assert result.seconds > 0


def test_without_reference_or_kept_outputs() -> None:
    samples = _samples()[:1]
    backend = NumpyBackend(_model, ArtifactMeta(preset="numpy", channel_order="BGR"))
    result = measure_quality(backend, samples, None)
    assert result.fidelity is None and result.outputs is None
    assert list(result.kept) == [0]
    np.testing.assert_allclose(result.kept[0], _by_hand(samples[0].lq, "BGR"), atol=1e-5)


def test_fidelity_accumulates() -> None:
    fid = Fidelity()
    assert fid.psnr_db == math.inf and fid.max_abs == 0.0 and fid.psnr_by_degradation() == {}
    a = np.zeros((2, 3), np.float32)
    fid.add("x", a + 0.1, a)
    fid.add("y", a, a - 0.3)
    fid.add("x", np.zeros(0), np.zeros(0))  # nothing to compare: no change
    assert fid.count == 12
    assert fid.squared == pytest.approx(6 * 0.01 + 6 * 0.09)
    assert fid.max_abs == pytest.approx(0.3)
    assert fid.psnr_db == pytest.approx(10 * math.log10(12 / (6 * 0.01 + 6 * 0.09)))
    by = fid.psnr_by_degradation()
    assert by["x"] == pytest.approx(20.0) and by["y"] == pytest.approx(10 * math.log10(1 / 0.09))
    fid.add("z", a, a)
    assert fid.psnr_by_degradation()["z"] == math.inf and fid.max_abs == pytest.approx(0.3)
