"""The registry's tables (SQLAlchemy ORM) and the schema version they make.

Ids are the wire contract's identifiers, unique within a tenant, so every key
starts with the tenant: a tenant's rows never meet another's. ``registry_meta``
holds the schema version (checked when a database is opened) and a revision
that every change through ``Registry`` bumps, so readers that cache (ingest)
can tell cheaply whether anything changed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA_VERSION = 2
"""Bump with a migration in ``migrations.py`` whenever a table changes.

1: tenants, sites, devices, children and their tags, guardians.
2: API principals, their sites and their tokens.
"""

META_SCHEMA_VERSION = "schema_version"
META_REVISION = "revision"

ID = String(64)
NAME = String(200)
TAG = String(128)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("registry timestamps must be timezone-aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "registry_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SiteRow(Base):
    __tablename__ = "sites"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")


class DeviceRow(Base):
    __tablename__ = "devices"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        # Composite keys: a device's site and gateway are in its own tenant.
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
        ForeignKeyConstraint(["tenant_id", "gateway_id"], ["devices.tenant_id", "devices.id"]),
        Index("ix_devices_gateway", "tenant_id", "gateway_id"),
        Index("ix_devices_site", "tenant_id", "site_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")
    site_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    gateway_id: Mapped[str | None] = mapped_column(ID, nullable=True)


class ChildRow(Base):
    __tablename__ = "children"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")


class ChildTagRow(Base):
    """A tag (RFID/BLE) a child carries: one child per tag within a tenant."""

    __tablename__ = "child_tags"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "child_id"], ["children.tenant_id", "children.id"]),
        Index("ix_child_tags_child", "tenant_id", "child_id"),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(TAG, primary_key=True)
    child_id: Mapped[str] = mapped_column(ID)


class GuardianRow(Base):
    __tablename__ = "guardians"
    __table_args__ = (ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),)

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, default="")


class GuardianshipRow(Base):
    """Guardian ↔ child, many to many."""

    __tablename__ = "guardianships"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "guardian_id"], ["guardians.tenant_id", "guardians.id"]),
        ForeignKeyConstraint(["tenant_id", "child_id"], ["children.tenant_id", "children.id"]),
    )

    tenant_id: Mapped[str] = mapped_column(ID, primary_key=True)
    guardian_id: Mapped[str] = mapped_column(ID, primary_key=True)
    child_id: Mapped[str] = mapped_column(ID, primary_key=True)


class PrincipalRow(Base):
    """Who an API token speaks for: a kind and, except for a service, a tenant."""

    __tablename__ = "principals"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.id"]),
        ForeignKeyConstraint(["tenant_id", "guardian_id"], ["guardians.tenant_id", "guardians.id"]),
        CheckConstraint(
            "kind IN ('operator', 'facility', 'guardian', 'service')", name="ck_principal_kind"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(NAME, default="")
    tenant_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    guardian_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class PrincipalSiteRow(Base):
    """The sites a facility principal may see (in its own tenant)."""

    __tablename__ = "principal_sites"
    __table_args__ = (
        ForeignKeyConstraint(["principal_id"], ["principals.id"]),
        ForeignKeyConstraint(["tenant_id", "site_id"], ["sites.tenant_id", "sites.id"]),
    )

    principal_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ID)
    site_id: Mapped[str] = mapped_column(ID, primary_key=True)


class TokenRow(Base):
    """A bearer token of a principal: only its SHA-256 is kept."""

    __tablename__ = "tokens"
    __table_args__ = (ForeignKeyConstraint(["principal_id"], ["principals.id"]),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    principal_id: Mapped[int] = mapped_column(Integer, index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
