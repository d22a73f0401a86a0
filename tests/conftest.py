"""Session fixtures: a real mosquitto and a real influxd on free loopback ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess, find_program

# Property tests check what code does, not how fast: hypothesis's per-example deadline
# would turn a loaded 2-core machine into failures.
settings.register_profile("iotmon", deadline=None)
settings.load_profile("iotmon")


def _require(program: str) -> None:
    if find_program(program) is None:
        # Installing them is the README's test command's job; running without
        # them would silently test less, so this is an error, not a skip.
        pytest.fail(f"{program} is not installed: run ./scripts/test (it installs it)")


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoProcess]:
    _require("mosquitto")
    broker = MosquittoProcess(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxdProcess]:
    _require("influxd")
    server = InfluxdProcess(tmp_path_factory.mktemp("influxd"))
    server.start()
    yield server
    server.stop()


def require_prometheus() -> None:
    _require("prometheus")


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    """A broker of the test's own, for tests that must not share queued state."""
    _require("mosquitto")
    broker = MosquittoProcess(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()
