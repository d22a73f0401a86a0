"""What the bus-safety core decides: notifications, their recipients and their JSON form.

A notification is either a one-off notice (boarded, alighted, bus empty) or a step in an
alert's life (firing, escalated, acknowledged, resolved) keyed by a fingerprint that stays
the same from the first firing to the resolution.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from iotmon_contract.alerts import AlertSeverity


class NotificationKind(StrEnum):
    BOARDED = "boarded"
    ALIGHTED = "alighted"
    CHILD_LEFT_ABOARD = "child_left_aboard"
    OCCUPANCY_UNKNOWN = "occupancy_unknown"
    READER_OFFLINE = "reader_offline"
    BUS_EMPTY = "bus_empty"
    UNKNOWN_TAG = "unknown_tag"


NOTICE_KINDS = frozenset(
    {NotificationKind.BOARDED, NotificationKind.ALIGHTED, NotificationKind.BUS_EMPTY}
)
"""Kinds that are one-off news: sent once in state ``firing``, never escalated or resolved."""


class NotificationState(StrEnum):
    FIRING = "firing"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class RecipientRole(StrEnum):
    DRIVER = "driver"
    OPERATOR = "operator"
    SCHOOL = "school"
    GUARDIAN = "guardian"


class Evidence(StrEnum):
    """How sure the platform is that somebody is on a parked bus."""

    SEEN = "seen"
    """The cabin sweep heard the tag at an inside-this-bus RSSI, or a camera/radar saw a person."""
    COUNTED = "counted"
    """Door passages say aboard; nothing saw the child."""


class Reason(StrEnum):
    """Why a notification was sent: the step of the rule that produced it."""

    PASSAGE = "passage"
    """A door passage (boarded/alighted)."""
    RUN_END = "run_end"
    """Decided at (or after late evidence for) the end of a run."""
    WALKTHROUGH_REMINDER = "walkthrough_reminder"
    GUARDIAN_DELAY = "guardian_delay"
    """A counted-only alert was not cleared within the guardian delay."""
    REPEAT = "repeat"
    """An escalated alert is still open: sent again to everybody."""
    SEEN = "seen"
    """A counted-only alert became seen (sweep or camera/radar)."""
    DOOR_READ_AFTER_END = "door_read_after_end"
    ALIGHTED_BEFORE_END = "alighted_before_end"
    """Late door reads show the child got off before the run ended."""
    WALKTHROUGH = "walkthrough"
    CABIN_EMPTY = "cabin_empty"
    """The camera/radar that saw a person sees nobody after the driver's walk-through."""
    ACKNOWLEDGED = "acknowledged"
    READER_OFFLINE = "reader_offline"
    READER_ONLINE = "reader_online"


@dataclass(frozen=True, slots=True, order=True)
class Recipient:
    """Who a notification goes to: a role and an id (driver, operator, school or guardian id)."""

    role: RecipientRole
    id: str


@dataclass(frozen=True, slots=True)
class Notification:
    """One decision of the core: what to tell whom, and why.

    ``time`` is when the core decided (the clock it was handed); ``event_time`` the device
    time of what it is about (the read, the run end). Alerts share ``fingerprint`` across
    their states; a notice has a fingerprint of its own.
    """

    time: datetime
    kind: NotificationKind
    severity: AlertSeverity
    bus: str
    child_tag: str | None
    recipients: tuple[Recipient, ...]
    state: NotificationState
    stop: str | None
    event_time: datetime | None
    fingerprint: str
    tenant: str
    reason: Reason
    child: str | None = None
    """The child's id when the tag is a known child's."""
    evidence: Evidence | None = None
    run: str | None = None
    """The run this is about (its id, or its end time when the bus sent no id)."""
    device: str | None = None
    """The device it is about (reader_offline)."""
    acknowledged_by: str | None = None
    note: str | None = None
    """The acknowledgement's reason, as the operator gave it."""

    @property
    def is_notice(self) -> bool:
        return self.kind in NOTICE_KINDS

    def to_json(self) -> dict[str, Any]:
        """The replay's JSON line: the issue's fields first, then the core's extras."""
        return {
            "time": _iso(self.time),
            "kind": self.kind.value,
            "severity": self.severity.value,
            "bus": self.bus,
            "child_tag": self.child_tag,
            "recipients": [{"role": r.role.value, "id": r.id} for r in self.recipients],
            "state": self.state.value,
            "stop": self.stop,
            "event_time": _iso(self.event_time) if self.event_time is not None else None,
            "fingerprint": self.fingerprint,
            "tenant": self.tenant,
            "reason": self.reason.value,
            "child": self.child,
            "evidence": self.evidence.value if self.evidence is not None else None,
            "run": self.run,
            "device": self.device,
            "acknowledged_by": self.acknowledged_by,
            "note": self.note,
        }


def _iso(value: datetime) -> str:
    text = value.isoformat(timespec="milliseconds")
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def fingerprint(*parts: str) -> str:
    """A stable 16-hex-digit id from the parts that name one alert instance (or notice)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).hexdigest()
    return digest


def alert_fingerprint(
    tenant: str, bus: str, run: str, kind: NotificationKind, subject: str, generation: int = 0
) -> str:
    """The fingerprint of an end-of-run alert: the same for every state of one alert.

    ``subject`` is the tag (or ``person`` for a camera's unknown person, the device for
    reader alerts, ``bus`` for occupancy). ``generation`` counts re-openings after an
    acknowledgement.
    """
    return fingerprint(tenant, bus, run, kind.value, subject, str(generation))
