"""Shared fixtures. ../shared (corpus and reference numbers) is optional: tests that need it
skip with a reason when it is absent."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

# the IR verifier after every pass, not only on the pipeline's input and output (docs/debugging.md)
os.environ.setdefault("TWEED_VERIFY", "all")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWEED_SHARED", REPO.parent / "shared"))
CORPUS = SHARED / "corpus"
REFERENCE = SHARED / "reference"


def need_shared() -> Path:
    if not REFERENCE.is_dir() or not CORPUS.is_dir():
        pytest.skip(f"../shared not found at {SHARED} (reference numbers and corpus absent)")
    return SHARED


@pytest.fixture
def shared() -> Path:
    return need_shared()


@pytest.fixture(autouse=True)
def _quiet_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        yield
