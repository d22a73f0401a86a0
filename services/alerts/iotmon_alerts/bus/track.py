"""A bus's GPS fixes in device-time order: the fix nearest a moment."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Fix:
    ts: datetime
    lat: float
    lon: float


class Track:
    def __init__(self) -> None:
        self._fixes: list[Fix] = []

    def add(self, fix: Fix) -> None:
        index = bisect.bisect_left(self._fixes, fix.ts, key=lambda f: f.ts)
        if index < len(self._fixes) and self._fixes[index].ts == fix.ts:
            return  # a redelivery
        self._fixes.insert(index, fix)

    def nearest(self, ts: datetime, window: timedelta) -> Fix | None:
        """The fix closest in time to ``ts`` within ``window``; the earlier one on a tie."""
        index = bisect.bisect_left(self._fixes, ts, key=lambda f: f.ts)
        best: Fix | None = None
        for candidate in self._fixes[max(0, index - 1) : index + 1]:
            gap = abs(candidate.ts - ts)
            if gap <= window and (best is None or gap < abs(best.ts - ts)):
                best = candidate
        return best

    def first_after(self, ts: datetime) -> Fix | None:
        index = bisect.bisect_right(self._fixes, ts, key=lambda f: f.ts)
        return self._fixes[index] if index < len(self._fixes) else None

    def last_before(self, ts: datetime) -> Fix | None:
        index = bisect.bisect_left(self._fixes, ts, key=lambda f: f.ts)
        return self._fixes[index - 1] if index > 0 else None

    def prune(self, before: datetime) -> None:
        index = bisect.bisect_left(self._fixes, before, key=lambda f: f.ts)
        # keep one fix before the horizon: where the bus was parked
        del self._fixes[: max(0, index - 1)]
