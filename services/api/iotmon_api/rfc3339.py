"""Strict RFC 3339 timestamps for query parameters: date, ``T``, time, offset; nothing else.

Pydantic's datetime also takes numbers (``end=0.5`` is 1970) and offset-less or
date-only strings; a time-series query that silently means 1970 is a bug, so the
API reads its time parameters as text and accepts exactly RFC 3339 §5.6.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

RFC3339_PATTERN = r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
_RFC3339 = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[Tt](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2})$"
)


class NotRfc3339(ValueError):
    """Text that is not an RFC 3339 date-time with an offset; the message says why."""


def parse_rfc3339(text: str) -> datetime:
    """An aware datetime from RFC 3339 text; fractions beyond microseconds are truncated."""
    match = _RFC3339.match(text)
    if match is None:
        raise NotRfc3339("must be an RFC 3339 date-time with an offset, e.g. 2026-11-25T10:00:00Z")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = match["offset"]
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
    except ValueError as exc:
        # Matches the shape but not the calendar: month 13, 25:00, Feb 30, offset +24:00.
        raise NotRfc3339(f"is not a real date-time: {exc}") from None
    if parsed.year < 1 or parsed.utcoffset() is None:
        raise NotRfc3339("must carry a UTC offset")
    # Out-of-range instants after applying the offset (0001-01-01T00:00:00+01:00).
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise NotRfc3339("is outside the representable range") from None
    return parsed
