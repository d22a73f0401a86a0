"""The registry's schema version: recorded, checked on open, newer or foreign databases refused."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine, inspect

from iotmon_registry import (
    SCHEMA_VERSION,
    PrincipalKind,
    Principals,
    Registry,
    RegistrySettings,
    SchemaVersionError,
)
from tests.services.registry.conftest import sqlite_settings


def _version_in_file(path: Path) -> int:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM registry_meta WHERE key = 'schema_version'").fetchone()
    return int(row[0])


def test_a_new_database_records_the_current_version(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with Registry(sqlite_settings(path)) as registry:
        assert registry.schema_version_found == 0
    assert _version_in_file(path) == SCHEMA_VERSION


def test_a_newer_schema_is_refused_naming_the_database(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    Registry(sqlite_settings(path)).open().close()
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE registry_meta SET value = ? WHERE key = 'schema_version'",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(SchemaVersionError, match=rf"{path}: registry schema version \d+ is newer"):
        Registry(sqlite_settings(path)).open()


def test_a_database_with_our_tables_but_no_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE devices (id TEXT)")
    with pytest.raises(SchemaVersionError, match="no registry_meta table"):
        Registry(sqlite_settings(path)).open()


def test_unrelated_tables_are_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE something_else (id TEXT)")
    with Registry(sqlite_settings(path)) as registry:
        registry.add_device("acme", "gw-1")
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM something_else").fetchone() == (0,)


DATA = Path(__file__).with_name("data")


def _open_v1(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript((DATA / "registry-v1.sql").read_text())


def _shape(path: Path) -> dict[str, object]:
    """Tables, columns, keys and indexes as the database itself reports them."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        inspector = inspect(engine)
        return {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                inspector.get_pk_constraint(table)["constrained_columns"],
                sorted(
                    (tuple(f["constrained_columns"]), f["referred_table"])
                    for f in inspector.get_foreign_keys(table)
                ),
                sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)),
                sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            )
            for table in sorted(inspector.get_table_names())
        }
    finally:
        engine.dispose()


def test_a_version_1_database_is_upgraded_in_place_keeping_its_data(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _open_v1(path)
    assert _version_in_file(path) == 1
    with Registry(sqlite_settings(path)) as registry:
        assert registry.schema_version_found == 1
        devices = {d.device: d for d in registry.devices("acme")}
        assert devices["env-1"].gateway == "gw-1"
        assert devices["env-1"].effective_site == "plant-1"
        assert registry.children("acme", guardian="mum")[0].tags == ("E200341201",)
        # The tables version 2 added are there and work.
        issued = Principals(registry).create(PrincipalKind.GUARDIAN, tenant="acme", guardian="mum")
        assert Principals(registry).authenticate(issued.token).principal is not None
    assert _version_in_file(path) == SCHEMA_VERSION
    with Registry(sqlite_settings(path)) as again:
        assert again.schema_version_found == SCHEMA_VERSION


def test_an_upgraded_database_has_the_shape_of_a_new_one(tmp_path: Path) -> None:
    upgraded, fresh = tmp_path / "upgraded.db", tmp_path / "fresh.db"
    _open_v1(upgraded)
    Registry(sqlite_settings(upgraded)).open().close()
    Registry(sqlite_settings(fresh)).open().close()
    assert _shape(upgraded) == _shape(fresh)


def _open_when_all_are_ready(url: str, barrier: Any, results: Any) -> None:
    barrier.wait(30)
    try:
        with Registry(RegistrySettings(url=SecretStr(url))) as registry:
            results.put(("ok", registry.schema_version_found))
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        results.put(("error", repr(exc)))


def test_processes_opening_a_new_database_at_once_all_get_the_whole_schema(
    tmp_path: Path,
) -> None:
    """Ingest's workers and the API start together on a new database: one creates the
    schema, the others wait for it (a half-created schema once stopped a worker)."""
    context = multiprocessing.get_context("spawn")
    processes = 4
    barrier = context.Barrier(processes)
    results = context.Queue()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    started = [
        context.Process(target=_open_when_all_are_ready, args=(url, barrier, results))
        for _ in range(processes)
    ]
    for process in started:
        process.start()
    outcomes = [results.get(timeout=60) for _ in started]
    for process in started:
        process.join(30)
    assert [kind for kind, _ in outcomes] == ["ok"] * processes, outcomes
    assert sorted(found for _, found in outcomes) == [0] + [SCHEMA_VERSION] * (processes - 1)
