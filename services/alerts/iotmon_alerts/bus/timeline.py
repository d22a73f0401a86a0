"""One way to drive the core through time, shared by the replay and the alert service.

Inputs are taken at the time they arrive; the core is ticked at each whole second at
which it has something due (``next_deadline``), before any input that arrives later;
time never runs backwards (an input stamped before the last tick is taken at that tick).
Because the replay and the live service both go through ``Timeline``, the same inputs at
the same times give the same notifications, at the same times, both ways.

A timeline also keeps a journal of what it took (``take_journal``), from which
``rebuild`` brings a new core to the same state without telling anything again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotmon_alerts.bus.engine import BusSafetyEngine
from iotmon_alerts.bus.events import BusEvent
from iotmon_alerts.bus.journal import Acknowledgement, EntryKind, JournalEntry
from iotmon_alerts.bus.lifecycle import UnknownAlert
from iotmon_alerts.bus.notifications import Notification
from iotmon_contract.payloads import DeviceState


def next_second(value: datetime) -> datetime:
    whole = value.replace(microsecond=0)
    return whole if whole == value else whole + timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    entries: int
    notifications: int
    """What the core decided while rebuilding: already told, so not told again."""
    refused: int
    """Acknowledgements the rebuilt core did not accept (the alert was forgotten)."""


class Timeline:
    """A BusSafetyEngine on a clock that only moves forward; see the module docstring."""

    def __init__(self, engine: BusSafetyEngine, *, journal: bool = True) -> None:
        self._engine = engine
        self._clock: datetime | None = None
        self._keep_journal = journal
        self._journal: list[JournalEntry] = []
        self._errors: list[str] = []

    @property
    def engine(self) -> BusSafetyEngine:
        return self._engine

    @property
    def clock(self) -> datetime | None:
        """The time of the last input or tick (None: nothing yet)."""
        return self._clock

    def advance(self, until: datetime) -> list[Notification]:
        """Tick the core at every whole second up to ``until`` at which something is due."""
        out = self._advance(until)
        if out:
            # The ticks that decided something, so a rebuild stops exactly where they did.
            self._note(JournalEntry(until, EntryKind.ADVANCE))
        return out

    def handle(self, event: BusEvent, at: datetime) -> list[Notification]:
        """An event or availability arriving at ``at``: first what was due before it."""
        out = self._advance(at)
        at = self._arrive(at)
        out.extend(self._engine.handle(event, at))
        kind = EntryKind.STATUS if isinstance(event.payload, DeviceState) else EntryKind.EVENT
        self._note(JournalEntry(at, kind, event))
        return out

    def acknowledge(
        self, fingerprint: str, by: str, reason: str, at: datetime
    ) -> list[Notification]:
        """An operator's acknowledgement; UnknownAlert or ValueError as the core's.

        What was due before ``at`` is decided first and returned with it; a caller that
        must not lose it when the acknowledgement is refused calls ``advance(at)`` first.
        """
        out = self._advance(at)
        at = self._arrive(at)
        out.extend(self._engine.acknowledge(fingerprint, by, reason, at))
        self._note(JournalEntry(at, EntryKind.ACK, ack=Acknowledgement(fingerprint, by, reason)))
        return out

    def take_errors(self) -> list[str]:
        """Deadlines a tick did not move since the last call (a bug of the core; time goes
        on without them)."""
        taken, self._errors = self._errors, []
        return taken

    def take_journal(self) -> list[JournalEntry]:
        """The entries since the last call (the caller stores them)."""
        taken, self._journal = self._journal, []
        return taken

    def rebuild(self, entries: Iterable[JournalEntry]) -> RebuildReport:
        """Take ``entries`` (a journal, oldest first) as if they happened; nothing is told.

        Meant for a new timeline: the state it reaches is the one the journal's own
        timeline had when it wrote its last entry.
        """
        count = told = refused = 0
        for entry in entries:
            count += 1
            if entry.kind is EntryKind.ADVANCE:
                told += len(self._advance(entry.at))
            elif entry.kind is EntryKind.ACK:
                assert entry.ack is not None
                ack = entry.ack
                try:
                    told += len(self.acknowledge(ack.fingerprint, ack.by, ack.reason, entry.at))
                except (UnknownAlert, ValueError):
                    refused += 1
            else:
                assert entry.event is not None
                told += len(self.handle(entry.event, entry.at))
        self._journal = []
        return RebuildReport(count, told, refused)

    def _arrive(self, at: datetime) -> datetime:
        at = at if self._clock is None else max(at, self._clock)
        self._clock = at
        return at

    def _advance(self, until: datetime) -> list[Notification]:
        out: list[Notification] = []
        engine = self._engine
        while (due := engine.next_deadline()) is not None:
            second = next_second(due if self._clock is None else max(due, self._clock))
            if second > until:
                break
            self._clock = second
            out.extend(engine.tick(second))
            after = engine.next_deadline()
            if after is not None and after <= due:
                # a deadline that a tick does not move would spin for ever: a core bug
                self._errors.append(f"the core kept a deadline at {due.isoformat()}")
                break
        return out

    def _note(self, entry: JournalEntry) -> None:
        if self._keep_journal:
            self._journal.append(entry)
