"""Fixtures shared by the tests (the host tests have their own in tests/host/)."""

import pytest
from nodes_support import Progress

from latent_painter.nodes import host


@pytest.fixture
def progress(monkeypatch):
    """host.progress replaced by a recorder (the one piece of the host a node test fakes)."""
    recorder = Progress()
    monkeypatch.setattr(host, "progress", recorder)
    return recorder
