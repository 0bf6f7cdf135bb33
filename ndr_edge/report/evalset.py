"""The evaluation set every variant is scored on: the held-out demo photos or a clean folder
with seeded synthetic degradations, or a folder of real degraded/clean pairs. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ndr_edge.data import EvalSample, centre_crop, find_pairs, load_clean_folder, load_pair, synthetic_eval_set
from ndr_edge.imageio import demo_images
from ndr_edge.report.config import ReportConfig


@dataclass
class EvalSet:
    samples: list[EvalSample]
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def degradations(self) -> list[str]:
        return list(dict.fromkeys(s.degradation for s in self.samples))


def build_eval_set(config: ReportConfig) -> EvalSet:
    """Samples in degradation-major order (all images of the first degradation, then the next)."""
    if config.data is not None and config.layout != "clean":
        layout, pairs = find_pairs(config.data, config.layout)
        pairs = pairs[: config.images] if config.images else pairs
        samples = []
        for pair in pairs:
            lq, gt = load_pair(pair, layout)
            samples.append(EvalSample(layout, pair.name, centre_crop(lq, config.max_side).copy(),
                                      centre_crop(gt, config.max_side).copy()))
        return EvalSet(samples, {
            "source": str(config.data), "kind": "paired", "layout": layout, "degradations": [layout],
            "images": [s.name for s in samples], "max_side": config.max_side,
            "summary": f"{len(samples)} real {layout} pair(s) from {config.data}"
                       + (f", centre-cropped to at most {config.max_side} px" if config.max_side else ", full size"),
        })
    images = load_clean_folder(config.data) if config.data is not None else demo_images("heldout")
    images = images[: config.images] if config.images else images
    samples = synthetic_eval_set(images, config.degradations, seed=config.seed, max_side=config.max_side)
    source = str(config.data) if config.data is not None else "demo:heldout"
    names = [name for name, _ in images]
    plural = "s" if len(names) != 1 else ""
    what = f"clean image{plural} of {config.data}" if config.data is not None else f"held-out demo photo{plural}"
    return EvalSet(samples, {
        "source": source, "kind": "synthetic", "degradations": list(config.degradations), "images": names,
        "seed": config.seed, "max_side": config.max_side,
        "summary": f"{len(names)} {what} ({', '.join(names[:6])}{', ...' if len(names) > 6 else ''})"
                   + (f", centre-cropped to at most {config.max_side} px" if config.max_side else ", full size")
                   + f", each degraded with {', '.join(config.degradations)} (seed {config.seed})",
    })
