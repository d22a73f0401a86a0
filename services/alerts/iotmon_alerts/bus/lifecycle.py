"""Alerts from firing to resolution: who is told, reminders, escalation, repeats, and
closing; every step a notification with the alert's fingerprint."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from iotmon_alerts.bus.fleet import Bus, Child, Fleet
from iotmon_alerts.bus.notifications import (
    Evidence,
    Notification,
    NotificationKind,
    NotificationState,
    Reason,
    Recipient,
    RecipientRole,
)
from iotmon_alerts.bus.rules import BusRules
from iotmon_alerts.bus.state import Alert
from iotmon_contract.alerts import AlertSeverity

_ROLE_ORDER = {
    RecipientRole.DRIVER: 0,
    RecipientRole.OPERATOR: 1,
    RecipientRole.SCHOOL: 2,
    RecipientRole.GUARDIAN: 3,
}


class UnknownAlert(KeyError):
    """An acknowledgement for a fingerprint the core does not know (or forgot)."""


def _sorted(recipients: set[Recipient]) -> tuple[Recipient, ...]:
    return tuple(sorted(recipients, key=lambda r: (_ROLE_ORDER[r.role], r.id)))


class Lifecycle:
    """The alerts of one fleet: raised by the engine, moved on by time and by people."""

    def __init__(self, fleet: Fleet, rules: BusRules, stats: Counter[str]) -> None:
        self._fleet = fleet
        self._rules = rules
        self._stats = stats
        self._alerts: dict[str, Alert] = {}
        self._open: dict[str, Alert] = {}

    def get(self, fingerprint: str) -> Alert:
        alert = self._alerts.get(fingerprint)
        if alert is None:
            raise UnknownAlert(fingerprint)
        return alert

    def forget(self, alert: Alert) -> None:
        self._alerts.pop(alert.fingerprint, None)

    # -- recipients -------------------------------------------------------------------

    def crew(self, bus: Bus) -> list[Recipient]:
        return [
            Recipient(RecipientRole.DRIVER, bus.driver),
            Recipient(RecipientRole.OPERATOR, self._fleet.operator),
        ]

    @staticmethod
    def guardians(child: Child | None) -> list[Recipient]:
        """All of the child's guardians, and nobody else's."""
        if child is None:
            return []
        return [Recipient(RecipientRole.GUARDIAN, g) for g in child.guardians]

    def everyone(self, bus: Bus, alert: Alert) -> list[Recipient]:
        return [
            *self.crew(bus),
            Recipient(RecipientRole.SCHOOL, alert.school),
            *self.guardians(alert.child),
        ]

    @staticmethod
    def sorted(recipients: set[Recipient]) -> tuple[Recipient, ...]:
        return _sorted(recipients)

    # -- steps ------------------------------------------------------------------------

    def raise_at_run_end(
        self, alert: Alert, evidence: Evidence, now: datetime, out: list[Notification]
    ) -> None:
        """Seen: everybody at once, repeating. Counted-only: driver and operator, asking
        for a walk-through. An unknown tag: driver, operator and school, never guardians."""
        bus = self._fleet.buses[alert.bus]
        repeat = now + timedelta(seconds=self._rules.repeat_s)
        if alert.kind is NotificationKind.UNKNOWN_TAG:
            seen = evidence is Evidence.SEEN
            alert.severity = AlertSeverity.CRITICAL if seen else AlertSeverity.WARNING
            recipients = [*self.crew(bus), Recipient(RecipientRole.SCHOOL, alert.school)]
            alert.escalated, alert.next_repeat = True, repeat
        elif evidence is Evidence.SEEN:
            recipients = self.everyone(bus, alert)
            alert.escalated, alert.next_repeat = True, repeat
        else:
            recipients = self.crew(bus)
        self._stats[f"alerts_{alert.kind.value}_{evidence.value}"] += 1
        self.fire(alert, recipients, Reason.RUN_END, now, out)

    def upgrade(self, alert: Alert, now: datetime, out: list[Notification]) -> None:
        """Counted-only becomes seen: everybody, at once."""
        alert.evidence = Evidence.SEEN
        alert.escalated = True
        alert.next_repeat = now + timedelta(seconds=self._rules.repeat_s)
        if alert.kind is NotificationKind.UNKNOWN_TAG:
            alert.severity = AlertSeverity.CRITICAL
            recipients = set(alert.notified)
        else:
            recipients = set(self.everyone(self._fleet.buses[alert.bus], alert))
        self.emit(alert, NotificationState.ESCALATED, recipients, Reason.SEEN, now, out)

    def fire(
        self,
        alert: Alert,
        recipients: list[Recipient],
        reason: Reason,
        now: datetime,
        out: list[Notification],
    ) -> None:
        self._alerts[alert.fingerprint] = alert
        self._open[alert.fingerprint] = alert
        self.emit(alert, NotificationState.FIRING, set(recipients), reason, now, out)

    def close(
        self,
        alert: Alert,
        state: NotificationState,
        reason: Reason,
        now: datetime,
        out: list[Notification],
        *,
        by: str | None = None,
        note: str | None = None,
    ) -> None:
        """Acknowledged or resolved: everybody who was told is told it is over."""
        self._open.pop(alert.fingerprint, None)
        self.emit(alert, state, set(alert.notified), reason, now, out, by=by, note=note)

    def emit(
        self,
        alert: Alert,
        state: NotificationState,
        recipients: set[Recipient],
        reason: Reason,
        now: datetime,
        out: list[Notification],
        *,
        by: str | None = None,
        note: str | None = None,
    ) -> None:
        alert.state = state
        alert.notified |= recipients
        out.append(
            Notification(
                time=now,
                kind=alert.kind,
                severity=alert.severity,
                bus=alert.bus,
                child_tag=alert.tag,
                recipients=_sorted(recipients),
                state=state,
                stop=alert.stop,
                event_time=alert.event_time,
                fingerprint=alert.fingerprint,
                tenant=self._fleet.tenant,
                reason=reason,
                child=alert.child.id if alert.child is not None else None,
                evidence=alert.evidence,
                run=alert.run.key if alert.run is not None else None,
                device=alert.device,
                acknowledged_by=by,
                note=note,
            )
        )

    # -- time -------------------------------------------------------------------------

    def next_deadline(self) -> datetime | None:
        dues = [due for alert in self._open.values() if (due := self._due(alert)) is not None]
        return min(dues) if dues else None

    def tick(self, now: datetime, out: list[Notification]) -> None:
        for alert in sorted(self._open.values(), key=lambda a: (a.fired_at, a.fingerprint)):
            due = self._due(alert)
            if due is not None and due <= now:
                self._advance(alert, now, out)

    def _due(self, alert: Alert) -> datetime | None:
        if alert.closed:
            return None
        if alert.escalated:
            return alert.next_repeat
        if alert.kind is not NotificationKind.CHILD_LEFT_ABOARD:
            return None
        escalate = alert.fired_at + timedelta(seconds=self._rules.guardian_delay_s)
        if not alert.reminded:
            remind = alert.fired_at + timedelta(seconds=self._rules.walkthrough_reminder_s)
            return min(remind, escalate)
        return escalate

    def _advance(self, alert: Alert, now: datetime, out: list[Notification]) -> None:
        if alert.escalated:
            assert alert.next_repeat is not None
            alert.next_repeat = max(
                alert.next_repeat + timedelta(seconds=self._rules.repeat_s), now
            )
            self.emit(
                alert, NotificationState.ESCALATED, set(alert.notified), Reason.REPEAT, now, out
            )
            return
        escalate = alert.fired_at + timedelta(seconds=self._rules.guardian_delay_s)
        if now >= escalate:
            alert.escalated = alert.reminded = True
            alert.next_repeat = now + timedelta(seconds=self._rules.repeat_s)
            recipients = set(alert.notified) | {Recipient(RecipientRole.SCHOOL, alert.school)}
            if not self._held(alert):
                recipients |= set(self.guardians(alert.child))
            else:
                self._stats["escalations_held_by_empty_cabin"] += 1
            self.emit(
                alert, NotificationState.ESCALATED, recipients, Reason.GUARDIAN_DELAY, now, out
            )
            return
        alert.reminded = True
        self.emit(
            alert,
            NotificationState.FIRING,
            set(alert.notified),
            Reason.WALKTHROUGH_REMINDER,
            now,
            out,
        )

    def _held(self, alert: Alert) -> bool:
        """A camera/radar saw nobody (and nothing saw anybody): keep it from the guardians."""
        run = alert.run
        return (
            self._rules.empty_cabin_holds_guardians
            and run is not None
            and bool(run.empty_reports)
            and run.people_max == 0
        )
