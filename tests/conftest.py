"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared data directory beside the repository (``../shared/data``).

    Tests that need the real example data take this fixture; they are skipped, with the reason,
    on a checkout without it.
    """
    path = Path(__file__).resolve().parents[2] / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def mwa_example_csv(shared_data) -> Path:
    """R mwa's example data (394 events), as shipped in ../shared/data."""
    return shared_data / "mwa_example" / "mwa_data.csv"


@pytest.fixture(scope="session")
def mwa_reference(shared_data) -> Path:
    """The folder of R's output for the documented example call."""
    return shared_data / "mwa_example" / "reference_example"


@pytest.fixture(scope="session")
def mwa_example_events(mwa_example_csv):
    """The example data read as an event table."""
    from bayes_wake.io.events import read_events

    return read_events(mwa_example_csv)
