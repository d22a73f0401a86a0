"""Opaque page cursors: where a listing stopped, and the query it belongs to.

A cursor is URL-safe base64 of a small versioned JSON document. It is opaque to
clients (they pass ``next_cursor`` back unchanged) but not secret: it only names a
position in data the caller may read, and scope is checked again on every page.
A points cursor pins the query it continues (keys, resolved window, order), so a
default ``end`` of "now" does not drift between pages.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from iotmon_storage import Position

CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 4096
CURSOR_PATTERN = r"^[A-Za-z0-9_-]{1,4096}$"
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1
"""Nanoseconds since 1970 in a signed 64-bit integer: what both stores hold."""


class CursorError(ValueError):
    """A cursor that is not one of ours, or not for this request."""


def _encode(kind: str, body: list[Any]) -> str:
    text = json.dumps([CURSOR_VERSION, kind, *body], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _decode(kind: str, cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError("not a cursor this API issued") from None
    if not isinstance(document, list) or len(document) < 2 or document[0] != CURSOR_VERSION:
        raise CursorError("not a cursor this API issued (or from an older version)")
    if document[1] != kind:
        raise CursorError(f"a cursor of another listing ({document[1]!r}), not of {kind}")
    return document[2:]


@dataclass(frozen=True, slots=True)
class DeviceCursor:
    """The last device of a page of the device list."""

    tenant: str
    device: str

    def encode(self) -> str:
        return _encode("devices", [self.tenant, self.device])

    @classmethod
    def decode(cls, cursor: str) -> DeviceCursor:
        body = _decode("devices", cursor)
        if len(body) != 2 or not all(isinstance(part, str) for part in body):
            raise CursorError("a malformed devices cursor")
        return cls(body[0], body[1])


@dataclass(frozen=True, slots=True)
class PointsCursor:
    """The query a page of raw points belongs to, and where that page ended."""

    keys: tuple[str, ...]
    start_ns: int
    end_ns: int
    descending: bool
    position: Position

    def encode(self) -> str:
        return _encode(
            "points",
            [
                list(self.keys),
                self.start_ns,
                self.end_ns,
                self.descending,
                self.position.ts_ns,
                self.position.metric,
            ],
        )

    @classmethod
    def decode(cls, cursor: str) -> PointsCursor:
        body = _decode("points", cursor)
        try:
            keys, start_ns, end_ns, descending, ts_ns, metric = body
        except ValueError:
            raise CursorError("a malformed points cursor") from None
        ints = (start_ns, end_ns, ts_ns)
        if (
            not isinstance(keys, list)
            or not all(isinstance(key, str) for key in keys)
            or not all(isinstance(n, int) and not isinstance(n, bool) for n in ints)
            or not isinstance(descending, bool)
            or not isinstance(metric, str)
        ):
            raise CursorError("a malformed points cursor")
        if not all(_NS_MIN <= n <= _NS_MAX for n in ints) or start_ns >= end_ns:
            raise CursorError("a points cursor with times no store holds")
        return cls(tuple(keys), start_ns, end_ns, descending, Position(ts_ns, metric))
