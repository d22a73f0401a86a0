"""Opening a registry database: create it, check its version, upgrade an older one.

A hand-written ladder rather than Alembic: the registry has a handful of tables,
ingest and the API open it themselves (no separate migration step to forget),
and each step is a function tested by opening a database of the version before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from iotmon_registry.database import SQLITE_BEGIN
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


def _v2_principals_and_tokens(connection: Connection) -> None:
    """Version 2: API principals, the sites of facility principals, hashed tokens.

    The tables as they were at version 2, spelled out here (not taken from
    ``schema``): a later version that changes them adds its own step.
    """
    meta = MetaData()
    meta.reflect(connection, only=["tenants", "sites", "guardians"])
    principals = Table(
        "principals",
        meta,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False),
        Column("name", String(200), nullable=False),
        Column("tenant_id", String(64)),
        Column("guardian_id", String(64)),
        Column("created_at", DateTime, nullable=False),
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(["tenant_id", "guardian_id"], ["guardians.tenant_id", "guardians.id"]),
        CheckConstraint(
            "kind IN ('operator', 'facility', 'guardian', 'service')", name="ck_principal_kind"
        ),
    )
    sites = Table(
        "principal_sites",
        meta,
        Column("principal_id", Integer, primary_key=True),
        Column("tenant_id", String(64), nullable=False),
        Column("site_id", String(64), primary_key=True),
        ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
    )
    tokens = Table(
        "tokens",
        meta,
        Column("id", String(32), primary_key=True),
        Column("principal_id", Integer, nullable=False),
        Column("secret_sha256", String(64), nullable=False),
        Column("created_at", DateTime, nullable=False),
        Column("expires_at", DateTime),
        Column("revoked_at", DateTime),
        ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        UniqueConstraint("secret_sha256"),
        Index("ix_tokens_principal_id", "principal_id"),
    )
    meta.create_all(connection, tables=[principals, sites, tokens])


MIGRATIONS: dict[int, Migration] = {2: _v2_principals_and_tokens}
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
        # Serialized on SQLite (the write lock from BEGIN on): a second process waits
        # for the first to finish, then finds the schema done.
        with (
            engine.connect().execution_options(**{SQLITE_BEGIN: "IMMEDIATE"}) as connection,
            connection.begin(),
        ):
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
