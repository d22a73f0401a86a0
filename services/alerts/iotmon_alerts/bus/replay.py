"""Replay: drive the core over a file of delivered events on a simulated clock.

Each line of events.jsonl is one delivery: ``at`` (when it reached the platform) and one of
``event`` (a contract event, with its device time ``ts``), ``status`` (a device's
availability) or ``ack`` (an operator's acknowledgement). The core is driven by a
``Timeline`` (ticked at the whole seconds at which it has something due), the very object
the live service drives, so the replay sends what the service sent for the same
deliveries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iotmon_alerts.bus.engine import BusSafetyEngine
from iotmon_alerts.bus.events import BusEvent
from iotmon_alerts.bus.fleet import Fleet
from iotmon_alerts.bus.lifecycle import UnknownAlert
from iotmon_alerts.bus.notifications import Notification
from iotmon_alerts.bus.rules import BusRules
from iotmon_alerts.bus.timeline import Timeline
from iotmon_contract.events import DeviceEvent
from iotmon_contract.payloads import DeviceStatus, Timestamp
from iotmon_contract.topics import IDENTIFIER_PATTERN

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
MAX_LINE_CHARS = 64 * 1024


class AckLine(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    fingerprint: str = Field(min_length=1, max_length=128, description="The alert.")
    by: str = Field(min_length=1, max_length=128, description="Who acknowledged it.")
    reason: str = Field(min_length=1, max_length=500, description="Why.")


class ReplayLine(BaseModel):
    """One delivery: an event, a status or an acknowledgement, and when it arrived."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    at: Timestamp = Field(description="When it reached the platform (RFC 3339).")
    tenant: Identifier | None = Field(default=None, description="Tenant of the topic.")
    device: Identifier | None = Field(default=None, description="Device of the topic.")
    event: DeviceEvent | None = Field(default=None, description="A contract event.")
    status: DeviceStatus | None = Field(default=None, description="A device's availability.")
    ack: AckLine | None = Field(default=None, description="An operator's acknowledgement.")

    @model_validator(mode="after")
    def _one_thing(self) -> Self:
        given = [name for name in ("event", "status", "ack") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a line holds exactly one of event, status or ack")
        if given[0] != "ack" and (self.tenant is None or self.device is None):
            raise ValueError("an event or status line needs its tenant and device")
        return self


@dataclass(frozen=True, slots=True)
class ReplayItem:
    number: int
    """Line number in the file, from 1."""
    at: datetime
    event: BusEvent | None = None
    ack: AckLine | None = None


class LineError(ValueError):
    """A line that cannot be replayed; the message names the line and what is wrong."""


def parse_line(text: str, number: int) -> ReplayItem:
    """One line as a ReplayItem; LineError naming line ``number`` and the problem."""
    if len(text) > MAX_LINE_CHARS:
        raise LineError(f"line {number}: longer than {MAX_LINE_CHARS} characters")
    try:
        line = ReplayLine.model_validate_json(text)
    except ValidationError as exc:
        raise LineError(f"line {number}: {_describe(exc)}") from None
    if line.ack is not None:
        return ReplayItem(number, line.at, ack=line.ack)
    # the validator saw to these
    assert line.tenant is not None
    assert line.device is not None
    if line.event is not None:
        event = BusEvent.from_event(line.tenant, line.device, line.event)
    else:
        assert line.status is not None
        # a last will has no time of its own: when it arrived stands in (as parse_status)
        ts = line.status.ts if line.status.ts is not None else line.at
        event = BusEvent(line.tenant, line.device, ts, line.status.state)
    return ReplayItem(number, line.at, event=event)


def _describe(error: ValidationError) -> str:
    if any(e["type"] == "json_invalid" for e in error.errors()):
        return "not valid JSON"
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    more = len(error.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}{suffix}" if where else f"{message}{suffix}"


def read_items(lines: Iterable[str]) -> tuple[list[ReplayItem], list[str]]:
    """Every good line as an item (in delivery order) and an error per bad line."""
    items: list[ReplayItem] = []
    errors: list[str] = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            items.append(parse_line(text, number))
        except LineError as exc:
            errors.append(str(exc))
    items.sort(key=lambda item: (item.at, item.number))
    return items, errors


@dataclass(slots=True)
class ReplayResult:
    notifications: list[Notification] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Bad lines and refused acknowledgements, each naming its line."""
    items: int = 0
    stats: dict[str, int] = field(default_factory=dict)


def replay(
    fleet: Fleet,
    rules: BusRules,
    items: Iterable[ReplayItem],
    *,
    tail: timedelta = timedelta(hours=1),
    emit: Callable[[Notification], None] | None = None,
) -> ReplayResult:
    """Run the core over ``items`` (in delivery order), ticking at whole seconds.

    After the last item time runs on for ``tail``, so waits and escalations play out.
    ``emit`` sees each notification as it is decided (e.g. to stream it to a file).
    """
    engine = BusSafetyEngine(fleet, rules)
    timeline = Timeline(engine, journal=False)
    result = ReplayResult()

    def send(notifications: list[Notification]) -> None:
        result.notifications.extend(notifications)
        if emit is not None:
            for notification in notifications:
                emit(notification)

    last: datetime | None = None
    for item in items:
        result.items += 1
        last = item.at
        if item.event is not None:
            send(timeline.handle(item.event, item.at))
        elif item.ack is not None:
            send(timeline.advance(item.at))
            try:
                send(
                    timeline.acknowledge(
                        item.ack.fingerprint, item.ack.by, item.ack.reason, item.at
                    )
                )
            except UnknownAlert:
                result.errors.append(
                    f"line {item.number}: no alert with fingerprint {item.ack.fingerprint!r}"
                )
    if last is not None:
        send(timeline.advance(last + tail))
    result.errors.extend(timeline.take_errors())
    result.stats = engine.stats
    return result
