"""Unregistered tags counted aboard alert driver, operator and school, never guardians."""

from __future__ import annotations

from iotmon_alerts.bus import Evidence, NotificationKind, NotificationState
from iotmon_contract.alerts import AlertSeverity
from tests.utils.bus import Day, roles

UNKNOWN_TAG = NotificationKind.UNKNOWN_TAG


def test_an_unknown_tag_counted_aboard_goes_to_crew_and_school_only() -> None:
    day = Day()
    day.morning(boarding={"stop-a": ["TAG-ANN", "VISITOR-1"]}, alighting=["TAG-ANN"])
    notes = day.run(tail_s=1800)
    alerts = notes.of(UNKNOWN_TAG, "VISITOR-1")
    assert alerts
    first = alerts[0]
    assert (first.state, first.evidence) == (NotificationState.FIRING, Evidence.COUNTED)
    assert first.severity is AlertSeverity.WARNING
    assert first.child is None
    for alert in alerts:
        assert roles(alert) == {"driver", "operator", "school"}
    # no boarded notice for a tag nobody is guardian of
    assert notes.of(NotificationKind.BOARDED, "VISITOR-1") == []


def test_an_unknown_tag_heard_inside_is_critical_still_without_guardians() -> None:
    day = Day()
    day.morning(sweep=[("LOST-BADGE", -50.0)])
    notes = day.run(tail_s=60)
    (alert,) = notes.of(UNKNOWN_TAG, "LOST-BADGE")
    assert (alert.evidence, alert.severity) == (Evidence.SEEN, AlertSeverity.CRITICAL)
    assert "guardian" not in roles(alert)
    assert notes.of(NotificationKind.CHILD_LEFT_ABOARD) == []
