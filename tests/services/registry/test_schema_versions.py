"""The registry's schema version: recorded, checked on open, newer or foreign databases refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from iotmon_registry import SCHEMA_VERSION, Registry, SchemaVersionError
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
