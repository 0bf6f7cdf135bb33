"""The trainer's validation set, defined once: ``Trainer.validate`` (keep-best) and
``benchmarks/val_snapshots.py`` (choosing the step to ship) both score on it. The
evaluation set of ``ndr-eval`` is a different one and is never used to choose.

v2 had six frames a degradation (two held-out colour photos, their greyscale copies, two
dead-leaves images), and one frame's haze draw could move the haze gain 2-4 dB between
neighbouring saves. v3 keeps those images, adds two held-out structured scenes and two
held-out objects scenes (the kinds of frame x2 failed on), and degrades every image with
``VAL_DRAWS`` independent draws: 30 frames a degradation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ndr_edge.data import synthetic_eval_set
from ndr_edge.data.datasets import to_grey
from ndr_edge.data.eval_set import EvalSample
from ndr_edge.data.procedural import dead_leaves_set, objects_set, structured_set
from ndr_edge.frames import to_float
from ndr_edge.imageio import demo_images

#: Names the validation set in ``val_history`` so that keep-best compares like with like
#: across a resume (v2: colour, grey and dead-leaves frames, one draw; v3: see the module).
VAL_SET = "v3"
#: Seeds of the held-out procedural validation images; no training pool uses them.
PROCEDURAL_VAL_SEED = 2000
STRUCTURED_VAL_SEED = 4100
OBJECTS_VAL_SEED = 4600
#: Degradation draws per image (seeds of ``synthetic_eval_set``).
VAL_DRAWS = (1234, 1235, 1236)
#: Side of every validation frame (px).
VAL_SIDE = 128


def validation_images() -> list[tuple[str, np.ndarray]]:
    """The clean validation images: held-out colour photos, their greyscale copies, and two
    held-out images of each procedural kind, ``VAL_SIDE`` px."""
    colour = demo_images("heldout")
    grey = [(f"{name}-grey", to_grey(to_float(img))) for name, img in colour]
    return (colour + grey + dead_leaves_set(2, VAL_SIDE, PROCEDURAL_VAL_SEED)
            + structured_set(2, VAL_SIDE, STRUCTURED_VAL_SEED) + objects_set(2, VAL_SIDE, OBJECTS_VAL_SEED))


def validation_samples(degradations: Sequence[str]) -> list[EvalSample]:
    """Every validation image under every degradation, once per seed of ``VAL_DRAWS``."""
    images = validation_images()
    return [s for seed in VAL_DRAWS for s in synthetic_eval_set(images, degradations, seed=seed, max_side=VAL_SIDE)]


#: The ship rule's tolerances: a candidate may lose at most ``MAX_GROUP_DROP_DB`` on any one
#: degradation's validation gain to the model it replaces, and must leave clean frames at
#: ``MIN_CLEAN_PSNR_DB`` or more (their PSNR swings 36.5-38.7 dB between saves of one run).
MAX_GROUP_DROP_DB = 0.5
MIN_CLEAN_PSNR_DB = 35.0


def beats(candidate: dict[str, float], incumbent: dict[str, float], max_drop: float = MAX_GROUP_DROP_DB,
          min_clean_psnr: float = MIN_CLEAN_PSNR_DB) -> tuple[bool, str]:
    """The ship rule, fixed before any new checkpoint is scored: a candidate replaces the
    bundled model when its mean validation gain is higher, no degradation it shares with the
    incumbent is more than ``max_drop`` dB worse, and its ``clean`` PSNR (when scored) is at
    least ``min_clean_psnr``. ``candidate`` and ``incumbent`` map degradation names to gains
    (dB), ``mean_gain_db`` to their mean and ``clean`` to the clean frames' PSNR. Returns the
    verdict and the reason."""
    shared = sorted(k for k in candidate.keys() & incumbent.keys() if k not in ("mean_gain_db", "clean"))
    delta = candidate["mean_gain_db"] - incumbent["mean_gain_db"]
    if delta <= 0:
        return False, f"mean gain {delta:+.2f} dB against the incumbent"
    reason = f"mean gain {delta:+.2f} dB"
    if shared:
        worst = min(shared, key=lambda k: candidate[k] - incumbent[k])
        drop = candidate[worst] - incumbent[worst]
        if drop < -max_drop:
            return False, f"{worst} {drop:+.2f} dB (more than {max_drop} dB worse)"
        reason += f", worst degradation {worst} {drop:+.2f} dB"
    if "clean" in candidate and candidate["clean"] < min_clean_psnr:
        return False, f"clean frames {candidate['clean']:.2f} dB (below {min_clean_psnr} dB)"
    return True, reason
