"""Helpers shared by the edge agent's integration tests."""

from __future__ import annotations

from uuid import uuid4

import pytest


@pytest.fixture
def tenant() -> str:
    """A tenant of the test's own, so retained statuses on the shared broker never mix."""
    return f"t{uuid4().hex[:12]}"
