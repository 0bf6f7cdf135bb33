"""Shared fixtures: paths of the conformance vectors and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CONFORMANCE = SHARED / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not (CONFORMANCE / "official-small.pth").is_file():
        pytest.skip(f"conformance vectors not found at {CONFORMANCE} (shared/ sits beside the checkout)")
    return CONFORMANCE
