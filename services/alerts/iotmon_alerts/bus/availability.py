"""Whether a device was up, over time: its status (online/offline) and its faults, from
events that may arrive out of order."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Source(StrEnum):
    STATUS = "status"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Outage:
    start: datetime
    end: datetime | None
    """None while it lasts."""


@dataclass(slots=True)
class DeviceAvailability:
    """Transitions per source, by device time; the device is down when any source is."""

    transitions: dict[Source, list[tuple[datetime, bool]]] = field(default_factory=dict)
    _outages: list[Outage] | None = None
    """Cached: asked for on every tick, changed only by a status or a fault."""

    def record(self, source: Source, ts: datetime, up: bool) -> None:
        timeline = self.transitions.setdefault(source, [])
        bisect.insort(timeline, (ts, up), key=lambda t: t[0])
        self._outages = None

    def _up_at(self, source: Source, ts: datetime) -> bool:
        timeline = self.transitions.get(source, [])
        index = bisect.bisect_right(timeline, ts, key=lambda t: t[0])
        return timeline[index - 1][1] if index else True

    def up_at(self, ts: datetime) -> bool:
        return all(self._up_at(source, ts) for source in self.transitions)

    def outages(self) -> list[Outage]:
        """Every down period, merged across sources, in time order."""
        if self._outages is None:
            self._outages = self._find_outages()
        return self._outages

    def _find_outages(self) -> list[Outage]:
        times = sorted({ts for timeline in self.transitions.values() for ts, _ in timeline})
        found: list[Outage] = []
        start: datetime | None = None
        for ts in times:
            up = self.up_at(ts)
            if not up and start is None:
                start = ts
            elif up and start is not None:
                found.append(Outage(start, ts))
                start = None
        if start is not None:
            found.append(Outage(start, None))
        return found

    def current_outage(self) -> Outage | None:
        """The outage the latest transition leaves open, if any."""
        outages = self.outages()
        return outages[-1] if outages and outages[-1].end is None else None

    def prune(self, before: datetime) -> None:
        for source, timeline in self.transitions.items():
            index = bisect.bisect_left(timeline, before, key=lambda t: t[0])
            # keep the last transition before the horizon: the state there
            self.transitions[source] = timeline[max(0, index - 1) :]
        self._outages = None
