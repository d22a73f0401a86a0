"""Ingest's health: what it is, the small JSON file it is published in, and how it is judged.

Ingest serves no HTTP, so its health is a file in its state folder, rewritten
every ``health_interval_s`` by a thread of its own (a write blocked on the store
does not stop it) and read by ``iotmon-ingest health`` (the container's health
check). A service that is degraded but loses nothing (the store is down and the
spool takes the batches) is healthy; one that stopped taking messages (the spool
is full) or stopped writing the file is not.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

_FORMAT = 1
_MAX_FILE_BYTES = 4096
"""Kept within one page: rewriting it in place on a full disk needs no new block."""
_MAX_REASON = 300


class HealthState(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"


@dataclass(frozen=True, slots=True)
class Health:
    """One look at an ingest process."""

    state: HealthState
    intake_paused: bool
    """True when ingest stopped reading from the broker because it cannot make what it
    holds durable (neither store nor spool take it): the broker keeps the backlog."""
    reasons: tuple[str, ...] = ()
    held_messages: int = 0
    """Messages received but not yet durable while intake is paused (unacknowledged)."""
    spool_batches: int = 0
    spool_bytes: int = 0
    mqtt_received: int = 0
    """Messages the MQTT client received on its connections so far."""
    mqtt_acks: int = 0
    """Acknowledgements it sent: every one for a message already stored or spooled."""
    counters: dict[str, Any] = field(default_factory=dict)
    client_id: str = ""
    written_at: float = 0.0
    """Unix time the file was written."""
    interval_s: float = 5.0
    """How often the file is rewritten: a reader judges staleness by it."""

    def to_json(self) -> bytes:
        body: dict[str, Any] = {"format": _FORMAT, **asdict(self)}
        body["state"] = self.state.value
        body["reasons"] = [reason[:_MAX_REASON] for reason in self.reasons]
        data = json.dumps(body, separators=(",", ":")).encode()
        if len(data) > _MAX_FILE_BYTES:
            body["counters"] = {}
            data = json.dumps(body, separators=(",", ":")).encode()
        return data

    @classmethod
    def from_json(cls, data: bytes) -> Health:
        raw = json.loads(data)
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
            raise ValueError("not an ingest health file of a known format")
        return cls(
            state=HealthState(raw["state"]),
            intake_paused=bool(raw["intake_paused"]),
            reasons=tuple(str(r) for r in raw.get("reasons", ())),
            held_messages=int(raw.get("held_messages", 0)),
            spool_batches=int(raw.get("spool_batches", 0)),
            spool_bytes=int(raw.get("spool_bytes", 0)),
            mqtt_received=int(raw.get("mqtt_received", 0)),
            mqtt_acks=int(raw.get("mqtt_acks", 0)),
            counters=dict(raw.get("counters") or {}),
            client_id=str(raw.get("client_id", "")),
            written_at=float(raw["written_at"]),
            interval_s=float(raw["interval_s"]),
        )


class HealthUnreadable(Exception):
    """The health file is missing or cannot be parsed; the message says which."""


def write_health(path: Path, health: Health) -> None:
    """Replace the file atomically; on a full disk, overwrite the old one in place.

    The in-place fallback is what lets a full spool disk still be reported (the
    atomic way needs a new block for the temporary file); a reader that catches it
    half-written retries.
    """
    data = health.to_json()
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        temporary.replace(path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        descriptor = os.open(path, os.O_WRONLY)  # raises if there is no old file either
        try:
            os.pwrite(descriptor, data, 0)
            os.ftruncate(descriptor, len(data))
        finally:
            os.close(descriptor)


def read_health(path: Path, attempts: int = 3) -> Health:
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            return Health.from_json(path.read_bytes())
        except FileNotFoundError as exc:
            raise HealthUnreadable(f"{path}: missing (ingest not started, or elsewhere)") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            last = exc
            if attempt + 1 < attempts:
                time.sleep(0.1)
    raise HealthUnreadable(f"{path}: unreadable: {last}")


def stale_after_s(interval_s: float) -> float:
    """How old a health file may be: three missed rewrites, and never under 10 s."""
    return max(3 * interval_s, interval_s + 10.0)


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    summary: str


def judge(health: Health, now: float) -> Verdict:
    """Healthy: fresh and taking messages (ok, or degraded with nothing lost)."""
    age = now - health.written_at
    name = health.client_id or "ingest"
    details = "; ".join(health.reasons)
    if age > stale_after_s(health.interval_s):
        return Verdict(False, f"{name}: stale, last written {age:.0f}s ago ({health.state})")
    if health.intake_paused:
        return Verdict(False, f"{name}: intake paused: {details}")
    text = f"{name}: {health.state}"
    return Verdict(True, f"{text} ({details})" if details else text)
