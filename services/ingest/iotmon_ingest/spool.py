"""A local, fsynced spool for batches the store could not take, replayed when it is back.

One file per batch, written to a temporary name, fsynced, renamed and the
folder fsynced: a batch is either wholly in the spool or not at all, so its
messages may be acknowledged as soon as ``put`` returns.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from iotmon_contract import DeadLetter, DeviceState, StatusEvent, ValidatedReading

_SUFFIX = ".batch.json"


@dataclass(slots=True)
class SpooledBatch:
    """What a spool file holds: the store records of one batch."""

    seen_at_ns: int
    readings: list[ValidatedReading]
    statuses: list[StatusEvent]
    dead_letters: list[DeadLetter]

    def encode(self) -> bytes:
        return json.dumps(
            {
                "seen_at_ns": self.seen_at_ns,
                "readings": [list(r) for r in self.readings],
                "statuses": [[s.tenant, s.device, s.state.value, s.ts_ns] for s in self.statuses],
                "dead_letters": [d.model_dump(mode="json") for d in self.dead_letters],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> SpooledBatch:
        raw = json.loads(data)
        return cls(
            seen_at_ns=int(raw["seen_at_ns"]),
            readings=[ValidatedReading(*r) for r in raw["readings"]],
            statuses=[
                StatusEvent(t, d, DeviceState(s), int(ns)) for t, d, s, ns in raw["statuses"]
            ],
            dead_letters=[DeadLetter.model_validate(d) for d in raw["dead_letters"]],
        )


class Spool:
    """Batches in arrival order under ``folder``; ``rejected/`` keeps what the store refused."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._sequence: int | None = None
        self._pending: int | None = None

    @property
    def folder(self) -> Path:
        return self._folder

    def _next_sequence(self) -> int:
        if self._sequence is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            existing = [int(p.name.split(".")[0]) for p in self._files()]
            self._sequence = max(existing, default=0)
            self._pending = len(existing)
        self._sequence += 1
        return self._sequence

    def _files(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        return sorted(p for p in self._folder.iterdir() if p.name.endswith(_SUFFIX))

    def pending(self) -> int:
        """How many batches wait for replay."""
        if self._pending is None:
            self._pending = len(self._files())
        return self._pending

    def put(self, batch: SpooledBatch, *, rejected: bool = False) -> Path:
        """Write a batch durably; returns its file."""
        sequence = self._next_sequence()
        folder = self._folder / "rejected" if rejected else self._folder
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{sequence:020d}{_SUFFIX}"
        temporary = folder / f".{final.name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(batch.encode())
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(final)
        _fsync_folder(folder)
        if not rejected:
            self._pending = self.pending() + 1
        return final

    def oldest(self) -> Iterator[tuple[Path, SpooledBatch | None]]:
        """Spooled batches oldest first; None for a file that cannot be decoded."""
        for path in self._files():
            try:
                yield path, SpooledBatch.decode(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError):
                yield path, None

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        _fsync_folder(self._folder)
        self._pending = max(0, self.pending() - 1)

    def quarantine(self, path: Path) -> Path:
        """Move a file that cannot be replayed out of the way, keeping it for an operator."""
        target = self._folder / "rejected" / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        self._pending = max(0, self.pending() - 1)
        return target


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
