"""Shared fixtures: reference data and the location of the public market data."""

from __future__ import annotations

from pathlib import Path

import pytest

from settings import Settings
from streaming.refdata import Security, load_securities


@pytest.fixture(scope="session")
def securities() -> list[Security]:
    return load_securities()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (or MARKETLAKE_SHARED_DATA_DIR); skip where a clone lacks it."""
    path = Settings().shared_data_dir
    if not path.is_dir():
        pytest.skip(f"public market data not found at {path} (set MARKETLAKE_SHARED_DATA_DIR)")
    return path
