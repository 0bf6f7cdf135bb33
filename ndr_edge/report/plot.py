"""The report's figures, rendered to PNG bytes with matplotlib's Agg backend (no display):

- ``accuracy_latency.png``: PSNR against per-frame latency, one marker per degradation for
  each variant, the mean over degradations, and the Pareto front of the means (no other
  variant is both faster and better); beside it the change against the reference, zoomed,
  where the differences between precisions show.
- ``samples.png``: a centre crop of one image per degradation: degraded | each variant | clean,
  with each crop's PSNR.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ndr_edge.data import EvalSample, centre_crop
from ndr_edge.metrics import psnr

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ndr_edge.report.results import VariantResult

MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (lower x, higher y), by x."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _plottable(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in payload["variants"] if v["latency_ms"] and v["psnr"]]


def accuracy_latency_png(payload: dict[str, Any]) -> bytes:
    variants = _plottable(payload)
    degradations = list(payload["evaluation"]["input_psnr"])
    fig = _figure(12.0, 5.0)
    left, right = fig.subplots(1, 2)
    if not variants:
        for ax in (left, right):
            ax.text(0.5, 0.5, "no variant has both quality and latency measured", ha="center", va="center")
            ax.set_axis_off()
        return _png(fig)
    colours = [f"C{i % 10}" for i in range(len(degradations))]
    first = variants[0]["latency_ms"]
    setting = f"{first['size']}, batch {first['batch']}, median"
    for ax, key, ylabel in ((left, "psnr", "PSNR (dB)"), (right, "psnr_loss_db", "change against the reference (dB)")):
        for d, colour, marker in zip(degradations, colours, MARKERS * 4):
            xs, ys = [], []
            for v in variants:
                value = v[key].get(d)
                if isinstance(value, (int, float)):
                    xs.append(float(v["latency_ms"]["median"]))
                    ys.append(float(value) if key == "psnr" else -float(value))
                elif key == "psnr_loss_db" and v["reference"]:
                    xs.append(float(v["latency_ms"]["median"]))
                    ys.append(0.0)
            ax.scatter(xs, ys, c=colour, marker=marker, s=36, alpha=0.85, label=d, zorder=3)
        means = []
        for v in variants:
            values = [float(x) for x in v[key].values() if isinstance(x, (int, float))]
            if key == "psnr_loss_db":
                mean = 0.0 if v["reference"] else (-float(np.mean(values)) if values else np.nan)
            else:
                mean = float(np.mean(values)) if values else np.nan
            means.append((float(v["latency_ms"]["median"]), mean))
        valid = [i for i, (_, m) in enumerate(means) if np.isfinite(m)]
        ax.scatter([means[i][0] for i in valid], [means[i][1] for i in valid], marker="D", s=70,
                   facecolors="none", edgecolors="black", linewidths=1.5, label="mean", zorder=4)
        front = [valid[i] for i in pareto_front([means[i] for i in valid])]
        if front:
            ax.plot([means[i][0] for i in front], [means[i][1] for i in front], drawstyle="steps-post", color="black",
                    linestyle="--", linewidth=1.2, marker="o", markersize=13, markerfacecolor="none",
                    markeredgecolor="0.4", label="Pareto front (mean)", zorder=2)
        for rank, i in enumerate(sorted(valid, key=lambda j: means[j])):
            ax.annotate(variants[i]["name"], means[i], textcoords="offset points", xytext=(7, 5 + 9 * (rank % 3)),
                        fontsize=8)
        if payload["budget_ms"] is not None:
            ax.axvline(payload["budget_ms"], color="red", linestyle=":", linewidth=1.2,
                       label=f"budget {payload['budget_ms']:g} ms")
        if key == "psnr_loss_db":
            ax.axhline(0.0, color="grey", linewidth=0.8)
        latencies = [m[0] for m in means]
        if max(latencies) > 5 * min(latencies):
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"latency per frame, ms ({setting})")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    left.set_title(f"PSNR against latency (reference: {payload['reference'] or 'none'})")
    right.set_title("change against the reference, per degradation")
    left.legend(fontsize=7, loc="best", ncol=2)
    return _png(fig)


def samples_png(samples: Sequence[EvalSample], shown: Sequence[int], results: Sequence[VariantResult], crop: int) -> bytes:
    """degraded | each variant with restored images | clean, one row per shown sample."""
    columns = [r for r in results if r.quality is not None and r.quality.kept]
    rows = [i for i in shown if i < len(samples)]
    fig = _figure(1.7 * (len(columns) + 2), 1.8 * max(len(rows), 1) + 0.4)
    if not rows:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no samples", ha="center", va="center")
        ax.set_axis_off()
        return _png(fig)
    axes = np.atleast_2d(np.asarray(fig.subplots(len(rows), len(columns) + 2, squeeze=False)))
    titles = ["degraded", *[r.name for r in columns], "clean"]
    for row, index in enumerate(rows):
        sample = samples[index]
        gt = centre_crop(sample.gt, crop)
        images: list[np.ndarray | None] = [centre_crop(sample.lq, crop)]
        images += [centre_crop(r.quality.kept[index], crop) if r.quality and index in r.quality.kept
                   else None for r in columns]
        images.append(gt)
        for col, image in enumerate(images):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(titles[col], fontsize=8)
            if col == 0:
                ax.set_ylabel(f"{sample.degradation}\n{sample.name}", fontsize=8)
            if image is None:
                ax.text(0.5, 0.5, "not run", ha="center", va="center", fontsize=8)
                continue
            ax.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
            if col < len(images) - 1:
                ax.set_xlabel(f"{psnr(image, gt):.2f} dB", fontsize=8)
    return _png(fig)
