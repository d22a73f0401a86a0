"""last_seen in every format Zigbee2MQTT writes it, and what stands in when it cannot."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iotmon_edge.zigbee2mqtt.timestamps import TimestampSource, parse_last_seen, reading_time
from tests.edge.zigbee.fixtures import GENERATIONS, load

WEEK = timedelta(days=7)
AHEAD = timedelta(minutes=5)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_every_last_seen_format_of_the_fixtures(generation: str) -> None:
    """The same sensor under each advanced.last_seen setting: ISO 8601 (UTC, ms), local
    ISO 8601 in three zones (+01:00, +05:30, -05:00; no ms), epoch ms, disable, relative."""
    messages = load(generation).scenarios["last_seen"]
    assert len(messages) == 7
    sources = []
    for message in messages:
        document = json.loads(message.payload)
        when = reading_time(
            document.get("last_seen"), message.received, max_age=WEEK, max_ahead=AHEAD
        )
        sources.append(when.source)
        if when.source is TimestampSource.LAST_SEEN:
            # Zigbee2MQTT stamped it when it published it: local ISO drops the ms.
            assert message.at - timedelta(seconds=1) < when.ts <= message.at
        else:
            assert when.ts == message.received
    assert sources == [TimestampSource.LAST_SEEN] * 5 + [
        TimestampSource.RECEIVED,
        TimestampSource.UNREADABLE,
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-03-01T15:32:45.941Z", datetime(2019, 3, 1, 15, 32, 45, 941000, UTC)),
        ("2019-03-01T16:32:45+01:00", datetime(2019, 3, 1, 15, 32, 45, tzinfo=UTC)),
        ("2019-03-01T21:02:45+05:30", datetime(2019, 3, 1, 15, 32, 45, tzinfo=UTC)),
        ("2019-03-01T10:32:45-05:00", datetime(2019, 3, 1, 15, 32, 45, tzinfo=UTC)),
        (1551454365941, datetime(2019, 3, 1, 15, 32, 45, 941000, UTC)),
        ("5 minutes ago", None),
        ("2019-02-30T10:00:00Z", None),
        ("2019-03-01 15:32:45", None),
        (True, None),
        (12, None),
        (float("inf"), None),
        (10**30, None),
        ({"ts": 1}, None),
    ],
)
def test_parse_last_seen(value: object, expected: datetime | None) -> None:
    assert parse_last_seen(value) == expected


def test_implausible_last_seen_gives_way_to_the_receive_time() -> None:
    received = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    ahead = (received + timedelta(minutes=6)).isoformat()
    old = (received - timedelta(days=8)).isoformat()
    fine = (received - timedelta(days=6)).isoformat()
    for value, source in [
        (ahead, TimestampSource.IMPLAUSIBLE),
        (old, TimestampSource.IMPLAUSIBLE),
        (fine, TimestampSource.LAST_SEEN),
    ]:
        when = reading_time(value, received, max_age=WEEK, max_ahead=AHEAD)
        assert when.source is source
        assert (when.ts == received) is (source is not TimestampSource.LAST_SEEN)


@given(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.lists(st.integers(), max_size=3)
)
def test_reading_time_never_raises(value: object) -> None:
    received = datetime(2026, 3, 1, tzinfo=UTC)
    when = reading_time(value, received, max_age=WEEK, max_ahead=AHEAD)
    assert when.ts.tzinfo is not None
    assert received - WEEK <= when.ts <= received + AHEAD
