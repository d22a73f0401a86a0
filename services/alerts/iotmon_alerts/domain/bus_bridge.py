"""The school-bus rules' engine as the alert domain sees it: notifications in, alerts out.

The bus engine (``iotmon_alerts.bus``) drives its own lifecycle (escalation,
walk-through checks, clearing); this bridge maps each of its notifications to
an ``Alert`` (kinds with a lifecycle) or a ``NoticeOut`` (boarded, alighted,
bus empty), keeping the recipients it chose. Written against the engine's
interface only (``BusEngineLike``), so the alert service does not reach into it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from iotmon_alerts.domain.model import (
    Alert,
    JournalRecord,
    NoticeOut,
    Role,
    StatusIn,
    Subject,
    Target,
)
from iotmon_contract import AlertSeverity, AlertState, ValidatedEvent
from iotmon_contract.fields import OPAQUE_ID_PATTERN

NOTICE_KINDS = frozenset({"boarded", "alighted", "bus_empty"})
"""Kinds that are news, not conditions: delivered once, no lifecycle."""

_OPAQUE = re.compile(OPAQUE_ID_PATTERN)


class RecipientLike(Protocol):
    @property
    def role(self) -> str: ...

    @property
    def id(self) -> str: ...


class NotificationLike(Protocol):
    """What the bus engine decides (``iotmon_alerts.bus.Notification``)."""

    @property
    def time(self) -> datetime: ...

    @property
    def kind(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def bus(self) -> str: ...

    @property
    def child_tag(self) -> str | None: ...

    @property
    def recipients(self) -> Sequence[RecipientLike]: ...

    @property
    def state(self) -> str: ...

    @property
    def stop(self) -> str | None: ...

    @property
    def event_time(self) -> datetime | None: ...

    @property
    def fingerprint(self) -> str: ...

    @property
    def acknowledged_by(self) -> str | None: ...

    @property
    def note(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Rebuilt:
    """What rebuilding the bus rules from their journal took."""

    entries: int
    unreadable: int
    """Journal lines that could not be read (another format version, damaged)."""
    notifications: int
    """Decided again while rebuilding: told before, so not told again."""
    refused: int


class BusEngineLike(Protocol):
    """The bus rules on their timeline (``iotmon_alerts.bus_channel``): pure, time injected.

    Time only moves forward: ``advance`` ticks what is due up to ``until``, and an input
    stamped before the last tick is taken at that tick.
    """

    def handle(self, event: Any, now: datetime) -> Sequence[NotificationLike]: ...

    def advance(self, until: datetime) -> Sequence[NotificationLike]: ...

    def acknowledge(
        self, fingerprint: str, by: str, reason: str, now: datetime
    ) -> Sequence[NotificationLike]:
        """Raises ``UnknownAlert`` (the domain's) for an alert the bus rules do not know,
        ValueError without a reason."""
        ...

    def take_journal(self) -> list[JournalRecord]:
        """What the rules took since the last call, to keep with what it decided."""
        ...

    def rebuild(self, records: Iterable[JournalRecord]) -> Rebuilt:
        """Reach the state a journal describes (oldest first), telling nothing."""
        ...


@dataclass(frozen=True, slots=True)
class BusChannel:
    """One tenant's bus engine with what the bridge needs around it."""

    engine: BusEngineLike
    to_bus_event: Callable[[ValidatedEvent], Any | None]
    """A contract event as the engine's input, or None when it is not the bus rules' business."""
    child_of_tag: Callable[[str], str | None]
    """The child id a tag belongs to (for the subject and the guardians' scope)."""
    to_bus_status: Callable[[StatusIn], Any | None] | None = None
    """A device's availability as the engine's input (its readers' outages leave a run's
    occupancy unknown), or None when the device is not the bus rules' business."""


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def notification_record(notification: NotificationLike) -> dict[str, Any]:
    """The notification as ``iotmon bus replay`` writes it: the same fields, the same names."""
    return {
        "time": _iso(notification.time),
        "kind": str(notification.kind),
        "severity": str(notification.severity),
        "bus": notification.bus,
        "child_tag": notification.child_tag,
        "recipients": [{"role": str(r.role), "id": r.id} for r in notification.recipients],
        "state": str(notification.state),
        "stop": notification.stop,
        "event_time": _iso(notification.event_time),
    }


def _targets(notification: NotificationLike) -> tuple[Target, ...]:
    targets = []
    for recipient in notification.recipients:
        try:
            role = Role(str(recipient.role))
        except ValueError:
            continue
        targets.append(Target(role, recipient.id))
    return tuple(targets)


def _fingerprint(value: str) -> str:
    if _OPAQUE.match(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()[:20]


def _summary(notification: NotificationLike, child: str | None) -> str:
    who = child or notification.child_tag or "a child"
    kind = str(notification.kind)
    where = f" at stop {notification.stop}" if notification.stop else ""
    when = notification.event_time or notification.time
    clock = when.strftime("%H:%M")
    texts = {
        "boarded": f"{who} boarded {notification.bus}{where} at {clock}",
        "alighted": f"{who} alighted from {notification.bus}{where} at {clock}",
        "child_left_aboard": f"{who} may still be aboard {notification.bus} after the run ended",
        "occupancy_unknown": f"occupancy of {notification.bus} unknown: a reader was not online",
        "reader_offline": f"a reader of {notification.bus} is offline",
        "bus_empty": f"{notification.bus} is empty after the run",
        "unknown_tag": f"unknown tag {notification.child_tag} counted aboard {notification.bus}",
    }
    text = texts.get(kind, f"{kind} on {notification.bus}")
    state = str(notification.state)
    if kind not in NOTICE_KINDS and state != AlertState.FIRING.value:
        text = f"{text} ({state})"
    return text[:500]


def to_alert_or_notice(
    tenant: str, notification: NotificationLike, child_of_tag: Callable[[str], str | None]
) -> Alert | NoticeOut:
    tag = notification.child_tag
    child = child_of_tag(tag) if tag else None
    subject = Subject(bus=notification.bus, child=child)
    record = notification_record(notification)
    kind = str(notification.kind)
    summary = _summary(notification, child)
    if kind in NOTICE_KINDS:
        key = "\x1f".join(
            (str(notification.fingerprint), kind, str(notification.state), record["time"] or "")
        )
        return NoticeOut(
            tenant=tenant,
            kind=kind,
            key=key,
            ts=notification.time,
            subject=subject,
            summary=summary,
            data={"notification": record},
            targets=_targets(notification),
        )
    try:
        severity = AlertSeverity(str(notification.severity))
    except ValueError:
        severity = AlertSeverity.WARNING
    state = AlertState(str(notification.state))
    acknowledged = state is AlertState.ACKNOWLEDGED
    return Alert(
        tenant=tenant,
        fingerprint=_fingerprint(str(notification.fingerprint)),
        rule=kind,
        state=state,
        severity=severity,
        subject=subject,
        summary=summary,
        starts_at=notification.time,
        ts=notification.time,
        details={"notification": record},
        targets=_targets(notification),
        acknowledged_by=notification.acknowledged_by if acknowledged else None,
        ack_reason=notification.note if acknowledged else None,
        # the bus rules' acknowledgement ends the alert: nothing resolves it afterwards
        closed=acknowledged,
    )
