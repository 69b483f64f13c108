"""Shared fixtures.  Tests that need ../shared skip with a reason where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The read-only project data: $JAZZD_SHARED, else ../shared beside the repository."""
    return Path(os.environ.get("JAZZD_SHARED") or REPO.parent / "shared")


SHARED = shared_dir()
SEED = SHARED / "data" / "seed"
WJD = SHARED / "data" / "wjazzd"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data, absent in a fresh clone)")
    return path


@pytest.fixture
def seed_dir() -> Path:
    return need(SEED)


@pytest.fixture
def wjd_dir() -> Path:
    return need(WJD)


# A private JACK server on the dummy backend, for every test module that asks for it.
from .daemonsession import session  # noqa: E402, F401
from .jackserver import jack_server  # noqa: E402, F401
