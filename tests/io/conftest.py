"""Fixtures of the import tests: a small simulated format-v1 dataset and exports built from it."""

from __future__ import annotations

from pathlib import Path

import pytest

import analysis
from tests.io.exports import write_clinic_export, write_redcap_export


@pytest.fixture(scope="session")
def source_dataset() -> analysis.Dataset:
    """30 simulated patients: IV and intranasal sessions, PHQ-9, GAD-7, MADRS, adjunct drugs."""
    return analysis.simulate(30, seed=3).dataset()


@pytest.fixture
def clinic_export(tmp_path: Path, source_dataset) -> dict[str, Path]:
    return write_clinic_export(source_dataset, tmp_path / "clinic")


@pytest.fixture
def redcap_export(tmp_path: Path, source_dataset) -> dict[str, Path]:
    return write_redcap_export(source_dataset, tmp_path / "redcap")


@pytest.fixture(scope="session")
def postgres_url():
    """A private PostgreSQL server for the session (tests/io/postgres.py): its URL; stopped afterwards.

    Without the server binaries the test is skipped, or fails when CI=true (CI must run it).
    """
    import os

    from tests.io.postgres import INSTALL_SCRIPT, postgres_bin, postgres_server

    if postgres_bin() is None:
        message = f"PostgreSQL server binaries not found under /usr/lib/postgresql; run {INSTALL_SCRIPT}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with postgres_server() as url:
        yield url
