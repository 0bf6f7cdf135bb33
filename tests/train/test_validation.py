"""The validation set (v3) and the ship rule that chooses a bundled model by it."""

from __future__ import annotations

import numpy as np

from ndr_edge.train.validation import VAL_DRAWS, VAL_SIDE, beats, validation_images, validation_samples


def test_every_image_is_degraded_once_per_draw_and_the_draws_differ():
    images = validation_images()
    names = [n for n, _ in images]
    assert len(names) == len(set(names)) == 10
    assert any(n.startswith("structured") for n in names) and any(n.startswith("objects") for n in names)
    samples = validation_samples(["haze", "lowres2"])
    assert len(samples) == 2 * len(images) * len(VAL_DRAWS)
    haze = [s for s in samples if s.degradation == "haze" and s.name == names[0]]
    assert len(haze) == len(VAL_DRAWS)
    assert all(s.gt.shape[:2] == (VAL_SIDE, VAL_SIDE) for s in samples)
    assert not np.allclose(haze[0].lq, haze[1].lq)  # another draw is another haze, not a copy
    again = validation_samples(["haze"])
    assert all(np.array_equal(a.lq, b.lq) for a, b in zip([s for s in samples if s.degradation == "haze"], again))


def test_the_ship_rule_needs_a_higher_mean_and_no_large_loss():
    incumbent = {"mean_gain_db": 4.0, "haze": 6.0, "lowres2": 0.5, "clean": 37.0}
    ok, why = beats({"mean_gain_db": 4.2, "haze": 5.7, "lowres2": 1.0, "clean": 36.0}, incumbent)
    assert ok and "haze -0.30" in why
    ok, why = beats({"mean_gain_db": 4.2, "haze": 5.4, "lowres2": 1.3, "clean": 37.0}, incumbent)
    assert not ok and "haze -0.60" in why
    ok, why = beats({"mean_gain_db": 3.9, "haze": 6.5, "lowres2": 0.5}, incumbent)
    assert not ok and "mean gain -0.10" in why
    ok, why = beats({"mean_gain_db": 4.5, "haze": 6.0, "lowres2": 1.5, "clean": 34.0}, incumbent)
    assert not ok and "clean" in why
