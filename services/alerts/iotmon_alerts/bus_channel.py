"""The school-bus rules for the alert service: a tenant's rule-file ``bus`` section (a fleet
file and settings) as a ``BusChannel`` around a ``BusSafetyEngine``.

The service finds this module by name (``service.default_bus_factory``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from iotmon_alerts.bus import BusEvent, BusRules, BusSafetyEngine, Fleet, Notification, load_fleet
from iotmon_alerts.bus import UnknownAlert as BusUnknownAlert
from iotmon_alerts.bus.journal import JournalEntry, JournalError, decode, encode
from iotmon_alerts.bus.timeline import Timeline
from iotmon_alerts.domain.bus_bridge import BusChannel, Rebuilt
from iotmon_alerts.domain.lifecycle import UnknownAlert
from iotmon_alerts.domain.model import JournalRecord, StatusIn
from iotmon_alerts.rulefile import BusSection
from iotmon_contract.payloads import DeviceState
from iotmon_contract.validation import ValidatedEvent
from iotmon_runtime.config_files import ConfigError

logger = logging.getLogger(__name__)


def bus_rules(settings: dict[str, object], source: str) -> BusRules:
    """``bus.settings`` as BusRules; ConfigError naming each bad key."""
    try:
        return BusRules.model_validate(settings)
    except ValidationError as exc:
        problems = [
            f"{source}: bus.settings.{'.'.join(map(str, e['loc'])) or '<all>'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ConfigError("\n".join(problems)) from None


class _Adapter:
    """Contract messages of one tenant's fleet as the engine's inputs."""

    def __init__(self, fleet: Fleet) -> None:
        self._fleet = fleet

    def event(self, event: ValidatedEvent) -> BusEvent | None:
        if event.tenant != self._fleet.tenant or event.device not in self._fleet.devices:
            return None
        return BusEvent(event.tenant, event.device, event.event.ts, event.event)

    def status(self, status: StatusIn) -> BusEvent | None:
        if status.tenant != self._fleet.tenant or status.device not in self._fleet.devices:
            return None
        state = DeviceState.ONLINE if status.online else DeviceState.OFFLINE
        return BusEvent(status.tenant, status.device, status.ts, state)

    def child_of_tag(self, tag: str) -> str | None:
        child = self._fleet.tags.get(tag)
        return child.id if child is not None else None


class BusRulesOnTimeline:
    """A tenant's core on its timeline, speaking the domain's terms (``BusEngineLike``):
    journal entries as ``JournalRecord`` lines, the domain's ``UnknownAlert``."""

    def __init__(self, tenant: str, timeline: Timeline) -> None:
        self._tenant = tenant
        self._timeline = timeline

    @property
    def timeline(self) -> Timeline:
        return self._timeline

    def handle(self, event: BusEvent, now: datetime) -> list[Notification]:
        return self._timeline.handle(event, now)

    def advance(self, until: datetime) -> list[Notification]:
        return self._timeline.advance(until)

    def acknowledge(
        self, fingerprint: str, by: str, reason: str, now: datetime
    ) -> list[Notification]:
        try:
            return self._timeline.acknowledge(fingerprint, by, reason, now)
        except BusUnknownAlert:
            raise UnknownAlert(f"the bus rules know no alert {fingerprint}") from None

    def take_journal(self) -> list[JournalRecord]:
        for error in self._timeline.take_errors():
            logger.error("bus rules of tenant %s: %s", self._tenant, error)
        return [self._record(entry) for entry in self._timeline.take_journal()]

    def _record(self, entry: JournalEntry) -> JournalRecord:
        return JournalRecord(self._tenant, entry.at, entry.kind.value, encode(entry))

    def rebuild(self, records: Iterable[JournalRecord]) -> Rebuilt:
        entries: list[JournalEntry] = []
        unreadable = 0
        for record in records:
            try:
                entries.append(decode(record.line))
            except JournalError as exc:
                unreadable += 1
                if unreadable <= 10:
                    logger.warning("bus journal of %s: line refused: %s", self._tenant, exc)
        report = self._timeline.rebuild(entries)
        self._timeline.take_errors()
        return Rebuilt(report.entries, unreadable, report.notifications, report.refused)


def bus_channel(tenant: str, section: BusSection, folder: Path) -> BusChannel:
    """A tenant's bus engine from its rule file's ``bus`` section; ConfigError if the fleet
    file or the settings are bad, or the fleet is another tenant's."""
    path = section.fleet if section.fleet.is_absolute() else folder / section.fleet
    fleet = load_fleet(path)
    if fleet.tenant != tenant:
        raise ConfigError(f"{path}: tenant: {fleet.tenant!r} is not this rule file's {tenant!r}")
    rules = bus_rules(section.settings, f"{folder / tenant}.yaml")
    adapter = _Adapter(fleet)
    return BusChannel(
        engine=BusRulesOnTimeline(tenant, Timeline(BusSafetyEngine(fleet, rules))),
        to_bus_event=adapter.event,
        child_of_tag=adapter.child_of_tag,
        to_bus_status=adapter.status,
    )
