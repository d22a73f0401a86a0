"""Which points of a refused write the store refuses: write halves until each is known.

When InfluxDB refuses part of a write ("partial write: points beyond retention
policy", "field type conflict", a line it cannot parse) it stores the rest and
names at most one reason. Rather than parse messages that differ between
versions, ingest writes the refused set again in halves: a half the store takes
is stored (writing a point again overwrites it: same series, same timestamp),
a refused half is split again, and below ``LINE_BY_LINE`` items each is written
alone. One bad point among n costs about 2·log2(n) small writes. When the store
says it dropped exactly as many points as a write held, all of them were refused
and that part is not split further (a whole batch beyond the retention policy
costs two writes, not one per point).

No I/O of its own: the caller passes the write function; StoreUnavailable
from it propagates (the caller spools the batch and tries it all again later).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

from iotmon_storage import StoreRefused

T = TypeVar("T")

LINE_BY_LINE = 8
"""At or below this many items, each is written alone instead of in halves."""


class Refusal(NamedTuple, Generic[T]):
    item: T
    reason: str
    """The store's own message for the write that refused this item alone (or with
    others it refused all of)."""


def isolate_refused(
    items: Sequence[T], write: Callable[[Sequence[T]], None], refused: StoreRefused
) -> list[Refusal[T]]:
    """Find the items of a refused write that the store refuses; write all the others.

    ``refused`` is the store's answer to writing ``items`` (with anything else the
    caller wrote alongside): the whole set is not written again. Returns the refused
    items in their original order.
    """
    found: list[Refusal[T]] = []
    if len(items) == 1:
        return [Refusal(items[0], refused.reason)]
    _split(items, write, found)
    return found


def _split(
    items: Sequence[T], write: Callable[[Sequence[T]], None], found: list[Refusal[T]]
) -> None:
    if len(items) <= LINE_BY_LINE:
        parts = [items[i : i + 1] for i in range(len(items))]
    else:
        middle = len(items) // 2
        parts = [items[:middle], items[middle:]]
    for part in parts:
        try:
            write(part)
        except StoreRefused as refusal:
            if len(part) == 1 or refusal.dropped == len(part):
                found.extend(Refusal(item, refusal.reason) for item in part)
            else:
                _split(part, write, found)
