"""The alert domain in one object: inputs and ticks in, alert changes and deliveries out.

``AlertEngine`` holds every tenant's rules (stream evaluators, policy,
maintenance windows, bus engine), the active alerts, the silences and the
groups waiting to be sent. It does no I/O and reads no clock: each call gets
``now``. One thread owns it (the service's engine thread).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from iotmon_alerts.domain.bus_bridge import BusChannel, NotificationLike, to_alert_or_notice
from iotmon_alerts.domain.lifecycle import (
    AlertBook,
    AlertPolicy,
    Grouper,
    Manager,
    Muting,
    Silence,
    UnknownAlert,
    notice_delivery,
)
from iotmon_alerts.domain.model import (
    Alert,
    AlertChange,
    FaultIn,
    NoticeOut,
    Outcome,
    ReadingIn,
    StatusIn,
    Subject,
)
from iotmon_alerts.domain.rules import Evaluator, Signal, evaluator_for
from iotmon_alerts.rulefile import Policy, RuleBase, RuleFile
from iotmon_contract import ValidatedEvent

SiteOf = Callable[[str, str], str | None]
"""``site_of(tenant, device)``: the device's site, for the subject (facility scope)."""


@dataclass(slots=True)
class _TenantRules:
    file: RuleFile
    evaluators: dict[str, Evaluator] = field(default_factory=dict)
    bus: BusChannel | None = None

    def policy_of(self, rule: RuleBase) -> AlertPolicy:
        policy = self.file.policy
        return AlertPolicy(
            rule.repeat_interval_s or policy.repeat_interval_s,
            rule.escalate_after_s or policy.escalate_after_s,
        )


def _no_site(_tenant: str, _device: str) -> str | None:
    return None


class AlertEngine:
    def __init__(self, site_of: SiteOf = _no_site) -> None:
        self._site_of = site_of
        self._tenants: dict[str, _TenantRules] = {}
        self._book = AlertBook()
        self._grouper = Grouper()
        self._silences: tuple[Silence, ...] = ()
        self._muting = Muting()

    # -- configuration ---------------------------------------------------------------

    @property
    def tenants(self) -> list[str]:
        return sorted(self._tenants)

    def rule_file(self, tenant: str) -> RuleFile | None:
        found = self._tenants.get(tenant)
        return found.file if found is not None else None

    def bus_channel(self, tenant: str) -> BusChannel | None:
        found = self._tenants.get(tenant)
        return found.bus if found is not None else None

    def set_rules(self, file: RuleFile, now: datetime, *, bus: BusChannel | None = None) -> Outcome:
        """Install (or replace) a tenant's rules; unchanged rules keep their state.

        Alerts of rules that are gone resolve.
        """
        tenant = file.tenant
        old = self._tenants.get(tenant)
        rules = _TenantRules(file, bus=bus)
        for rule in file.rules:
            kept = old.evaluators.get(rule.name) if old is not None else None
            rules.evaluators[rule.name] = (
                kept if kept is not None and kept.rule == rule else evaluator_for(tenant, rule)
            )
        self._tenants[tenant] = rules
        self._update_muting()
        outcome = Outcome()
        if old is not None:
            for name in set(old.evaluators) - set(rules.evaluators):
                self._take(outcome, self._book.resolve_rule(tenant, name, self._muting, now), now)
        return outcome

    def remove_tenant(self, tenant: str, now: datetime) -> Outcome:
        old = self._tenants.pop(tenant, None)
        self._update_muting()
        outcome = Outcome()
        if old is not None:
            for name in old.evaluators:
                self._take(outcome, self._book.resolve_rule(tenant, name, self._muting, now), now)
        return outcome

    def set_silences(self, silences: Iterable[Silence]) -> None:
        self._silences = tuple(silences)
        self._update_muting()

    def _update_muting(self) -> None:
        self._muting = Muting(
            self._silences, {t: tuple(r.file.maintenance) for t, r in self._tenants.items()}
        )

    def restore(self, alerts: Iterable[tuple[Alert, Manager, datetime | None]]) -> None:
        """The active alerts a previous run left in the database."""
        restored = []
        for alert, manager, notified in alerts:
            tenant = self._tenants.get(alert.tenant)
            rule = None
            if tenant is not None:
                rule = next((r for r in tenant.file.rules if r.name == alert.rule), None)
            policy = (
                tenant.policy_of(rule)
                if tenant is not None and rule is not None
                else AlertPolicy(None, None)
            )
            restored.append((alert, manager, policy, notified))
            evaluator = tenant.evaluators.get(alert.rule) if tenant is not None else None
            if manager is Manager.RULES and evaluator is not None and alert.subject.device:
                evaluator.adopt(alert.subject.device, alert.details, alert.starts_at)
        self._book.restore(restored)

    def manager_of(self, fingerprint: str) -> Manager | None:
        return self._book.manager(fingerprint)

    @property
    def active_alerts(self) -> list[Alert]:
        return self._book.active()

    # -- inputs ----------------------------------------------------------------------

    def _subject(self, tenant: str, device: str) -> Subject:
        return Subject(device=device, site=self._site_of(tenant, device))

    def _signals(self, tenant: str, signals: list[Signal], now: datetime) -> Outcome:
        outcome = Outcome()
        rules = self._tenants.get(tenant)
        if rules is None or not signals:
            return outcome
        for signal in signals:
            evaluator = rules.evaluators.get(signal.rule)
            if evaluator is None:
                continue
            changes = self._book.signal(
                tenant,
                signal,
                self._subject(tenant, signal.device),
                rules.policy_of(evaluator.rule),
                self._muting,
                now,
            )
            self._take(outcome, changes, now)
        return outcome

    def _take(self, outcome: Outcome, changes: Sequence[AlertChange], now: datetime) -> None:
        for change in changes:
            outcome.changes.append(change)
            if not change.notify:
                continue
            rules = self._tenants.get(change.alert.tenant)
            policy = rules.file.policy if rules is not None else Policy()
            outcome.deliveries.extend(
                self._grouper.add(change, policy.group_by, policy.group_wait_s, now)
            )

    def reading(self, reading: ReadingIn, now: datetime) -> Outcome:
        rules = self._tenants.get(reading.tenant)
        if rules is None:
            return Outcome()
        signals = [s for e in rules.evaluators.values() for s in e.on_reading(reading, now)]
        return self._signals(reading.tenant, signals, now)

    def status(self, status: StatusIn, now: datetime) -> Outcome:
        rules = self._tenants.get(status.tenant)
        if rules is None:
            return Outcome()
        signals = [s for e in rules.evaluators.values() for s in e.on_status(status, now)]
        outcome = self._signals(status.tenant, signals, now)
        channel = rules.bus
        if channel is not None and channel.to_bus_status is not None:
            bus_event = channel.to_bus_status(status)
            if bus_event is not None:
                decided = channel.engine.handle(bus_event, now)
                outcome.extend(self._bus_notifications(status.tenant, channel, decided, now))
        return outcome

    def fault(self, fault: FaultIn, now: datetime) -> Outcome:
        rules = self._tenants.get(fault.tenant)
        if rules is None:
            return Outcome()
        signals = [s for e in rules.evaluators.values() for s in e.on_fault(fault, now)]
        return self._signals(fault.tenant, signals, now)

    def bus_event(self, event: ValidatedEvent, now: datetime) -> Outcome:
        """A device event for the tenant's bus rules (ignored when it has none)."""
        rules = self._tenants.get(event.tenant)
        if rules is None or rules.bus is None:
            return Outcome()
        bus_event = rules.bus.to_bus_event(event)
        if bus_event is None:
            return Outcome()
        return self._bus_notifications(
            event.tenant, rules.bus, rules.bus.engine.handle(bus_event, now), now
        )

    def _bus_notifications(
        self,
        tenant: str,
        channel: BusChannel,
        notifications: Sequence[NotificationLike],
        now: datetime,
    ) -> Outcome:
        outcome = Outcome(journal=channel.engine.take_journal())
        for notification in notifications:
            decided = to_alert_or_notice(tenant, notification, channel.child_of_tag)
            if isinstance(decided, NoticeOut):
                self._notice(outcome, decided, now)
                continue
            change = self._book.record(decided, self._muting, now)
            if change is not None:
                self._take(outcome, [change], now)
        return outcome

    def _notice(self, outcome: Outcome, notice: NoticeOut, now: datetime) -> None:
        outcome.notices.append(notice)
        muted = self._muting.muted_by(notice.tenant, notice.labels(), now)
        if muted is None:
            outcome.deliveries.append(notice_delivery(notice))

    def tick(self, now: datetime) -> Outcome:
        outcome = Outcome()
        for tenant, rules in self._tenants.items():
            signals = [s for e in rules.evaluators.values() for s in e.on_tick(now)]
            outcome.extend(self._signals(tenant, signals, now))
            if rules.bus is not None:
                outcome.extend(
                    self._bus_notifications(tenant, rules.bus, rules.bus.engine.advance(now), now)
                )
        self._take(outcome, self._book.tick(self._muting, now), now)
        outcome.deliveries.extend(self._grouper.flush(now))
        return outcome

    def flush(self, now: datetime) -> Outcome:
        """Send every waiting group now (on shutdown: a group never waits for a restart)."""
        return Outcome(deliveries=self._grouper.flush(now, everything=True))

    def acknowledge(
        self, tenant: str, fingerprint: str, by: str, reason: str, now: datetime
    ) -> Outcome:
        """An operator's acknowledgement; UnknownAlert when it is not an active alert."""
        alert = self._book.get(fingerprint)
        if alert is None or alert.tenant != tenant:
            raise UnknownAlert(f"tenant {tenant!r} has no active alert {fingerprint}")
        outcome = Outcome()
        rules = self._tenants.get(tenant)
        channel = rules.bus if rules is not None else None
        if self._book.manager(fingerprint) is Manager.BUS and channel is not None:
            # What was due before the acknowledgement is decided first, and kept even
            # when the bus rules refuse it.
            due = channel.engine.advance(now)
            outcome.extend(self._bus_notifications(tenant, channel, due, now))
            try:
                by_reason = channel.engine.acknowledge(fingerprint, by, reason, now)
            except UnknownAlert:
                # The bus rules forgot it (its run is older than their journal, or the
                # fleet changed): the alert is closed here, with everyone told as usual.
                pass
            else:
                outcome.extend(self._bus_notifications(tenant, channel, by_reason, now))
                return outcome
        self._take(outcome, self._book.acknowledge(fingerprint, by, reason, self._muting, now), now)
        return outcome
