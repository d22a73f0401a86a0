"""When a Zigbee2MQTT reading was taken: its ``last_seen`` when present and sane.

Zigbee2MQTT writes ``last_seen`` (``advanced.last_seen``) as ISO 8601 in UTC with
milliseconds (``2019-03-01T15:32:45.941Z``), as local ISO 8601 without milliseconds
(``2019-03-01T16:32:45+01:00``), as epoch milliseconds (a JSON number), as a relative
phrase (``"5 minutes ago"``), or not at all (``disable``, the default). The time a
message was received stands in when there is none, when it cannot be read, or when it
is implausibly far from that time (a device clock or a stale retained state).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$"
)
_EPOCH_MS_MIN = 946_684_800_000
"""2000-01-01: an epoch-millisecond value below this is not a Zigbee2MQTT last_seen."""


class TimestampSource(Enum):
    LAST_SEEN = "last_seen"
    RECEIVED = "received"
    """No last_seen in the message (Zigbee2MQTT's default)."""
    UNREADABLE = "unreadable"
    """A last_seen that is neither ISO 8601 nor epoch milliseconds (e.g. relative)."""
    IMPLAUSIBLE = "implausible"
    """A readable last_seen too far before or after the time of receipt."""


@dataclass(frozen=True, slots=True)
class ReadingTime:
    ts: datetime
    source: TimestampSource


def parse_last_seen(value: object) -> datetime | None:
    """A ``last_seen`` value as an aware UTC datetime, or None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < _EPOCH_MS_MIN:
            return None
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    match = _ISO.match(value.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        if zone == "Z":
            offset = timedelta(0)
        else:
            sign = 1 if zone[0] == "+" else -1
            offset = sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        micro = int((fraction or "0").ljust(6, "0")[:6])
        local = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro
        )
        return (local - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def reading_time(
    value: object, received: datetime, *, max_age: timedelta, max_ahead: timedelta
) -> ReadingTime:
    """``last_seen`` if it is readable and within [received - max_age, received + max_ahead];
    else ``received``, saying why."""
    if value is None:
        return ReadingTime(received, TimestampSource.RECEIVED)
    seen = parse_last_seen(value)
    if seen is None:
        return ReadingTime(received, TimestampSource.UNREADABLE)
    if not received - max_age <= seen <= received + max_ahead:
        return ReadingTime(received, TimestampSource.IMPLAUSIBLE)
    return ReadingTime(seen, TimestampSource.LAST_SEEN)


__all__ = ["ReadingTime", "TimestampSource", "parse_last_seen", "reading_time"]
