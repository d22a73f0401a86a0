"""The bus rules inside the alert service: a rule file's ``bus`` section becomes a channel
around the core, and the domain engine feeds it events and device availability."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from iotmon_alerts.bus import BusEvent
from iotmon_alerts.domain.engine import AlertEngine
from iotmon_alerts.domain.lifecycle import Manager
from iotmon_alerts.domain.model import Outcome, StatusIn
from iotmon_alerts.rules_loader import load_file
from iotmon_alerts.service import default_bus_factory
from iotmon_contract.payloads import DeviceState
from iotmon_contract.validation import ValidatedEvent, to_ns
from iotmon_runtime.config_files import ConfigError
from tests.utils.bus import FLEET_YAML, Day, at

RULES = """\
tenant: demo
bus:
  fleet: fleet.yaml
  settings: {guardian_delay_s: 300}
"""


def _folder(tmp_path: Path, rules: str = RULES, fleet: str = FLEET_YAML) -> Path:
    (tmp_path / "fleet.yaml").write_text(fleet)
    (tmp_path / "demo.yaml").write_text(rules)
    return tmp_path / "demo.yaml"


def test_the_service_finds_the_bus_rules_and_builds_a_channel(tmp_path: Path) -> None:
    factory = default_bus_factory()
    assert factory is not None
    loaded = load_file(_folder(tmp_path), factory)
    channel = loaded.bus
    assert channel is not None
    assert channel.child_of_tag("TAG-BEN") == "ben"
    assert channel.child_of_tag("VISITOR-1") is None
    day = Day()
    day.door(300, "bus-1", "TAG-ANN", "in")
    day.event(300, "gw-9", {"type": "walkthrough_check"})
    door, stranger = day.items()
    assert door.event is not None
    assert stranger.event is not None
    validated = _validated(door.event)
    bus_event = channel.to_bus_event(validated)
    assert isinstance(bus_event, BusEvent)
    assert (bus_event.device, bus_event.ts) == ("bus-1-door", door.event.ts)
    assert channel.to_bus_event(_validated(stranger.event)) is None
    assert channel.to_bus_status is not None
    status = channel.to_bus_status(StatusIn("demo", "bus-1-cabin", False, at(5)))
    assert isinstance(status, BusEvent)
    assert status.payload is DeviceState.OFFLINE


def _validated(event: BusEvent) -> ValidatedEvent:
    payload = event.payload
    assert not isinstance(payload, DeviceState)
    return ValidatedEvent(
        event.tenant, event.device, payload.type, payload.seq, to_ns(payload.ts), payload
    )


@pytest.mark.parametrize(
    ("rules", "fleet", "expected"),
    [
        (RULES.replace("300", "99999"), FLEET_YAML,
         "demo.yaml: bus.settings.guardian_delay_s: Input should be less than or equal to 7200"),
        (RULES, FLEET_YAML.replace("radius_m: 150", "radius_m: -1"),
         "fleet.yaml: depots.0.radius_m: Input should be greater than 0 (line 4)"),
        (RULES, FLEET_YAML.replace("tenant: demo", "tenant: acme"),
         "fleet.yaml: tenant: 'acme' is not this rule file's 'demo'"),
    ],
)  # fmt: skip
def test_a_bad_bus_section_names_the_file_and_key(
    tmp_path: Path, rules: str, fleet: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file(_folder(tmp_path, rules, fleet), default_bus_factory())
    assert expected in str(caught.value)


def test_the_domain_engine_passes_events_and_reader_outages_to_the_bus_rules(
    tmp_path: Path,
) -> None:
    loaded = load_file(_folder(tmp_path), default_bus_factory())
    engine = AlertEngine()
    engine.set_rules(loaded.file, at(0), bus=loaded.bus)
    day = Day()
    day.status(400, "bus-1-door", "offline")
    day.status(480, "bus-1-door", "online")
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])  # Cid's alighting read is missed
    items = day.items()
    outcome = Outcome()
    clock = items[0].at
    for item in items:
        while clock + timedelta(seconds=1) <= item.at:
            clock += timedelta(seconds=1)
            outcome.extend(engine.tick(clock))
        assert item.event is not None
        payload = item.event.payload
        if isinstance(payload, DeviceState):
            status = StatusIn("demo", item.event.device, payload is DeviceState.ONLINE,
                              item.event.ts)  # fmt: skip
            outcome.extend(engine.status(status, item.at))
        else:
            outcome.extend(engine.bus_event(_validated(item.event), item.at))
    for _ in range(400):
        clock += timedelta(seconds=1)
        outcome.extend(engine.tick(clock))
    alerts = [(c.alert.rule, c.alert.state.value) for c in outcome.changes]
    assert ("reader_offline", "firing") in alerts
    assert ("reader_offline", "resolved") in alerts
    assert ("occupancy_unknown", "firing") in alerts
    assert ("child_left_aboard", "firing") in alerts
    escalated = [c.alert for c in outcome.changes if c.alert.state.value == "escalated"]
    assert escalated  # the 5-minute guardian delay of the rule file's settings
    kinds = {n.kind for n in outcome.notices}
    assert {"boarded", "alighted"} <= kinds
    assert "bus_empty" not in kinds


def test_an_alert_the_bus_rules_forgot_is_acknowledged_by_the_alert_book(
    tmp_path: Path,
) -> None:
    """After a restart whose journal no longer reaches an old alert's run, the operator's
    acknowledgement still closes it (the bus rules answer "unknown"), telling its targets."""
    loaded = load_file(_folder(tmp_path), default_bus_factory())
    first = AlertEngine()
    first.set_rules(loaded.file, at(0), bus=loaded.bus)
    day = Day()
    day.morning(alighting=["TAG-ANN", "TAG-BEN"])
    outcome = _feed(first, day, tail_s=120)
    fired = [c.alert for c in outcome.changes if c.alert.rule == "child_left_aboard"]
    assert fired
    assert outcome.journal  # what the bus rules took, to keep with what it decided
    alert = fired[0]
    fresh = load_file(_folder(tmp_path), default_bus_factory())
    again = AlertEngine()
    again.set_rules(fresh.file, at(0), bus=fresh.bus)
    again.restore([(alert, Manager.BUS, alert.ts)])
    acked = again.acknowledge("demo", alert.fingerprint, "op-1", "child at home", at(3000))
    assert [(c.alert.state.value, c.notify) for c in acked.changes] == [("acknowledged", True)]
    assert acked.changes[0].alert.targets == alert.targets
    # the same alert, rebuilt from the journal: the bus rules close it themselves
    rebuilt = load_file(_folder(tmp_path), default_bus_factory())
    assert rebuilt.bus is not None
    report = rebuilt.bus.engine.rebuild(outcome.journal)
    assert report.entries == len(outcome.journal)
    assert report.unreadable == 0
    third = AlertEngine()
    third.set_rules(rebuilt.file, at(0), bus=rebuilt.bus)
    third.restore([(alert, Manager.BUS, alert.ts)])
    # acknowledged where the journal ends, so nothing else falls due before it
    ends = max(record.at for record in outcome.journal)
    closed = third.acknowledge("demo", alert.fingerprint, "op-1", "child at home", ends)
    assert [c.alert.state.value for c in closed.changes] == ["acknowledged"]
    assert closed.journal
    assert closed.journal[-1].kind == "ack"


def _feed(engine: AlertEngine, day: Day, tail_s: float) -> Outcome:
    outcome = Outcome()
    items = day.items()
    for item in items:
        assert item.event is not None
        outcome.extend(engine.bus_event(_validated(item.event), item.at))
        outcome.extend(engine.tick(item.at))
    outcome.extend(engine.tick(items[-1].at + timedelta(seconds=tail_s)))
    return outcome
