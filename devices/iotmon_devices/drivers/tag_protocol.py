"""The line protocol of the school-bus tag readers (door reader and cabin scanner).

ASCII lines framed like NMEA: ``$`` fields separated by commas, ``*`` and two hex
digits of the XOR of every byte between them, CR LF. Cheap active-tag (ZigBee/LF)
readers speak something close to it over a USB serial adapter.

Reader to agent::

    $HB,<uptime_s>*XX                     heartbeat, every second
    $TAG,<tag>,<rssi_dbm>[,IN|OUT]*XX      a tag passed the door
    $SEEN,<sweep_id>,<tag>,<rssi_dbm>*XX   a tag heard during a sweep
    $DONE,<sweep_id>,<count>*XX            the sweep ended; count = SEEN lines sent
    $ERR,<text>*XX                         the reader reports a problem

Agent to reader::

    $SWEEP,<sweep_id>,<duration_s>*XX      listen for every tag in the cabin
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from iotmon_contract.events import TAG_PATTERN

MAX_LINE_BYTES = 256
_TAG = re.compile(TAG_PATTERN)
_SWEEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class LineErrorKind(StrEnum):
    CHECKSUM = "checksum"
    MALFORMED = "malformed"


class LineError(ValueError):
    def __init__(self, kind: LineErrorKind, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Heartbeat:
    uptime_s: int


@dataclass(frozen=True, slots=True)
class TagPassed:
    tag: str
    rssi: float
    direction: str | None


@dataclass(frozen=True, slots=True)
class SweepSeen:
    sweep_id: str
    tag: str
    rssi: float


@dataclass(frozen=True, slots=True)
class SweepDone:
    sweep_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ReaderError:
    text: str


ReaderMessage = Heartbeat | TagPassed | SweepSeen | SweepDone | ReaderError


def checksum(body: bytes) -> int:
    value = 0
    for byte in body:
        value ^= byte
    return value


def encode_line(*fields: str) -> bytes:
    body = ",".join(fields).encode("ascii")
    return b"$" + body + f"*{checksum(body):02X}\r\n".encode("ascii")


def parse_line(line: bytes) -> ReaderMessage:
    """One line (without or with CR LF); raises LineError."""
    line = line.strip()
    if len(line) > MAX_LINE_BYTES:
        raise LineError(LineErrorKind.MALFORMED, f"line of {len(line)} bytes")
    if not line.startswith(b"$") or len(line) < 4 or line[-3:-2] != b"*":
        raise LineError(LineErrorKind.MALFORMED, f"not a framed line: {line[:40]!r}")
    body = line[1:-3]
    try:
        expected = int(line[-2:], 16)
    except ValueError:
        raise LineError(LineErrorKind.MALFORMED, f"bad checksum digits {line[-2:]!r}") from None
    if checksum(body) != expected:
        raise LineError(LineErrorKind.CHECKSUM, f"checksum mismatch in {line[:40]!r}")
    try:
        fields = body.decode("ascii").split(",")
    except UnicodeDecodeError:
        raise LineError(LineErrorKind.MALFORMED, "non-ASCII line") from None
    try:
        return _message(fields)
    except (ValueError, IndexError) as exc:
        raise LineError(LineErrorKind.MALFORMED, f"{fields[0]}: {exc}") from None


def _rssi(text: str) -> float:
    rssi = float(text)
    if not (math.isfinite(rssi) and -150.0 <= rssi <= 30.0):
        raise ValueError(f"RSSI {text} dBm out of range")
    return rssi


def _tag(text: str) -> str:
    if not _TAG.match(text):
        raise ValueError(f"bad tag id {text[:70]!r}")
    return text


def _sweep_id(text: str) -> str:
    if not _SWEEP_ID.match(text):
        raise ValueError(f"bad sweep id {text[:70]!r}")
    return text


def _message(fields: list[str]) -> ReaderMessage:
    kind, args = fields[0], fields[1:]
    if kind == "HB" and len(args) == 1:
        return Heartbeat(int(args[0]))
    if kind == "TAG" and len(args) in {2, 3}:
        direction = None
        if len(args) == 3:
            if args[2] not in {"IN", "OUT"}:
                raise ValueError(f"direction {args[2]!r} is not IN or OUT")
            direction = args[2].lower()
        return TagPassed(_tag(args[0]), _rssi(args[1]), direction)
    if kind == "SEEN" and len(args) == 3:
        return SweepSeen(_sweep_id(args[0]), _tag(args[1]), _rssi(args[2]))
    if kind == "DONE" and len(args) == 2:
        count = int(args[1])
        if count < 0:
            raise ValueError("negative count")
        return SweepDone(_sweep_id(args[0]), count)
    if kind == "ERR" and len(args) >= 1:
        return ReaderError(",".join(args)[:200])
    raise ValueError(f"unknown line type or field count ({len(args)} fields)")
