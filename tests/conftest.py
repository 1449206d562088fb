"""Shared fixtures: paths to the shipped protocols and rigs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROTOCOLS = ROOT / "protocols"
RIGS = PROTOCOLS / "rigs"


@pytest.fixture
def root() -> Path:
    return ROOT
