"""Does the NDR separate degradations? A nearest-centroid probe on the Degradation Query's
attention weights over the NDR entries.

For a frame, each of the three skips' Degradation Query gives every pixel a softmax over the
NDR's ``ndr_entries`` entries; the frame's descriptor is those weights averaged over pixels,
the three skips concatenated (3 x ``ndr_entries`` numbers). Centroids per degradation class
are fitted on degraded *training* photos and the probe classifies held-out frames: the
accuracy per class and the confusion matrix say how well the representation alone names the
degradation (chance: one over the number of classes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ndr_edge.data.eval_set import EvalSample
from ndr_edge.frames import pad_to_multiple, reorder

__all__ = ["CLASSES", "ProbeResult", "degradation_class", "ndr_descriptor", "plot_confusion", "probe"]

CLASSES: tuple[str, ...] = ("noise", "rain", "haze", "lowres")


def degradation_class(name: str) -> str | None:
    """``noise25`` -> ``noise``, ``lowres4`` -> ``lowres``; ``mix`` and real pairs -> None."""
    return next((c for c in CLASSES if name.startswith(c)), None)


@torch.inference_mode()
def ndr_descriptor(net: torch.nn.Module, lq_rgb: np.ndarray, channel_order: str = "BGR") -> np.ndarray:
    """Mean DQ attention weights over the NDR entries, per skip, concatenated (float64)."""
    weights: list[torch.Tensor] = []

    def hook(module: torch.nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], _output: torch.Tensor) -> None:
        x, ndr = inputs
        q = module.qkv(x).flatten(2).transpose(1, 2)
        attn = ((q @ ndr.transpose(1, 2)) * module.temperature).softmax(dim=-1)  # (B, HW, entries)
        weights.append(attn.mean(dim=1)[0])

    skips = [getattr(net, f"res_connect{k}").degradation_recog.attn for k in (1, 2, 3)]
    handles = [s.register_forward_hook(hook) for s in skips]
    try:
        batch = np.ascontiguousarray(reorder(lq_rgb, "RGB", channel_order).transpose(2, 0, 1)[None])
        padded, _ = pad_to_multiple(batch, 8)
        net(torch.from_numpy(padded))
    finally:
        for h in handles:
            h.remove()
    return torch.cat(weights).double().numpy()


@dataclass
class ProbeResult:
    classes: tuple[str, ...]
    confusion: np.ndarray  # rows: true class, columns: predicted
    per_degradation: dict[str, float] = field(default_factory=dict)  # accuracy per eval degradation name

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    def class_accuracy(self) -> dict[str, float]:
        rows = self.confusion.sum(axis=1)
        return {c: float(self.confusion[i, i] / rows[i]) if rows[i] else float("nan") for i, c in enumerate(self.classes)}

    def table(self) -> str:
        lines = [(f"NDR probe (nearest centroid over DQ weights): {self.accuracy:.1%} of held-out frames "
                  f"(chance {1 / len(self.classes):.0%})")]
        lines += [f"  {name:<10} {acc:6.1%}" for name, acc in self.per_degradation.items()]
        head = "true \\ predicted " + " ".join(f"{c:>7}" for c in self.classes)
        lines += ["", head]
        for i, c in enumerate(self.classes):
            lines.append(f"{c:<16} " + " ".join(f"{int(v):>7}" for v in self.confusion[i]))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "classes": list(self.classes), "confusion": self.confusion.tolist(),
                "per_degradation": self.per_degradation, "per_class": self.class_accuracy()}


def probe(net: torch.nn.Module, fit: Sequence[EvalSample], test: Sequence[EvalSample], channel_order: str = "BGR") -> ProbeResult:
    """Fit class centroids on ``fit`` descriptors (z-scored with the fit set's statistics) and
    classify ``test``; samples whose degradation has no class (``mix``) are skipped."""
    net.eval()

    def features(samples: Sequence[EvalSample]) -> tuple[np.ndarray, list[str], list[str]]:
        kept = [s for s in samples if degradation_class(s.degradation)]
        x = np.stack([ndr_descriptor(net, s.lq, channel_order) for s in kept]) if kept else np.zeros((0, 1))
        return x, [degradation_class(s.degradation) or "" for s in kept], [s.degradation for s in kept]

    fx, fy, _ = features(fit)
    tx, ty, names = features(test)
    classes = tuple(c for c in CLASSES if c in fy)
    mean, std = fx.mean(axis=0), fx.std(axis=0) + 1e-9
    centroids = np.stack([((fx[np.array(fy) == c] - mean) / std).mean(axis=0) for c in classes])
    dist = (((tx - mean) / std)[:, None, :] - centroids[None]) ** 2
    predicted = [classes[i] for i in dist.sum(axis=2).argmin(axis=1)]
    confusion = np.zeros((len(classes), len(classes)), np.int64)
    hits: dict[str, list[int]] = {}
    for truth, guess, name in zip(ty, predicted, names):
        if truth in classes:
            confusion[classes.index(truth), classes.index(guess)] += 1
        hits.setdefault(name, []).append(int(truth == guess))
    return ProbeResult(classes, confusion, {k: float(np.mean(v)) for k, v in hits.items()})


def plot_confusion(result: ProbeResult, path: str | Path) -> Path:
    """The confusion matrix as a PNG (row-normalised colours, counts printed), written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ndr_edge.artifact import atomic_output

    rows = result.confusion.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6), dpi=120)
    ax.imshow(result.confusion / rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(result.classes)):
        for j in range(len(result.classes)):
            ax.text(j, i, str(result.confusion[i, j]), ha="center", va="center",
                    color="white" if result.confusion[i, j] / rows[i, 0] > 0.5 else "black")
    ax.set_xticks(range(len(result.classes)), result.classes)
    ax.set_yticks(range(len(result.classes)), result.classes)
    ax.set_xlabel("predicted from the NDR weights")
    ax.set_ylabel("true degradation")
    ax.set_title(f"NDR probe: {result.accuracy:.0%} of held-out frames")
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target
