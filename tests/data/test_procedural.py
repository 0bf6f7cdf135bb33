"""Procedural images: dead leaves (seeded, covered, the power spectrum of natural photos) and
structured scenes (seeded, full of long straight thin lines that dead leaves lacks), objects on
flat backgrounds (seeded, a background flatter than any dead-leaves image)."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_edge.data.procedural import (
    DeadLeavesParams,
    dead_leaves,
    dead_leaves_set,
    objects,
    objects_set,
    structured,
    structured_set,
)
from ndr_edge.errors import InputError


def _spectral_slope(img: np.ndarray) -> float:
    """Slope of log radial power vs log frequency (natural images: about -2)."""
    grey = img.mean(axis=2) - img.mean()
    power = np.abs(np.fft.fftshift(np.fft.fft2(grey))) ** 2
    n = grey.shape[0]
    yy, xx = np.mgrid[0:n, 0:n] - n // 2
    radius = np.hypot(yy, xx).astype(int)
    freqs = np.arange(4, n // 3)
    radial = np.array([power[radius == f].mean() for f in freqs])
    return float(np.polyfit(np.log(freqs), np.log(radial), 1)[0])


def test_same_seed_same_image_other_seed_other_image():
    a = dead_leaves_set(2, 64, seed=5)
    b = dead_leaves_set(2, 64, seed=5)
    c = dead_leaves_set(2, 64, seed=6)
    assert [n for n, _ in a] == ["deadleaves-5-0", "deadleaves-5-1"]
    np.testing.assert_array_equal(a[1][1], b[1][1])
    assert not np.array_equal(a[0][1], c[0][1])
    assert a[0][1].dtype == np.uint8 and a[0][1].shape == (64, 64, 3)


def test_covered_textured_and_natural_spectrum():
    slopes = []
    for seed in range(3):
        img = dead_leaves(192, np.random.default_rng(seed))
        assert img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
        assert img.std() > 0.1  # many different discs, not a flat fill
        slopes.append(_spectral_slope(img))
    assert all(-3.0 < s < -1.4 for s in slopes), slopes  # white noise would be 0, a flat image undefined


def test_disc_budget_fills_holes_and_bad_params():
    img = dead_leaves(48, np.random.default_rng(0), DeadLeavesParams(max_discs=3, radius=(1.0, 2.0), blur=(0.0, 0.0)))
    assert np.isfinite(img).all() and img.shape == (48, 48, 3)
    with pytest.raises(InputError, match="radius"):
        DeadLeavesParams(radius=(5.0, 1.0))
    with pytest.raises(InputError, match="size"):
        dead_leaves(0, np.random.default_rng(0))


def _straight_lines(img: np.ndarray) -> int:
    """Line segments of at least 48 px that a probabilistic Hough transform finds on its edges."""
    import cv2

    edges = cv2.Canny((img * 255).astype(np.uint8), 50, 150)
    found = cv2.HoughLinesP(edges, 1, np.pi / 180, 60, minLineLength=48, maxLineGap=2)
    return 0 if found is None else len(found)


def test_structured_has_the_straight_lines_dead_leaves_lacks():
    scenes = [structured(128, np.random.default_rng(s)) for s in range(8)]
    lines = [_straight_lines(img) for img in scenes]
    leaves = [_straight_lines(dead_leaves(128, np.random.default_rng(s))) for s in range(8)]
    assert sum(1 for n in lines if n) >= 6 and sum(lines) >= 16, lines
    assert sum(leaves) <= 2, leaves


def test_objects_have_a_flat_background_and_textured_objects():
    scenes = [objects(128, np.random.default_rng(s)) for s in range(8)]
    # the background: most 8x8 blocks of a scene are nearly flat (coins on a table), while a
    # dead-leaves image of the same size is textured nearly everywhere
    def flat_share(img: np.ndarray) -> float:
        blocks = img[..., 1].reshape(16, 8, 16, 8).std(axis=(1, 3))
        return float((blocks < 0.01).mean())

    flat = [flat_share(img) for img in scenes]
    leaves = [flat_share(dead_leaves(128, np.random.default_rng(s))) for s in range(8)]
    assert np.median(flat) > np.median(leaves) + 0.2, (flat, leaves)
    assert max(float(img.max() - img.min()) for img in scenes) > 0.3  # objects stand out of it


@pytest.mark.parametrize(("kind", "draw", "draw_set"),
                         [("structured", structured, structured_set), ("objects", objects, objects_set)])
def test_scene_generators_are_seeded_named_in_range_and_refuse_bad_sizes(kind, draw, draw_set):
    a, b = draw_set(2, 64, seed=9), draw_set(2, 64, seed=9)
    assert [n for n, _ in a] == [f"{kind}-9-0", f"{kind}-9-1"]
    np.testing.assert_array_equal(a[1][1], b[1][1])
    assert a[0][1].dtype == np.uint8 and a[0][1].shape == (64, 64, 3)
    scenes = [draw(128, np.random.default_rng(s)) for s in range(8)]
    assert all(img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0 for img in scenes)
    assert len({img.tobytes() for img in scenes}) == 8
    with pytest.raises(InputError, match="size"):
        draw(0, np.random.default_rng(0))
    with pytest.raises(InputError, match="count"):
        draw_set(-1, 64, seed=0)
