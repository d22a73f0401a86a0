"""The alert database's tables (SQLAlchemy ORM) and the schema version they make.

The alert service writes alerts, their transitions, notices and the webhook
outbox; the API writes actions (acknowledgements), silences and subscriptions
and bumps ``alerts_meta.revision`` so the service notices cheaply.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from iotmon_registry.schema import UtcDateTime

SCHEMA_VERSION = 2
"""Bump with a step in ``migrations.py`` whenever a table changes.

1: alerts, audience, transitions, notices, subscriptions, outbox, actions, silences.
2: the bus rules' input journal (``bus_journal``).
"""

OUTBOX_FORMAT = 1
"""Version of the payload JSON kept in ``outbox.payload`` (its ``version`` field too)."""

META_SCHEMA_VERSION = "schema_version"
META_REVISION = "revision"

ID = String(64)
FINGERPRINT = String(128)
TEXT_SHORT = String(500)


class Base(DeclarativeBase):
    pass


class MetaRow(Base):
    __tablename__ = "alerts_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class AlertRow(Base):
    """One alert from its first firing to its resolution (a later firing is a new row)."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_tenant_ts", "tenant", "ts"),
        Index("ix_alerts_fingerprint", "fingerprint", "active"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ID)
    fingerprint: Mapped[str] = mapped_column(FINGERPRINT)
    rule: Mapped[str] = mapped_column(ID)
    manager: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)
    severity: Mapped[str] = mapped_column(String(16))
    device: Mapped[str | None] = mapped_column(ID, nullable=True)
    site: Mapped[str | None] = mapped_column(ID, nullable=True)
    bus: Mapped[str | None] = mapped_column(ID, nullable=True)
    child: Mapped[str | None] = mapped_column(ID, nullable=True)
    summary: Mapped[str] = mapped_column(TEXT_SHORT)
    details: Mapped[str] = mapped_column(Text)
    targets: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    ack_reason: Mapped[str | None] = mapped_column(TEXT_SHORT, nullable=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class AlertGuardianRow(Base):
    """Guardians an alert is for: a guardian's API token sees exactly these alerts."""

    __tablename__ = "alert_guardians"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    guardian: Mapped[str] = mapped_column(ID, primary_key=True)


class TransitionRow(Base):
    """Every state an alert went through, and whether anybody was told (audit)."""

    __tablename__ = "alert_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    notified: Mapped[bool] = mapped_column(Boolean)
    repeat: Mapped[bool] = mapped_column(Boolean)
    muted_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class NoticeRow(Base):
    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_tenant_ts", "tenant", "ts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    tenant: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(ID)
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    device: Mapped[str | None] = mapped_column(ID, nullable=True)
    site: Mapped[str | None] = mapped_column(ID, nullable=True)
    bus: Mapped[str | None] = mapped_column(ID, nullable=True)
    child: Mapped[str | None] = mapped_column(ID, nullable=True)
    summary: Mapped[str] = mapped_column(TEXT_SHORT)
    data: Mapped[str] = mapped_column(Text)
    targets: Mapped[str] = mapped_column(Text)


class NoticeGuardianRow(Base):
    __tablename__ = "notice_guardians"

    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    guardian: Mapped[str] = mapped_column(ID, primary_key=True)


class SubscriptionRow(Base):
    """A webhook endpoint of a tenant (operator), a facility (sites) or a guardian."""

    __tablename__ = "subscriptions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ID, index=True)
    owner: Mapped[str] = mapped_column(String(16))
    sites: Mapped[str] = mapped_column(Text)
    guardian: Mapped[str | None] = mapped_column(ID, nullable=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))
    filter: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean)


class OutboxRow(Base):
    """One webhook to one subscription: kept until delivered, retried, then dead-lettered.

    ``id`` is the ``webhook-id``: the same on every attempt and after a restart.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "state", "next_attempt_at"),
        Index("ix_outbox_subscription", "subscription_id", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(40))
    tenant: Mapped[str] = mapped_column(ID)
    event_type: Mapped[str] = mapped_column(String(32))
    format_version: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(TEXT_SHORT, nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class ActionRow(Base):
    """A request from the API for the running service (an acknowledgement); applied once."""

    __tablename__ = "actions"
    __table_args__ = (Index("ix_actions_state", "state", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(FINGERPRINT)
    by: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(TEXT_SHORT)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    result: Mapped[str | None] = mapped_column(TEXT_SHORT, nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class SilenceRow(Base):
    __tablename__ = "silences"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(ID, index=True)
    matchers: Mapped[str] = mapped_column(Text)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(TEXT_SHORT)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BusJournalRow(Base):
    """One input the bus rules took (``iotmon_alerts.bus.journal``): the service rebuilds
    them from these rows at start. Written with what the input decided, in one transaction.
    """

    __tablename__ = "bus_journal"
    __table_args__ = (Index("ix_bus_journal_tenant_id", "tenant", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ID)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    line: Mapped[str] = mapped_column(Text)
    """The journal line (JSON, with its own format version ``v``)."""
