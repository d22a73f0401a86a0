"""Door passages: tag reads merged into passages (duplicates never flip a child), and
who the passages say is aboard at a moment."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from iotmon_contract.events import Direction


@dataclass(slots=True, eq=False)
class Passage:
    """One pass of a tag through the door: its reads within the duplicate window."""

    tag: str
    direction: Direction | None
    first: datetime
    last: datetime
    arrived: datetime
    """When the first of its reads reached the core."""
    notified: bool = False


class DoorLog:
    """A bus's door passages per tag, in device-time order."""

    def __init__(self, window: timedelta) -> None:
        self._window = window
        self._by_tag: dict[str, list[Passage]] = {}

    def add(
        self, tag: str, direction: Direction | None, ts: datetime, now: datetime
    ) -> Passage | None:
        """Record a read; the new passage, or None when it repeats a passage already seen.

        A read repeats a passage when it is within the window of the passage's reads and
        its direction agrees (or either side does not know the direction): the reader's
        2 to 4 reads of one passage, or a redelivery, in any order.
        """
        passages = self._by_tag.setdefault(tag, [])
        w = self._window
        for passage in passages:
            if passage.first - w <= ts <= passage.last + w and (
                direction is None or passage.direction is None or passage.direction == direction
            ):
                passage.first = min(passage.first, ts)
                passage.last = max(passage.last, ts)
                if passage.direction is None:
                    passage.direction = direction
                return None
        passage = Passage(tag, direction, ts, ts, now)
        bisect.insort(passages, passage, key=lambda p: p.first)
        return passage

    def tags(self) -> Iterator[str]:
        return iter(self._by_tag)

    def passages(self, tag: str) -> list[Passage]:
        return self._by_tag.get(tag, [])

    def aboard_after(self, tag: str, since: datetime | None, until: datetime) -> bool:
        """Whether the tag's passages in (since, until] leave it aboard (starting off).

        A passage without a direction toggles: it is a boarding when the tag was off.
        """
        aboard = False
        for passage in self._by_tag.get(tag, ()):
            if passage.first > until:
                break
            if since is not None and passage.first <= since:
                continue
            aboard = _after(aboard, passage.direction)
        return aboard

    def aboard(self, since: datetime | None, until: datetime) -> set[str]:
        return {tag for tag in self._by_tag if self.aboard_after(tag, since, until)}

    def direction_of(self, passage: Passage, since: datetime | None) -> Direction:
        """The passage's direction, or the one its place in the run implies."""
        if passage.direction is not None:
            return passage.direction
        before = passage.first - timedelta(microseconds=1)
        was_aboard = self.aboard_after(passage.tag, since, before)
        return Direction.OUT if was_aboard else Direction.IN

    def read_after(self, tag: str, ts: datetime) -> bool:
        """Whether any read of the tag is later than ``ts`` (it passed the door since)."""
        return any(passage.last > ts for passage in self._by_tag.get(tag, ()))

    def prune(self, before: datetime) -> None:
        for tag in list(self._by_tag):
            kept = [p for p in self._by_tag[tag] if p.last >= before]
            if kept:
                self._by_tag[tag] = kept
            else:
                del self._by_tag[tag]


def _after(aboard: bool, direction: Direction | None) -> bool:
    if direction is Direction.IN:
        return True
    if direction is Direction.OUT:
        return False
    return not aboard
