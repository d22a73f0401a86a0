"""The registry's SQLAlchemy engine: SQLite tuned for several processes, any other URL as is."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import StaticPool
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

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
    _use_wal(cursor)
    cursor.close()


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def _use_wal(cursor: Any) -> None:
    # Switching a new database to WAL takes its exclusive lock, and while another
    # process holds that lock SQLite may answer "database is locked" at once, without
    # waiting the busy timeout: ingest's workers and the API opening a new registry
    # together met it on a loaded machine. So wait here, as long as the busy timeout.
    for attempt in Retrying(
        retry=retry_if_exception(_is_locked),
        wait=wait_exponential(multiplier=0.005, max=0.2),
        stop=stop_after_delay(_SQLITE_BUSY_TIMEOUT_S),
        reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode=WAL")


SQLITE_BEGIN = "sqlite_begin"
"""Execution option: ``IMMEDIATE`` takes SQLite's write lock at BEGIN (schema set-up)."""


def _sqlite_begin(connection: Connection) -> None:
    mode = connection.get_execution_options().get(SQLITE_BEGIN)
    connection.exec_driver_sql(f"BEGIN {mode}" if mode else "BEGIN")
