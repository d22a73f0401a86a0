"""Opening the alert database: create it, check its version, upgrade an older one.

The registry's approach (a hand-written ladder, run by whoever opens the
database first, serialized on SQLite by an immediate transaction): the alert
service and the API both open it, and neither needs a separate migration step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Engine, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from iotmon_alerts.adapters.schema import (
    META_REVISION,
    META_SCHEMA_VERSION,
    SCHEMA_VERSION,
    Base,
    BusJournalRow,
    MetaRow,
)
from iotmon_registry.database import SQLITE_BEGIN

logger = logging.getLogger(__name__)

Migration = Callable[[Connection], None]


def _add_bus_journal(connection: Connection) -> None:
    BusJournalRow.__table__.create(connection)  # type: ignore[attr-defined]


MIGRATIONS: dict[int, Migration] = {2: _add_bus_journal}
"""``MIGRATIONS[n]`` upgrades a database of version ``n - 1`` to ``n``."""


class SchemaVersionError(RuntimeError):
    """The database's schema is not one this code can use (newer, or not ours)."""


def read_version(connection: Connection) -> int | None:
    tables = set(inspect(connection).get_table_names())
    if MetaRow.__tablename__ not in tables:
        if tables & set(Base.metadata.tables):
            raise SchemaVersionError(
                f"the database has alert tables but no {MetaRow.__tablename__} table: "
                "not an alert database this code wrote"
            )
        return None
    version = connection.execute(
        select(MetaRow.value).where(MetaRow.key == META_SCHEMA_VERSION)
    ).scalar_one_or_none()
    if version is None:
        raise SchemaVersionError(f"{MetaRow.__tablename__} holds no {META_SCHEMA_VERSION}")
    return version


def prepare(engine: Engine, where: str) -> int:
    """Create or upgrade the schema in one transaction; the version found before (0: new)."""
    try:
        with (
            engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as connection,
            connection.begin(),
        ):
            found = read_version(connection)
            if found is None:
                Base.metadata.create_all(connection)
                connection.execute(
                    insert(MetaRow),
                    [
                        {"key": META_SCHEMA_VERSION, "value": SCHEMA_VERSION},
                        {"key": META_REVISION, "value": 0},
                    ],
                )
                return 0
            if found > SCHEMA_VERSION:
                raise SchemaVersionError(
                    f"{where}: alert schema version {found} is newer than this iotmon-alerts "
                    f"understands ({SCHEMA_VERSION}): upgrade iotmon"
                )
            for version in range(found + 1, SCHEMA_VERSION + 1):
                MIGRATIONS[version](connection)
                connection.execute(
                    update(MetaRow).where(MetaRow.key == META_SCHEMA_VERSION).values(value=version)
                )
                logger.info("alert schema upgraded to version %d", version)
            return found
    except (IntegrityError, OperationalError, ProgrammingError):
        # Two processes creating a new database at once: the loser finds it done.
        with engine.connect() as connection:
            if read_version(connection) == SCHEMA_VERSION:
                return SCHEMA_VERSION
        raise
