"""The in-memory gateway map against a real SQLite registry: loads, refreshes, survives outages."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from iotmon_ingest.gateways import GatewayChildren
from iotmon_registry import Registry, RegistrySettings, RegistryUnavailable
from tests.services.ingest.support import wait_until


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def registry(path: Path) -> Iterator[Registry]:
    with Registry(RegistrySettings(url=SecretStr(f"sqlite:///{path}"))) as opened:
        opened.import_gateway("acme", "gw-a", ["a-1", "a-2"])
        opened.import_gateway("acme", "gw-b", ["b-1"])
        yield opened


def started(registry: Registry, clock: Clock, refresh_s: float = 3600.0) -> GatewayChildren:
    gateways = GatewayChildren(
        registry, refresh_interval_s=refresh_s, miss_refresh_interval_s=1.0, clock=clock
    )
    gateways.start()
    return gateways


def test_registered_children_only_for_their_own_gateway(registry: Registry) -> None:
    gateways = started(registry, Clock())
    try:
        assert gateways.owns_device("acme", "gw-a", "a-1")
        assert gateways.owns_device("acme", "gw-b", "b-1")
        assert not gateways.owns_device("acme", "gw-a", "b-1")  # another gateway's child
        assert not gateways.owns_device("acme", "a-1", "gw-a")  # not the other way round
        assert not gateways.owns_device("other", "gw-a", "a-1")  # another tenant
        assert not gateways.owns_device("acme", "gw-a", "ghost")
    finally:
        gateways.stop()


def test_a_miss_reloads_at_once_then_at_most_once_per_interval(registry: Registry) -> None:
    clock = Clock()
    gateways = started(registry, clock)
    try:
        assert gateways.reloads == 1
        registry.import_gateway("acme", "gw-a", ["a-1", "a-2", "a-3"])
        # Registered after the map was loaded: the first miss looks again.
        assert gateways.owns_device("acme", "gw-a", "a-3")
        assert gateways.reloads == 2
        registry.import_gateway("acme", "gw-a", ["a-1", "a-2", "a-3", "a-4"])
        clock.now += 0.5
        assert not gateways.owns_device("acme", "gw-a", "a-4")  # too soon after the last
        assert not gateways.owns_device("acme", "gw-a", "a-4")
        assert gateways.reloads == 2
        clock.now += 0.6
        assert gateways.owns_device("acme", "gw-a", "a-4")
        assert gateways.reloads == 3
        # A miss with nothing changed costs the revision query only, no reload.
        clock.now += 5
        assert not gateways.owns_device("acme", "gw-a", "ghost")
        assert gateways.reloads == 3
    finally:
        gateways.stop()


def test_the_poller_picks_up_moves_and_releases(registry: Registry) -> None:
    gateways = started(registry, Clock(), refresh_s=0.05)
    try:
        registry.import_gateway("acme", "gw-b", ["b-1", "a-2"])  # a-2 moves to gw-b
        registry.import_gateway("acme", "gw-a", ["a-1"])
        assert wait_until(lambda: gateways.revision == registry.revision(), 5, 0.02)
        # No miss involved (a hit on the old map would have said yes): the poller did it.
        assert gateways.owns_device("acme", "gw-b", "a-2")
        assert not gateways.owns_device("acme", "gw-a", "a-2")
    finally:
        gateways.stop()


def test_an_unreadable_registry_keeps_the_last_map(registry: Registry, path: Path) -> None:
    clock = Clock()
    gateways = started(registry, clock)
    try:
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE registry_meta RENAME TO broken")
        clock.now += 10
        assert not gateways.refresh()
        assert gateways.owns_device("acme", "gw-a", "a-1")  # still the last good map
        assert not gateways.owns_device("acme", "gw-a", "b-1")
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE broken RENAME TO registry_meta")
        registry.import_gateway("acme", "gw-a", ["a-1", "b-1"])
        clock.now += 10
        assert gateways.owns_device("acme", "gw-a", "b-1")
    finally:
        gateways.stop()


def test_start_fails_when_the_registry_cannot_be_read(registry: Registry, path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE registry_meta")
    gateways = GatewayChildren(registry, refresh_interval_s=1, miss_refresh_interval_s=1)
    with pytest.raises(RegistryUnavailable, match="no such table"):
        gateways.start()
