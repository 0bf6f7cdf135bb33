"""Fixtures for the data tests: small natural crops (from the scikit-image photos) and
synthetic images."""

from __future__ import annotations

import numpy as np
import pytest

from ndr_edge.imageio import demo_images


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 96x96 float32 RGB centre crop of the held-out 'coffee' photo (textured, mid-tones)."""
    image = dict(demo_images("heldout"))["coffee"]
    h, w = image.shape[:2]
    return image[h // 2 - 48: h // 2 + 48, w // 2 - 48: w // 2 + 48].astype(np.float32) / 255.0


@pytest.fixture
def rgb8() -> np.ndarray:
    """A 12x17 uint8 RGB image with distinct values."""
    return np.random.default_rng(7).integers(0, 256, (12, 17, 3), dtype=np.uint8)
