"""Registry fixtures: a fresh SQLite registry file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from iotmon_registry import Registry, RegistrySettings


def sqlite_settings(path: Path) -> RegistrySettings:
    return RegistrySettings(url=SecretStr(f"sqlite:///{path}"))


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    with Registry(sqlite_settings(tmp_path / "registry.db")) as opened:
        yield opened
