"""The school-bus rules for the alert service: a tenant's rule-file ``bus`` section (a fleet
file and settings) as a ``BusChannel`` around a ``BusSafetyEngine``.

The service finds this module by name (``service.default_bus_factory``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from iotmon_alerts.bus import BusEvent, BusRules, BusSafetyEngine, Fleet, load_fleet
from iotmon_alerts.domain.bus_bridge import BusChannel
from iotmon_alerts.domain.model import StatusIn
from iotmon_alerts.rulefile import BusSection
from iotmon_contract.payloads import DeviceState
from iotmon_contract.validation import ValidatedEvent
from iotmon_runtime.config_files import ConfigError


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
        engine=BusSafetyEngine(fleet, rules),
        to_bus_event=adapter.event,
        child_of_tag=adapter.child_of_tag,
        to_bus_status=adapter.status,
    )
