"""The registry's SQLAlchemy engine: SQLite tuned for several processes, any other URL as is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool

from iotmon_registry.settings import RegistrySettings

_SQLITE_BUSY_TIMEOUT_S = 15.0


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:") or "mode=memory" in str(url)


def build_engine(settings: RegistrySettings) -> Engine:
    """An engine for ``settings.url``; a SQLite file's folder is created first."""
    url = make_url(settings.url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    options: dict[str, Any] = {"connect_args": {"timeout": _SQLITE_BUSY_TIMEOUT_S}}
    if _is_memory(url):
        # One shared connection: each new one would be a new, empty database.
        options["poolclass"] = StaticPool
        options["connect_args"]["check_same_thread"] = False
    elif url.database:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite begins a transaction only before DML, so CREATE TABLE would commit on
    # its own and a second process could see a half-created schema: SQLAlchemy
    # emits BEGIN itself instead (_sqlite_begin), as its SQLite documentation advises.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # SQLite enforces foreign keys only when asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # Ingest reads while the API and the CLI write: WAL lets readers go on.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


SQLITE_BEGIN = "sqlite_begin"
"""Execution option: ``IMMEDIATE`` takes SQLite's write lock at BEGIN (schema set-up)."""


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN)
    connection.exec_driver_sql(f"BEGIN {mode}" if mode else "BEGIN")
