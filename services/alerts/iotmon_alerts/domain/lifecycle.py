"""The alert lifecycle, as Alertmanager has it: firing → (escalated) → acknowledged → resolved.

``AlertBook`` keeps the active alerts by fingerprint: a condition that keeps
firing is one alert (de-duplication), reminded every repeat interval and
escalated when nobody acknowledged it in time. ``Muting`` (silences and
maintenance windows) holds notifications back without hiding the alert; once
the mute ends, an alert still active whose state nobody was told gets sent.
``Grouper`` gathers the changes of one group (same values of ``group_by``)
for ``group_wait`` into one delivery.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

from iotmon_alerts.domain.model import Alert, AlertChange, Delivery, NoticeOut, Subject
from iotmon_alerts.domain.rules import Signal
from iotmon_alerts.rulefile import MaintenanceWindow, Weekday
from iotmon_contract import AlertSeverity, AlertState

_WEEKDAYS = list(Weekday)


class UnknownAlert(LookupError):
    """An acknowledgement for a fingerprint that is not active (resolved, or never was)."""


class Manager(StrEnum):
    """Who drives an alert's state: the stream rules here, or the bus rules' own engine."""

    RULES = "rules"
    BUS = "bus"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    repeat_interval_s: float | None
    escalate_after_s: float | None


@dataclass(frozen=True, slots=True)
class Silence:
    """Notifications of matching alerts are held back from ``starts_at`` to ``ends_at``."""

    id: str
    tenant: str
    matchers: Mapping[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str = ""
    comment: str = ""

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def labels_match(matchers: Mapping[Any, str], labels: Mapping[str, str]) -> bool:
    """Every matcher's label is present and matches its pattern (no matchers: everything)."""
    return all(
        name in labels and fnmatchcase(labels[name], pattern) for name, pattern in matchers.items()
    )


def window_open(window: MaintenanceWindow, now: datetime) -> bool:
    if window.start is not None and window.end is not None:
        return window.start <= now < window.end
    assert window.days is not None
    assert window.from_time is not None
    assert window.until is not None
    utc = now.astimezone(UTC)
    moment = utc.time().replace(tzinfo=None)
    start, end = window.from_time.replace(tzinfo=None), window.until.replace(tzinfo=None)
    today = _WEEKDAYS[utc.weekday()]
    if start <= end:
        return today in window.days and start <= moment < end
    # Crosses midnight: the evening of a listed day, or the morning after one.
    yesterday = _WEEKDAYS[(utc.weekday() - 1) % 7]
    return (today in window.days and moment >= start) or (yesterday in window.days and moment < end)


@dataclass(frozen=True, slots=True)
class Muting:
    """Silences (from the API) and maintenance windows (from rule files), per tenant."""

    silences: Sequence[Silence] = ()
    windows: Mapping[str, Sequence[MaintenanceWindow]] = field(default_factory=dict)

    def muted_by(self, tenant: str, labels: Mapping[str, str], now: datetime) -> str | None:
        """Why a notification is held back (``silence:<id>``, ``maintenance:<name>``), or None."""
        for silence in self.silences:
            if (
                silence.tenant == tenant
                and silence.active(now)
                and labels_match(silence.matchers, labels)
            ):
                return f"silence:{silence.id}"
        for window in self.windows.get(tenant, ()):
            if window_open(window, now) and labels_match(window.matchers, labels):
                return f"maintenance:{window.name}"
        return None


@dataclass(slots=True)
class _Entry:
    alert: Alert
    manager: Manager
    policy: AlertPolicy
    notified_state: AlertState | None
    last_notified: datetime | None


class AlertBook:
    """The active alerts, by fingerprint."""

    def __init__(self) -> None:
        self._active: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._active)

    def get(self, fingerprint: str) -> Alert | None:
        entry = self._active.get(fingerprint)
        return entry.alert if entry is not None else None

    def manager(self, fingerprint: str) -> Manager | None:
        entry = self._active.get(fingerprint)
        return entry.manager if entry is not None else None

    def active(self) -> list[Alert]:
        return [entry.alert for entry in self._active.values()]

    def restore(
        self, alerts: Iterable[tuple[Alert, Manager, AlertPolicy, datetime | None]]
    ) -> None:
        """Take back the active alerts a previous run left (after a restart).

        Their last notification time comes with them, so a restart neither repeats
        nor forgets a reminder.
        """
        for alert, manager, policy, notified in alerts:
            if alert.active:
                self._active[alert.fingerprint] = _Entry(
                    alert, manager, policy, alert.state if notified else None, notified
                )

    def _change(
        self, entry: _Entry, muting: Muting, now: datetime, *, repeat: bool = False
    ) -> AlertChange:
        alert = entry.alert
        muted = muting.muted_by(alert.tenant, alert.labels(), now)
        if muted is None:
            entry.notified_state = alert.state
            entry.last_notified = now
        return AlertChange(alert, notify=muted is None, repeat=repeat, muted_by=muted)

    def signal(
        self,
        tenant: str,
        signal: Signal,
        subject: Subject,
        policy: AlertPolicy,
        muting: Muting,
        now: datetime,
    ) -> list[AlertChange]:
        """A rule's verdict: a new alert, a resolved one, or nothing (a duplicate)."""
        entry = self._active.get(signal.fingerprint)
        if not signal.firing:
            if entry is None:
                return []
            del self._active[signal.fingerprint]
            entry.alert = replace(
                entry.alert,
                state=AlertState.RESOLVED,
                ts=now,
                summary=signal.summary,
                details={**entry.alert.details, **signal.details},
            )
            return [self._change(entry, muting, now)]
        if entry is not None:
            # The same condition again: the same alert, keep the newest evidence.
            entry.alert = replace(entry.alert, details={**entry.alert.details, **signal.details})
            return []
        alert = Alert(
            tenant=tenant,
            fingerprint=signal.fingerprint,
            rule=signal.rule,
            state=AlertState.FIRING,
            severity=signal.severity,
            subject=subject,
            summary=signal.summary,
            starts_at=now,
            ts=now,
            details=signal.details,
        )
        entry = _Entry(alert, Manager.RULES, policy, None, None)
        self._active[alert.fingerprint] = entry
        return [self._change(entry, muting, now)]

    def record(self, alert: Alert, muting: Muting, now: datetime) -> AlertChange | None:
        """An alert whose lifecycle another engine drives (the bus rules): keep and mute it.

        The same state twice (a duplicate decision) is recorded once.
        """
        entry = self._active.get(alert.fingerprint)
        if entry is not None:
            unchanged = entry.alert.state is alert.state and entry.alert.ts == alert.ts
            if unchanged:
                return None
            alert = replace(alert, starts_at=entry.alert.starts_at)
            entry.alert = alert
        else:
            if not alert.active:
                return None
            entry = _Entry(alert, Manager.BUS, AlertPolicy(None, None), None, None)
        if alert.active:
            self._active[alert.fingerprint] = entry
        else:
            self._active.pop(alert.fingerprint, None)
        return self._change(entry, muting, now)

    def acknowledge(
        self, fingerprint: str, by: str, reason: str, muting: Muting, now: datetime
    ) -> list[AlertChange]:
        """Stop reminders and escalation; the alert stays until its condition resolves."""
        entry = self._active.get(fingerprint)
        if entry is None:
            raise UnknownAlert(f"no active alert {fingerprint}")
        if entry.alert.state is AlertState.ACKNOWLEDGED:
            return []
        entry.alert = replace(
            entry.alert,
            state=AlertState.ACKNOWLEDGED,
            ts=now,
            acknowledged_by=by,
            ack_reason=reason,
        )
        return [self._change(entry, muting, now)]

    def resolve_rule(
        self, tenant: str, rule: str, muting: Muting, now: datetime
    ) -> list[AlertChange]:
        """Resolve every alert of a rule that no longer exists (its file changed)."""
        changes = []
        for fingerprint, entry in list(self._active.items()):
            alert = entry.alert
            if alert.tenant == tenant and alert.rule == rule and entry.manager is Manager.RULES:
                del self._active[fingerprint]
                entry.alert = replace(
                    alert,
                    state=AlertState.RESOLVED,
                    ts=now,
                    details={**alert.details, "resolved_because": "rule removed"},
                )
                changes.append(self._change(entry, muting, now))
        return changes

    def tick(self, muting: Muting, now: datetime) -> list[AlertChange]:
        """Escalations, reminders, and notifications a mute held back that may go now."""
        changes = []
        for entry in self._active.values():
            alert = entry.alert
            policy = entry.policy
            if entry.manager is Manager.RULES and alert.state is AlertState.FIRING:
                escalate = policy.escalate_after_s
                if escalate is not None and now - alert.starts_at >= timedelta(seconds=escalate):
                    entry.alert = replace(
                        alert,
                        state=AlertState.ESCALATED,
                        ts=now,
                        severity=AlertSeverity.CRITICAL,
                    )
                    changes.append(self._change(entry, muting, now))
                    continue
            if entry.notified_state is not entry.alert.state:
                if muting.muted_by(alert.tenant, alert.labels(), now) is None:
                    changes.append(self._change(entry, muting, now))
                continue
            repeat = policy.repeat_interval_s
            if (
                entry.manager is Manager.RULES
                and repeat is not None
                and alert.state in (AlertState.FIRING, AlertState.ESCALATED)
                and entry.last_notified is not None
                and now - entry.last_notified >= timedelta(seconds=repeat)
            ):
                change = self._change(entry, muting, now, repeat=True)
                if change.notify:
                    changes.append(change)
        return changes


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def change_key(change: AlertChange, now: datetime) -> str:
    """Identity of one notification of one alert: a repeat is a new one, a duplicate is not."""
    alert = change.alert
    moment = now if change.repeat else alert.ts
    return _digest(alert.fingerprint, alert.state.value, moment.isoformat())


@dataclass(slots=True)
class _Group:
    deadline: datetime
    alerts: dict[str, Alert]
    keys: list[str]


class Grouper:
    """Changes of one group within ``group_wait`` go out as one delivery."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, tuple[tuple[str, str], ...]], _Group] = {}

    def add(
        self,
        change: AlertChange,
        group_by: Sequence[str],
        group_wait_s: float,
        now: datetime,
    ) -> list[Delivery]:
        alert = change.alert
        labels = alert.labels()
        group = tuple((name, labels.get(name, "")) for name in group_by)
        key = change_key(change, now)
        if group_wait_s <= 0:
            return [Delivery(alert.tenant, dict(group), alerts=(alert,), key=key)]
        pending = self._pending.get((alert.tenant, group))
        if pending is None:
            deadline = now + timedelta(seconds=group_wait_s)
            pending = self._pending[(alert.tenant, group)] = _Group(deadline, {}, [])
        # The newest state of each alert in the group: a fire and resolve within the
        # wait send the resolved state only, as Alertmanager does.
        pending.alerts[alert.fingerprint] = alert
        pending.keys.append(key)
        return []

    def flush(self, now: datetime, *, everything: bool = False) -> list[Delivery]:
        due = [k for k, g in self._pending.items() if everything or g.deadline <= now]
        deliveries = []
        for tenant_group in due:
            pending = self._pending.pop(tenant_group)
            tenant, group = tenant_group
            deliveries.append(
                Delivery(
                    tenant,
                    dict(group),
                    alerts=tuple(pending.alerts.values()),
                    key=_digest(*pending.keys),
                )
            )
        return deliveries


def notice_delivery(notice: NoticeOut) -> Delivery:
    return Delivery(notice.tenant, {"kind": notice.kind}, notice=notice, key=_digest(notice.key))
