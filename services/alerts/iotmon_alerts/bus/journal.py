"""The bus rules' input journal: every input the core took, with the time it took it.

The core is deterministic: the same inputs at the same times give the same state. So the
alert service keeps what it fed the core (events, device availability, operator
acknowledgements, and the moments its own ticks decided something) as journal lines in
its database, written in the transaction that records what those inputs decided, and
rebuilds the core from them at start: runs in progress survive a restart, and nothing
is told twice. One line is one JSON object; ``v`` is the format's version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from iotmon_alerts.bus.events import BusEvent
from iotmon_contract.events import DeviceEvent
from iotmon_contract.payloads import DeviceState

JOURNAL_FORMAT = 1
"""Version of a journal line (its ``v``); a reader refuses lines of another version."""


class EntryKind(StrEnum):
    EVENT = "event"
    """A device event, with the device it is about."""
    STATUS = "status"
    """A device's availability (status topic or last will)."""
    ACK = "ack"
    """An operator's acknowledgement of an alert."""
    ADVANCE = "advance"
    """Time passed up to ``at`` and the core's ticks decided something."""


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    fingerprint: str
    by: str
    reason: str


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One input of the core at the time it was taken."""

    at: datetime
    kind: EntryKind
    event: BusEvent | None = None
    """For EVENT and STATUS."""
    ack: Acknowledgement | None = None
    """For ACK."""


class JournalError(ValueError):
    """A journal line that cannot be read (another format version, or damaged)."""


class _Ack(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fingerprint: str = Field(min_length=1, max_length=128)
    by: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=500)


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = Field(description="Format version.")
    at: AwareDatetime = Field(description="When the core took the input.")
    kind: EntryKind
    tenant: str | None = None
    device: str | None = Field(default=None, description="The device the input is about.")
    ts: AwareDatetime | None = Field(default=None, description="The device's time (status).")
    event: DeviceEvent | None = None
    state: DeviceState | None = None
    ack: _Ack | None = None

    @model_validator(mode="after")
    def _complete(self) -> Self:
        needs = {
            EntryKind.EVENT: ("tenant", "device", "event"),
            EntryKind.STATUS: ("tenant", "device", "ts", "state"),
            EntryKind.ACK: ("ack",),
            EntryKind.ADVANCE: (),
        }[self.kind]
        missing = [name for name in needs if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind.value} line needs {', '.join(missing)}")
        return self


def encode(entry: JournalEntry) -> str:
    """The entry as one JSON line."""
    line: dict[str, object] = {"v": JOURNAL_FORMAT, "at": entry.at, "kind": entry.kind}
    event = entry.event
    if event is not None:
        line.update(tenant=event.tenant, device=event.device)
        if isinstance(event.payload, DeviceState):
            line.update(ts=event.ts, state=event.payload)
        else:
            line["event"] = event.payload
    if entry.ack is not None:
        line["ack"] = _Ack(
            fingerprint=entry.ack.fingerprint, by=entry.ack.by, reason=entry.ack.reason
        )
    return _Line.model_validate(line).model_dump_json(exclude_none=True)


def decode(text: str) -> JournalEntry:
    """One JSON line as an entry; JournalError saying what is wrong."""
    try:
        line = _Line.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise JournalError(f"{where or 'line'}: {first['msg']}") from None
    if line.kind is EntryKind.EVENT:
        assert line.tenant is not None
        assert line.device is not None
        assert line.event is not None
        return JournalEntry(
            line.at, line.kind, BusEvent(line.tenant, line.device, line.event.ts, line.event)
        )
    if line.kind is EntryKind.STATUS:
        assert line.tenant is not None
        assert line.device is not None
        assert line.ts is not None
        assert line.state is not None
        return JournalEntry(
            line.at, line.kind, BusEvent(line.tenant, line.device, line.ts, line.state)
        )
    if line.kind is EntryKind.ACK:
        assert line.ack is not None
        ack = Acknowledgement(line.ack.fingerprint, line.ack.by, line.ack.reason)
        return JournalEntry(line.at, line.kind, ack=ack)
    return JournalEntry(line.at, line.kind)
