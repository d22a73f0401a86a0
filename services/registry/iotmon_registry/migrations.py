"""Opening a registry database: create it, check its version, upgrade an older one.

A hand-written ladder rather than Alembic: the registry has a handful of tables,
ingest and the API open it themselves (no separate migration step to forget),
and each step is a function tested by opening a database of the version before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from iotmon_registry.errors import SchemaVersionError
from iotmon_registry.schema import (
    META_REVISION,
    META_SCHEMA_VERSION,
    SCHEMA_VERSION,
    Base,
    MetaRow,
)

logger = logging.getLogger(__name__)

Migration = Callable[[Connection], None]

MIGRATIONS: dict[int, Migration] = {}
"""``MIGRATIONS[n]`` upgrades a database of version ``n - 1`` to ``n``."""


def read_version(connection: Connection) -> int | None:
    """The schema version of the database, or None if it holds no registry yet."""
    tables = set(inspect(connection).get_table_names())
    if MetaRow.__tablename__ not in tables:
        if tables & set(Base.metadata.tables):
            raise SchemaVersionError(
                f"the database has registry tables ({', '.join(sorted(tables))}) but no "
                f"{MetaRow.__tablename__} table: not a registry this code wrote"
            )
        return None
    version = connection.execute(
        select(MetaRow.value).where(MetaRow.key == META_SCHEMA_VERSION)
    ).scalar_one_or_none()
    if version is None:
        raise SchemaVersionError(f"{MetaRow.__tablename__} holds no {META_SCHEMA_VERSION}")
    return version


def _create(connection: Connection) -> None:
    Base.metadata.create_all(connection)
    connection.execute(
        insert(MetaRow),
        [
            {"key": META_SCHEMA_VERSION, "value": SCHEMA_VERSION},
            {"key": META_REVISION, "value": 0},
        ],
    )


def _upgrade(connection: Connection, found: int) -> None:
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](connection)
        connection.execute(
            update(MetaRow).where(MetaRow.key == META_SCHEMA_VERSION).values(value=version)
        )
        logger.info("registry schema upgraded to version %d", version)


def prepare(engine: Engine, where: str) -> int:
    """Create or upgrade the schema in one transaction; the version found before.

    ``where`` names the database in errors. Two processes opening a new database
    at once (ingest and the API) race to create it: the loser finds it done.
    """
    try:
        with engine.begin() as connection:
            found = read_version(connection)
            if found is None:
                _create(connection)
                return 0
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{where}: registry schema version {found} is newer than this "
                    f"iotmon-registry understands ({SCHEMA_VERSION}): upgrade iotmon"
                )
            if found < SCHEMA_VERSION:
                _upgrade(connection, found)
            return found
    except (IntegrityError, OperationalError, ProgrammingError):
        with engine.connect() as connection:
            if read_version(connection) == SCHEMA_VERSION:
                return SCHEMA_VERSION
        raise
