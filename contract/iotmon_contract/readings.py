"""Validated readings: one as a named tuple, many as columns.

``ReadingColumns`` is what bulk validation produces and what line protocol is encoded
from: six lists instead of a tuple per reading, so a gateway's 50,000 readings are six
objects the garbage collector tracks rather than 50,000, and the encoder formats
straight from the columns. It is also a ``Sequence[ValidatedReading]`` (a reading built
on access), so code that handles the rare cases (a refused write halved until the
culprit is found, a spooled batch) reads it as rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import NamedTuple, overload

_new_tuple = tuple.__new__


class ValidatedReading(NamedTuple):
    tenant: str
    device: str
    metric: str
    value: float
    unit: str | None
    ts_ns: int


@dataclass(slots=True, eq=False)
class ReadingColumns(Sequence[ValidatedReading]):
    """Readings as parallel lists, all of one length."""

    tenant: list[str] = field(default_factory=list)
    device: list[str] = field(default_factory=list)
    metric: list[str] = field(default_factory=list)
    value: list[float] = field(default_factory=list)
    unit: list[str | None] = field(default_factory=list)
    ts_ns: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, readings: Iterable[ValidatedReading]) -> ReadingColumns:
        if isinstance(readings, ReadingColumns):
            return readings
        rows = list(readings)
        if not rows:
            return cls()
        tenant, device, metric, value, unit, ts_ns = zip(*rows, strict=True)
        return cls(list(tenant), list(device), list(metric), list(value), list(unit), list(ts_ns))

    def columns(
        self,
    ) -> tuple[list[str], list[str], list[str], list[float], list[str | None], list[int]]:
        return self.tenant, self.device, self.metric, self.value, self.unit, self.ts_ns

    def extend(self, readings: Iterable[ValidatedReading]) -> None:
        other = ReadingColumns.of(readings)
        for mine, theirs in zip(self.columns(), other.columns(), strict=True):
            mine.extend(theirs)  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.ts_ns)

    @overload
    def __getitem__(self, index: int) -> ValidatedReading: ...

    @overload
    def __getitem__(self, index: slice) -> ReadingColumns: ...

    def __getitem__(self, index: int | slice) -> ValidatedReading | ReadingColumns:
        if isinstance(index, slice):
            return ReadingColumns(
                self.tenant[index],
                self.device[index],
                self.metric[index],
                self.value[index],
                self.unit[index],
                self.ts_ns[index],
            )
        return _new_tuple(ValidatedReading, (column[index] for column in self.columns()))

    def __iter__(self) -> Iterator[ValidatedReading]:
        return map(_new_tuple, repeat(ValidatedReading), zip(*self.columns(), strict=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ReadingColumns({list(self)!r})"


__all__ = ["ReadingColumns", "ValidatedReading"]
