"""The alert database: what the service records and the API reads and asks.

Every method is one transaction. The service records each outcome (alert rows,
transitions, notices and the outbox rows of its webhooks) in a single
transaction before the MQTT message that caused it is acknowledged: a crash
in between loses nothing, and doing it again inserts no second webhook (the
outbox id is derived from the delivery).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self, TypeVar

from sqlalchemy import Engine, Select, delete, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from iotmon_alerts.adapters.migrations import prepare
from iotmon_alerts.adapters.schema import (
    META_REVISION,
    OUTBOX_FORMAT,
    ActionRow,
    AlertGuardianRow,
    AlertRow,
    BusJournalRow,
    MetaRow,
    NoticeGuardianRow,
    NoticeRow,
    OutboxRow,
    SilenceRow,
    SubscriptionRow,
    TransitionRow,
)
from iotmon_alerts.config import AlertsDatabaseSettings
from iotmon_alerts.domain.lifecycle import Manager, Silence
from iotmon_alerts.domain.model import (
    Alert,
    AlertChange,
    JournalRecord,
    NoticeOut,
    Role,
    Subject,
    Target,
)
from iotmon_alerts.routing import Owner, Subscription, SubscriptionFilter, Webhook
from iotmon_contract import AlertSeverity, AlertState
from iotmon_registry import RegistrySettings
from iotmon_registry.database import build_engine


class DatabaseUnavailable(RuntimeError):
    """The alert database could not be reached or failed: retry later."""


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class ActionState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    tenant: str
    kind: str
    fingerprint: str
    by: str
    reason: str
    created_at: datetime
    state: ActionState
    result: str | None


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: str
    subscription_id: str
    tenant: str
    event_type: str
    payload: str
    created_at: datetime
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    last_status: int | None
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as the API lists it: the alert and its row id."""

    id: int
    alert: Alert
    manager: Manager
    last_notified_at: datetime | None


@dataclass(frozen=True, slots=True)
class StoredNotice:
    id: int
    notice: NoticeOut


@dataclass(frozen=True, slots=True)
class ChangedAlert:
    """An alert as it is now, and the id of its newest transition (a change feed's cursor)."""

    change: int
    stored: StoredAlert


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """What the API asks for; ``guardian``/``sites`` narrow it to a principal's scope."""

    tenant: str | None = None
    state: AlertState | None = None
    active: bool | None = None
    severity: AlertSeverity | None = None
    rule: str | None = None
    device: str | None = None
    bus: str | None = None
    child: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    guardian: str | None = None
    sites: frozenset[str] | None = None
    limit: int = 100


_Selected = TypeVar("_Selected", bound=Select[*tuple[Any, ...]])


def _filtered(statement: _Selected, query: AlertQuery) -> _Selected:
    """``statement`` (over AlertRow) narrowed to what ``query`` asks, its limit aside."""
    if query.tenant is not None:
        statement = statement.where(AlertRow.tenant == query.tenant)
    for column, value in (
        (AlertRow.state, query.state.value if query.state else None),
        (AlertRow.severity, query.severity.value if query.severity else None),
        (AlertRow.rule, query.rule),
        (AlertRow.device, query.device),
        (AlertRow.bus, query.bus),
        (AlertRow.child, query.child),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if query.active is not None:
        statement = statement.where(AlertRow.active.is_(query.active))
    if query.since is not None:
        statement = statement.where(AlertRow.ts >= query.since)
    if query.until is not None:
        statement = statement.where(AlertRow.ts < query.until)
    if query.guardian is not None:
        statement = statement.join(
            AlertGuardianRow, AlertGuardianRow.alert_id == AlertRow.id
        ).where(AlertGuardianRow.guardian == query.guardian)
    if query.sites is not None:
        statement = statement.where(AlertRow.site.in_(sorted(query.sites)))
    return statement


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _targets(targets: Sequence[Target]) -> str:
    return _dumps([{"role": t.role.value, "id": t.id} for t in targets])


def _read_targets(text: str) -> tuple[Target, ...]:
    return tuple(Target(Role(t["role"]), t["id"]) for t in json.loads(text))


def _alert(row: AlertRow) -> Alert:
    return Alert(
        tenant=row.tenant,
        fingerprint=row.fingerprint,
        rule=row.rule,
        state=AlertState(row.state),
        severity=AlertSeverity(row.severity),
        subject=Subject(device=row.device, site=row.site, bus=row.bus, child=row.child),
        summary=row.summary,
        starts_at=row.starts_at,
        ts=row.ts,
        details=json.loads(row.details),
        targets=_read_targets(row.targets),
        acknowledged_by=row.acknowledged_by,
        ack_reason=row.ack_reason,
        closed=not row.active and row.state != AlertState.RESOLVED.value,
    )


def _notice(row: NoticeRow) -> NoticeOut:
    return NoticeOut(
        tenant=row.tenant,
        kind=row.kind,
        key=row.key,
        ts=row.ts,
        subject=Subject(device=row.device, site=row.site, bus=row.bus, child=row.child),
        summary=row.summary,
        data=json.loads(row.data),
        targets=_read_targets(row.targets),
    )


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        tenant=row.tenant,
        owner=Owner(row.owner),
        url=row.url,
        secret=row.secret,
        filter=SubscriptionFilter.model_validate_json(row.filter),
        sites=frozenset(json.loads(row.sites)),
        guardian=row.guardian,
        enabled=row.enabled,
        description=row.description,
    )


def _item(row: OutboxRow) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        subscription_id=row.subscription_id,
        tenant=row.tenant,
        event_type=row.event_type,
        payload=row.payload,
        created_at=row.created_at,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        last_status=row.last_status,
        delivered_at=row.delivered_at,
    )


def _action(row: ActionRow) -> Action:
    return Action(
        row.id,
        row.tenant,
        row.kind,
        row.fingerprint,
        row.by,
        row.reason,
        row.created_at,
        ActionState(row.state),
        row.result,
    )


def _silence(row: SilenceRow) -> Silence:
    return Silence(
        id=row.id,
        tenant=row.tenant,
        matchers=json.loads(row.matchers),
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        created_by=row.created_by,
        comment=row.comment,
    )


def _short(text: str) -> str:
    return text[:500]


class AlertsDatabase:
    """``AlertsDatabase(settings)`` only stores; ``open()`` connects and prepares the schema."""

    def __init__(self, settings: AlertsDatabaseSettings) -> None:
        self._settings = settings
        self._engine: Engine | None = None

    @property
    def where(self) -> str:
        return self._settings.display_url()

    def open(self) -> Self:
        if self._engine is not None:
            return self
        # The registry's engine builder: the same SQLite tuning (WAL, foreign keys,
        # busy timeout, BEGIN emitted by SQLAlchemy) for a database several processes share.
        engine = build_engine(RegistrySettings(url=self._settings.url))
        try:
            prepare(engine, self.where)
        except OperationalError as exc:
            engine.dispose()
            raise DatabaseUnavailable(f"alert database {self.where}: {exc.orig}") from exc
        except BaseException:
            engine.dispose()
            raise
        self._engine = engine
        return self

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def session(self, *, bump: bool = False) -> Iterator[Session]:
        if self._engine is None:
            raise RuntimeError("the alert database is not open: call open() first")
        try:
            with Session(self._engine, expire_on_commit=False) as session, session.begin():
                yield session
                if bump:
                    session.execute(
                        update(MetaRow)
                        .where(MetaRow.key == META_REVISION)
                        .values(value=MetaRow.value + 1)
                    )
        except OperationalError as exc:
            raise DatabaseUnavailable(f"alert database {self.where}: {exc.orig}") from exc

    def revision(self) -> int:
        """Bumped by every API write (actions, silences, subscriptions): cheap to poll."""
        with self.session() as session:
            return session.execute(
                select(MetaRow.value).where(MetaRow.key == META_REVISION)
            ).scalar_one()

    # -- the service's side ------------------------------------------------------------

    def record(
        self,
        changes: Sequence[AlertChange],
        notices: Sequence[NoticeOut],
        webhooks: Sequence[Webhook],
        managers: dict[str, Manager],
        now: datetime,
        journal: Sequence[JournalRecord] = (),
    ) -> int:
        """Record one outcome in one transaction; returns how many webhooks were new.

        ``journal``: the bus rules' inputs that decided it, kept in the same transaction so
        the journal holds exactly what was decided.
        """
        with self.session() as session:
            session.add_all(
                BusJournalRow(tenant=r.tenant, at=r.at, kind=r.kind, line=r.line) for r in journal
            )
            for change in changes:
                self._record_change(session, change, managers, now)
            for notice in notices:
                self._record_notice(session, notice)
            known = set(
                session.scalars(
                    select(OutboxRow.id).where(OutboxRow.id.in_([w.id for w in webhooks]))
                )
            )
            new = 0
            for webhook in webhooks:
                if webhook.id in known:
                    continue
                known.add(webhook.id)
                session.add(
                    OutboxRow(
                        id=webhook.id,
                        subscription_id=webhook.subscription.id,
                        tenant=webhook.subscription.tenant,
                        event_type=webhook.event_type.value,
                        format_version=OUTBOX_FORMAT,
                        payload=_dumps(webhook.payload),
                        created_at=now,
                        state=DeliveryState.PENDING.value,
                        attempts=0,
                        next_attempt_at=now,
                        last_error=None,
                        last_status=None,
                        delivered_at=None,
                    )
                )
                new += 1
        return new

    @staticmethod
    def _record_change(
        session: Session, change: AlertChange, managers: dict[str, Manager], now: datetime
    ) -> None:
        alert = change.alert
        row = session.scalars(
            select(AlertRow)
            .where(AlertRow.fingerprint == alert.fingerprint, AlertRow.active.is_(True))
            .order_by(AlertRow.id.desc())
            .limit(1)
        ).first()
        if row is None:
            row = AlertRow(
                tenant=alert.tenant,
                fingerprint=alert.fingerprint,
                rule=alert.rule,
                manager=managers.get(alert.fingerprint, Manager.RULES).value,
                starts_at=alert.starts_at,
            )
            session.add(row)
        row.state = alert.state.value
        row.active = alert.active
        row.severity = alert.severity.value
        row.device = alert.subject.device
        row.site = alert.subject.site
        row.bus = alert.subject.bus
        row.child = alert.subject.child
        row.summary = alert.summary[:500]
        row.details = _dumps(dict(alert.details))
        row.targets = _targets(alert.targets)
        row.ts = alert.ts
        row.acknowledged_by = alert.acknowledged_by
        row.ack_reason = alert.ack_reason
        if change.notify:
            row.last_notified_at = now
        session.flush()
        for guardian in alert.guardians:
            if session.get(AlertGuardianRow, (row.id, guardian)) is None:
                session.add(AlertGuardianRow(alert_id=row.id, guardian=guardian))
        session.add(
            TransitionRow(
                alert_id=row.id,
                state=alert.state.value,
                ts=alert.ts if not change.repeat else now,
                notified=change.notify,
                repeat=change.repeat,
                muted_by=change.muted_by,
            )
        )

    @staticmethod
    def _record_notice(session: Session, notice: NoticeOut) -> None:
        key = notice_key(notice)
        if session.scalars(select(NoticeRow.id).where(NoticeRow.key == key)).first() is not None:
            return
        row = NoticeRow(
            key=key,
            tenant=notice.tenant,
            kind=notice.kind,
            ts=notice.ts,
            device=notice.subject.device,
            site=notice.subject.site,
            bus=notice.subject.bus,
            child=notice.subject.child,
            summary=notice.summary[:500],
            data=_dumps(dict(notice.data)),
            targets=_targets(notice.targets),
        )
        session.add(row)
        session.flush()
        session.add_all(NoticeGuardianRow(notice_id=row.id, guardian=g) for g in notice.guardians)

    def active_alerts(self) -> list[StoredAlert]:
        with self.session() as session:
            rows = session.scalars(select(AlertRow).where(AlertRow.active.is_(True)))
            return [
                StoredAlert(row.id, _alert(row), Manager(row.manager), row.last_notified_at)
                for row in rows
            ]

    def subscriptions(self, tenant: str | None = None) -> list[Subscription]:
        query = select(SubscriptionRow).order_by(SubscriptionRow.created_at, SubscriptionRow.id)
        if tenant is not None:
            query = query.where(SubscriptionRow.tenant == tenant)
        with self.session() as session:
            return [_subscription(row) for row in session.scalars(query)]

    def subscription(self, subscription_id: str) -> Subscription | None:
        with self.session() as session:
            row = session.get(SubscriptionRow, subscription_id)
            return _subscription(row) if row is not None else None

    def pending_actions(self, limit: int = 100) -> list[Action]:
        with self.session() as session:
            rows = session.scalars(
                select(ActionRow)
                .where(ActionRow.state == ActionState.PENDING.value)
                .order_by(ActionRow.id)
                .limit(limit)
            )
            return [_action(row) for row in rows]

    def finish_action(self, action_id: int, ok: bool, result: str, now: datetime) -> None:
        with self.session() as session:
            session.execute(
                update(ActionRow)
                .where(ActionRow.id == action_id)
                .values(
                    state=(ActionState.DONE if ok else ActionState.FAILED).value,
                    result=_short(result),
                    done_at=now,
                )
            )

    def silences(self, *, tenant: str | None = None, include_expired: bool = False,
                 now: datetime | None = None) -> list[Silence]:  # fmt: skip
        query = select(SilenceRow).order_by(SilenceRow.created_at, SilenceRow.id)
        if tenant is not None:
            query = query.where(SilenceRow.tenant == tenant)
        if not include_expired and now is not None:
            query = query.where(SilenceRow.ends_at > now)
        with self.session() as session:
            return [_silence(row) for row in session.scalars(query)]

    def journal(self, tenant: str, since: datetime) -> list[JournalRecord]:
        """A tenant's bus journal from ``since`` on, oldest first (as it was written)."""
        query = (
            select(BusJournalRow)
            .where(BusJournalRow.tenant == tenant, BusJournalRow.at >= since)
            .order_by(BusJournalRow.id)
        )
        with self.session() as session:
            return [
                JournalRecord(row.tenant, row.at, row.kind, row.line)
                for row in session.scalars(query)
            ]

    def prune_journal(self, before: datetime) -> int:
        """Forget journal lines older than ``before``; how many went."""
        with self.session() as session:
            result = session.execute(delete(BusJournalRow).where(BusJournalRow.at < before))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- the outbox ----------------------------------------------------------------

    def due_subscriptions(self, now: datetime) -> list[str]:
        """Subscriptions with a delivery due now."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(OutboxRow.subscription_id)
                    .where(
                        OutboxRow.state == DeliveryState.PENDING.value,
                        OutboxRow.next_attempt_at <= now,
                    )
                    .distinct()
                )
            )

    def next_due(self, subscription_id: str, now: datetime) -> OutboxItem | None:
        """The oldest delivery of a subscription that is due now."""
        with self.session() as session:
            row = session.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.subscription_id == subscription_id,
                    OutboxRow.state == DeliveryState.PENDING.value,
                    OutboxRow.next_attempt_at <= now,
                )
                .order_by(OutboxRow.created_at, OutboxRow.id)
                .limit(1)
            ).first()
            return _item(row) if row is not None else None

    def delivered(self, item_id: str, status: int, now: datetime) -> None:
        with self.session() as session:
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id == item_id)
                .values(
                    state=DeliveryState.DELIVERED.value,
                    attempts=OutboxRow.attempts + 1,
                    last_status=status,
                    last_error=None,
                    delivered_at=now,
                )
            )

    def failed(
        self, item_id: str, error: str, status: int | None, retry_at: datetime | None
    ) -> None:
        """One attempt failed: retry at ``retry_at``, or dead-letter (None)."""
        values: dict[str, Any] = {
            "attempts": OutboxRow.attempts + 1,
            "last_error": _short(error),
            "last_status": status,
        }
        if retry_at is None:
            values["state"] = DeliveryState.DEAD.value
        else:
            values["next_attempt_at"] = retry_at
        with self.session() as session:
            session.execute(update(OutboxRow).where(OutboxRow.id == item_id).values(**values))

    def outbox(
        self,
        *,
        state: DeliveryState | None = None,
        tenant: str | None = None,
        subscription_ids: Sequence[str] | None = None,
        limit: int = 100,
    ) -> list[OutboxItem]:
        query = select(OutboxRow).order_by(OutboxRow.created_at.desc(), OutboxRow.id).limit(limit)
        if state is not None:
            query = query.where(OutboxRow.state == state.value)
        if tenant is not None:
            query = query.where(OutboxRow.tenant == tenant)
        if subscription_ids is not None:
            query = query.where(OutboxRow.subscription_id.in_(list(subscription_ids)))
        with self.session() as session:
            return [_item(row) for row in session.scalars(query)]

    def outbox_item(self, item_id: str) -> OutboxItem | None:
        with self.session() as session:
            row = session.get(OutboxRow, item_id)
            return _item(row) if row is not None else None

    def replay(self, item_id: str, now: datetime) -> OutboxItem | None:
        """A dead delivery back to pending, attempts from zero; the same webhook-id."""
        with self.session(bump=True) as session:
            row = session.get(OutboxRow, item_id)
            if row is None:
                return None
            if row.state == DeliveryState.DEAD.value:
                row.state = DeliveryState.PENDING.value
                row.attempts = 0
                row.next_attempt_at = now
            return _item(row)

    def outbox_counts(self) -> dict[str, int]:
        with self.session() as session:
            rows = session.execute(select(OutboxRow.state, func.count()).group_by(OutboxRow.state))
            return {str(state): int(count) for state, count in rows}

    # -- the API's side --------------------------------------------------------------

    def alerts(self, query: AlertQuery) -> list[StoredAlert]:
        statement = _filtered(
            select(AlertRow).order_by(AlertRow.ts.desc(), AlertRow.id.desc()), query
        )
        with self.session() as session:
            return [
                StoredAlert(row.id, _alert(row), Manager(row.manager), row.last_notified_at)
                for row in session.scalars(statement.limit(query.limit))
            ]

    def last_change(self) -> int:
        """The id of the newest alert transition (0: none yet): where a change feed starts."""
        with self.session() as session:
            newest = session.execute(select(func.max(TransitionRow.id))).scalar_one_or_none()
            return int(newest or 0)

    def alert_changes(self, after: int, query: AlertQuery) -> list[ChangedAlert]:
        """Alerts that changed since transition ``after``, oldest change first: each alert
        once, as it is now, with the id of its newest transition (the feed's next cursor).

        ``query`` narrows them as ``alerts`` does (its ``since``/``until`` and ``limit``
        too: at most ``limit`` transitions are read per call, so a long gap is paged)."""
        statement = _filtered(
            select(TransitionRow.id, AlertRow)
            .join(AlertRow, TransitionRow.alert_id == AlertRow.id)
            .where(TransitionRow.id > after)
            .order_by(TransitionRow.id),
            query,
        ).limit(query.limit)
        with self.session() as session:
            newest: dict[int, ChangedAlert] = {}
            for change_id, row in session.execute(statement):
                stored = StoredAlert(
                    row.id, _alert(row), Manager(row.manager), row.last_notified_at
                )
                # an alert changed twice in the page is sent once, at its newest change
                newest.pop(row.id, None)
                newest[row.id] = ChangedAlert(int(change_id), stored)
            return list(newest.values())

    def alert(self, alert_id: int) -> StoredAlert | None:
        with self.session() as session:
            row = session.get(AlertRow, alert_id)
            if row is None:
                return None
            return StoredAlert(row.id, _alert(row), Manager(row.manager), row.last_notified_at)

    def alert_guardians(self, alert_id: int) -> set[str]:
        with self.session() as session:
            return set(
                session.scalars(
                    select(AlertGuardianRow.guardian).where(AlertGuardianRow.alert_id == alert_id)
                )
            )

    def notices(
        self,
        *,
        tenant: str | None = None,
        guardian: str | None = None,
        sites: frozenset[str] | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[StoredNotice]:
        statement = select(NoticeRow).order_by(NoticeRow.ts.desc(), NoticeRow.id.desc())
        if tenant is not None:
            statement = statement.where(NoticeRow.tenant == tenant)
        if kind is not None:
            statement = statement.where(NoticeRow.kind == kind)
        if guardian is not None:
            statement = statement.join(
                NoticeGuardianRow, NoticeGuardianRow.notice_id == NoticeRow.id
            ).where(NoticeGuardianRow.guardian == guardian)
        if sites is not None:
            statement = statement.where(NoticeRow.site.in_(sorted(sites)))
        with self.session() as session:
            return [
                StoredNotice(row.id, _notice(row))
                for row in session.scalars(statement.limit(limit))
            ]

    def add_action(
        self, tenant: str, kind: str, fingerprint: str, by: str, reason: str, now: datetime
    ) -> Action:
        with self.session(bump=True) as session:
            row = ActionRow(
                tenant=tenant,
                kind=kind,
                fingerprint=fingerprint,
                by=by[:200],
                reason=_short(reason),
                created_at=now,
                state=ActionState.PENDING.value,
                result=None,
                done_at=None,
            )
            session.add(row)
            session.flush()
            return _action(row)

    def action(self, action_id: int) -> Action | None:
        with self.session() as session:
            row = session.get(ActionRow, action_id)
            return _action(row) if row is not None else None

    def add_silence(
        self,
        tenant: str,
        matchers: dict[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
        now: datetime,
    ) -> Silence:
        silence_id = f"sil_{secrets.token_hex(8)}"
        with self.session(bump=True) as session:
            row = SilenceRow(
                id=silence_id,
                tenant=tenant,
                matchers=_dumps(matchers),
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=created_by[:200],
                comment=_short(comment),
                created_at=now,
            )
            session.add(row)
            return _silence(row)

    def expire_silence(self, silence_id: str, now: datetime) -> Silence | None:
        with self.session(bump=True) as session:
            row = session.get(SilenceRow, silence_id)
            if row is None:
                return None
            if row.ends_at > now:
                row.ends_at = max(now, row.starts_at)
            return _silence(row)

    def silence(self, silence_id: str) -> Silence | None:
        with self.session() as session:
            row = session.get(SilenceRow, silence_id)
            return _silence(row) if row is not None else None

    def add_subscription(
        self,
        tenant: str,
        owner: Owner,
        url: str,
        *,
        sites: frozenset[str] = frozenset(),
        guardian: str | None = None,
        filter: SubscriptionFilter | None = None,
        description: str = "",
        created_by: str = "",
        secret: str | None = None,
        now: datetime,
    ) -> Subscription:
        """A new subscription; its secret is ``whsec_`` + 32 random bytes unless given."""
        subscription_id = f"sub_{secrets.token_hex(10)}"
        chosen = secret or new_secret()
        with self.session(bump=True) as session:
            row = SubscriptionRow(
                id=subscription_id,
                tenant=tenant,
                owner=owner.value,
                sites=_dumps(sorted(sites)),
                guardian=guardian,
                url=url,
                secret=chosen,
                filter=(filter or SubscriptionFilter()).model_dump_json(),
                description=description[:200],
                created_at=now,
                created_by=created_by[:200],
                enabled=True,
            )
            session.add(row)
            return _subscription(row)

    def delete_subscription(self, subscription_id: str) -> bool:
        """Remove a subscription; its pending deliveries go with it (nobody to send them to)."""
        with self.session(bump=True) as session:
            row = session.get(SubscriptionRow, subscription_id)
            if row is None:
                return False
            session.execute(
                delete(OutboxRow).where(
                    OutboxRow.subscription_id == subscription_id,
                    or_(
                        OutboxRow.state == DeliveryState.PENDING.value,
                        OutboxRow.state == DeliveryState.DEAD.value,
                    ),
                )
            )
            session.delete(row)
            return True


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def notice_key(notice: NoticeOut) -> str:
    return hashlib.sha256(notice.key.encode()).hexdigest()[:40]


def retry_delay(attempts: int, base_s: float, max_s: float, jitter: float) -> timedelta:
    """Exponential backoff with jitter: ``jitter`` in [0, 1) scales the upper half away.

    ``attempts`` failed so far (1 after the first failure): base, 2·base, 4·base…
    capped at ``max_s``, each drawn from [½, 1] of that (so retries of many
    deliveries that failed together spread out instead of arriving together).
    """
    ceiling = min(max_s, base_s * (2 ** max(0, attempts - 1)))
    return timedelta(seconds=ceiling * (0.5 + 0.5 * jitter))


__all__ = [
    "Action",
    "ActionState",
    "AlertQuery",
    "AlertsDatabase",
    "DatabaseUnavailable",
    "DeliveryState",
    "OutboxItem",
    "StoredAlert",
    "StoredNotice",
    "new_secret",
    "retry_delay",
]
