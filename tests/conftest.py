"""Shared fixtures: a small valid dataset written as CSV (see tests/datasets.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.datasets import VALID_TABLES, write_tables


@pytest.fixture
def valid_tables() -> dict[str, pd.DataFrame]:
    return {name: frame.copy() for name, frame in VALID_TABLES.items()}


@pytest.fixture
def valid_folder(tmp_path: Path, valid_tables) -> Path:
    return write_tables(tmp_path / "data", valid_tables)
