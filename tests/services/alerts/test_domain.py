"""The alert domain on an injected clock: rules, lifecycle, muting, grouping (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iotmon_alerts.domain.engine import AlertEngine
from iotmon_alerts.domain.lifecycle import Silence, UnknownAlert
from iotmon_alerts.domain.model import FaultIn, Outcome, ReadingIn, StatusIn
from iotmon_alerts.rulefile import RuleFile
from iotmon_contract import AlertState

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def rules(*rule: dict[str, Any], **file: Any) -> RuleFile:
    return RuleFile.model_validate({"tenant": "acme", "rules": list(rule), **file})


def hot(**extra: Any) -> dict[str, Any]:
    return {"name": "hot", "type": "threshold", "metric": "temperature", "above": 30, **extra}


def reading(value: float, seconds: float, device: str = "env-1") -> ReadingIn:
    return ReadingIn("acme", device, "temperature", value, at(seconds))


def states(outcome: Outcome) -> list[tuple[str, str, bool]]:
    return [(c.alert.rule, c.alert.state.value, c.notify) for c in outcome.changes]


def engine_with(file: RuleFile, site: str | None = "plant-1") -> AlertEngine:
    engine = AlertEngine(site_of=lambda _t, _d: site)
    engine.set_rules(file, T0)
    return engine


def test_threshold_waits_for_its_duration_and_clears_past_hysteresis() -> None:
    engine = engine_with(rules(hot(clear=28, for_s=60)))
    assert not engine.reading(reading(31, 0), at(0))
    assert not engine.tick(at(59))
    fired = engine.tick(at(60))
    assert states(fired) == [("hot", "firing", True)]
    assert fired.changes[0].alert.subject.site == "plant-1"
    assert len(fired.deliveries) == 1
    # Inside the hysteresis band: still firing, nothing new (no flapping).
    assert not engine.reading(reading(29, 61), at(61))
    assert not engine.reading(reading(35, 62), at(62))
    assert states(engine.reading(reading(27.5, 63), at(63))) == [("hot", "resolved", True)]


def test_a_dip_below_the_threshold_restarts_the_duration() -> None:
    engine = engine_with(rules(hot(for_s=60)))
    engine.reading(reading(31, 0), at(0))
    engine.reading(reading(29, 30), at(30))
    engine.reading(reading(31, 40), at(40))
    assert not engine.tick(at(90))
    assert states(engine.tick(at(100))) == [("hot", "firing", True)]


def test_late_readings_older_than_the_newest_are_ignored() -> None:
    engine = engine_with(rules(hot()))
    assert states(engine.reading(reading(31, 10), at(10))) == [("hot", "firing", True)]
    # A replayed backlog reading from before: must not resolve the alert.
    assert not engine.reading(reading(20, 5), at(11))


def test_duplicate_firing_is_one_alert_and_reminded_after_the_repeat_interval() -> None:
    engine = engine_with(rules(hot(repeat_interval_s=600)))
    first = engine.reading(reading(31, 0), at(0))
    assert len(first.changes) == 1
    assert not engine.reading(reading(32, 1), at(1))
    assert not engine.tick(at(599))
    reminder = engine.tick(at(600))
    assert [(c.alert.state.value, c.repeat) for c in reminder.changes] == [("firing", True)]
    assert reminder.deliveries[0].key != first.deliveries[0].key


def test_escalation_when_not_acknowledged_and_none_after_acknowledgement() -> None:
    engine = engine_with(rules(hot(escalate_after_s=300)))
    fp = engine.reading(reading(31, 0), at(0)).changes[0].alert.fingerprint
    escalated = engine.tick(at(300))
    assert states(escalated) == [("hot", "escalated", True)]
    assert escalated.changes[0].alert.severity.value == "critical"
    acked = engine.acknowledge("acme", fp, "op-1", "on my way", at(301))
    assert states(acked) == [("hot", "acknowledged", True)]
    assert acked.changes[0].alert.ack_reason == "on my way"
    assert not engine.tick(at(5000))
    with pytest.raises(UnknownAlert):
        engine.acknowledge("other", fp, "x", "y", at(302))

    engine2 = engine_with(rules(hot(escalate_after_s=300)))
    fp2 = engine2.reading(reading(31, 0), at(0)).changes[0].alert.fingerprint
    engine2.acknowledge("acme", fp2, "op", "seen", at(10))
    assert not engine2.tick(at(400))


def test_absence_fires_for_a_device_gone_silent_and_resolves_when_it_returns() -> None:
    engine = engine_with(rules({"name": "silent", "type": "absence", "after_s": 120}))
    engine.reading(reading(20, 0), at(0))
    assert not engine.tick(at(119))
    assert states(engine.tick(at(120))) == [("silent", "firing", True)]
    assert not engine.tick(at(500))
    assert states(engine.reading(reading(20, 501), at(501))) == [("silent", "resolved", True)]


def test_rate_of_change() -> None:
    rule = {"name": "jump", "type": "rate_of_change", "metric": "temperature",
            "max_per_s": 0.1, "window_s": 60}  # fmt: skip
    engine = engine_with(rules(rule))
    assert not engine.reading(reading(20, 0), at(0))
    assert not engine.reading(reading(21, 30), at(30))  # 1/30 per s
    assert states(engine.reading(reading(30, 40), at(40))) == [("jump", "firing", True)]
    assert not engine.reading(reading(31, 50), at(50))
    # The jump leaves the 60 s window: steady again.
    assert states(engine.reading(reading(31, 101), at(101))) == [("jump", "resolved", True)]


def test_offline_for_a_while_and_faults() -> None:
    file = rules(
        {"name": "down", "type": "offline", "for_s": 30},
        {"name": "broken", "type": "fault", "min_severity": "error"},
    )
    engine = engine_with(file)
    assert not engine.status(StatusIn("acme", "gw-1", False, at(0)), at(0))
    assert states(engine.tick(at(30))) == [("down", "firing", True)]
    assert states(engine.status(StatusIn("acme", "gw-1", True, at(40)), at(40))) == [
        ("down", "resolved", True)
    ]

    def fault(severity: str, cleared: bool = False) -> FaultIn:
        return FaultIn("acme", "gw-1", "modbus", "timeout", severity, cleared, None, at(50))

    assert not engine.fault(fault("warning"), at(50))
    fired = engine.fault(fault("critical"), at(50))
    assert states(fired) == [("broken", "firing", True)]
    assert fired.changes[0].alert.severity.value == "critical"
    assert not engine.fault(fault("critical"), at(51))
    assert states(engine.fault(fault("critical", cleared=True), at(52))) == [
        ("broken", "resolved", True)
    ]


def test_a_silence_holds_notifications_back_and_they_go_once_it_ends() -> None:
    engine = engine_with(rules(hot()))
    engine.set_silences([Silence("s1", "acme", {"device": "env-*"}, at(0), at(100), "op", "works")])
    fired = engine.reading(reading(31, 1), at(1))
    assert states(fired) == [("hot", "firing", False)]
    assert fired.changes[0].muted_by == "silence:s1"
    assert not fired.deliveries
    assert not engine.tick(at(50))
    later = engine.tick(at(100))
    assert states(later) == [("hot", "firing", True)]
    assert len(later.deliveries) == 1
    # Another tenant's silence does not apply.
    other = engine_with(rules(hot()))
    other.set_silences([Silence("s2", "other", {}, at(0), at(100))])
    assert states(other.reading(reading(31, 1), at(1))) == [("hot", "firing", True)]


def test_maintenance_windows_one_off_and_weekly() -> None:
    windows = [
        {"name": "upgrade", "matchers": {"site": "plant-1"},
         "start": "2026-11-25T09:00:00Z", "end": "2026-11-25T11:00:00Z"},
        {"name": "nightly", "days": ["wed"], "from": "23:00", "until": "01:00"},
    ]  # fmt: skip
    engine = engine_with(rules(hot(), maintenance=windows))
    assert states(engine.reading(reading(31, 0), at(0))) == [("hot", "firing", False)]
    elsewhere = engine_with(rules(hot(), maintenance=windows), site="plant-2")
    assert states(elsewhere.reading(reading(31, 0), at(0))) == [("hot", "firing", True)]
    # 2026-11-25 is a Wednesday: 23:30 that night and 00:30 Thursday are in the window.
    night = engine_with(rules(hot(), maintenance=windows), site=None)
    late = T0.replace(hour=23, minute=30)
    assert states(night.reading(ReadingIn("acme", "x", "temperature", 31, late), late)) == [
        ("hot", "firing", False)
    ]


def test_grouping_waits_and_sends_a_group_once() -> None:
    engine = engine_with(rules(hot(), policy={"group_by": ["rule"], "group_wait_s": 10}))
    a = engine.reading(reading(31, 0, "env-1"), at(0))
    b = engine.reading(reading(31, 1, "env-2"), at(1))
    assert len(a.changes) == len(b.changes) == 1
    assert not a.deliveries
    assert not b.deliveries
    assert not engine.tick(at(9)).deliveries
    flushed = engine.tick(at(10)).deliveries
    assert len(flushed) == 1
    assert {x.subject.device for x in flushed[0].alerts} == {"env-1", "env-2"}
    assert flushed[0].group == {"rule": "hot"}


def test_reloading_keeps_state_of_unchanged_rules_and_resolves_removed_ones() -> None:
    engine = engine_with(rules(hot(for_s=60), {"name": "cold", "type": "threshold",
                                               "metric": "temperature", "below": 0}))  # fmt: skip
    engine.reading(reading(31, 0), at(0))
    engine.reading(reading(-1, 1, "env-2"), at(1))
    out = engine.set_rules(rules(hot(for_s=60)), at(2))
    assert states(out) == [("cold", "resolved", True)]
    # The threshold's pending duration survived the reload.
    assert states(engine.tick(at(60))) == [("hot", "firing", True)]


def test_restart_restores_active_alerts() -> None:
    engine = engine_with(rules(hot(escalate_after_s=100)))
    alert = engine.reading(reading(31, 0), at(0)).changes[0].alert
    from iotmon_alerts.domain.lifecycle import Manager

    again = AlertEngine()
    again.set_rules(rules(hot(escalate_after_s=100)), at(10))
    again.restore([(alert, Manager.RULES, at(0))])
    # Not re-notified as new, but still escalates on time and resolves.
    assert not again.tick(at(50))
    assert states(again.tick(at(100))) == [("hot", "escalated", True)]
    assert states(again.reading(reading(20, 101), at(101))) == [("hot", "resolved", True)]
    assert alert.state is AlertState.FIRING
