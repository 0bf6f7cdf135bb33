"""Shared fixtures: paths of the conformance vectors and tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The vectors made with the authors' implementation, vendored (tests/conformance/README.md)
# so that every clone runs the conformance tests.
CONFORMANCE = Path(__file__).resolve().parent / "conformance"


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    if not (CONFORMANCE / "official-small.pth").is_file():
        raise FileNotFoundError(f"conformance vectors missing from {CONFORMANCE}; restore tests/conformance from git")
    return CONFORMANCE
