"""A local, fsynced spool for batches the store could not take, replayed when it is back.

One file per batch, written to a temporary name, fsynced, renamed and the
folder fsynced: a batch is either wholly in the spool or not at all, so its
messages may be acknowledged as soon as ``put`` returns. A ``put`` that fails
(a full disk, the optional byte bound, a folder that cannot be written) removes
its temporary file and raises ``SpoolFull``: the caller keeps the batch, and its
messages stay unacknowledged with the broker.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter

from iotmon_contract import (
    DeadLetter,
    DeviceEvent,
    DeviceState,
    StatusEvent,
    ValidatedEvent,
    ValidatedReading,
)

logger = logging.getLogger(__name__)

EVENT_ADAPTER: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent)

_SUFFIX = ".batch.json"
_TEMPORARY = ".tmp"
_OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
QUARANTINE = "rejected"
"""Sub-folder for spool files that cannot be read back, kept for an operator."""


SPOOL_FORMAT = 2
"""Version of a spool file's JSON. 1 (no ``format`` key): readings, statuses and dead
letters; 2 adds ``format`` and device ``events``. Files of every earlier version are read."""


@dataclass(slots=True)
class SpooledBatch:
    """What a spool file holds: the store records of one batch."""

    seen_at_ns: int
    readings: Sequence[ValidatedReading]
    statuses: list[StatusEvent]
    dead_letters: list[DeadLetter]
    events: list[ValidatedEvent] = field(default_factory=list)

    def encode(self) -> bytes:
        return json.dumps(
            {
                "format": SPOOL_FORMAT,
                "seen_at_ns": self.seen_at_ns,
                "readings": [list(r) for r in self.readings],
                "statuses": [[s.tenant, s.device, s.state.value, s.ts_ns] for s in self.statuses],
                "dead_letters": [d.model_dump(mode="json") for d in self.dead_letters],
                # The event model carries the rest of the envelope (type, seq, ts).
                "events": [
                    [e.tenant, e.device, e.ts_ns, e.event.model_dump(mode="json")]
                    for e in self.events
                ],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> SpooledBatch:
        raw = json.loads(data)
        version = raw.get("format", 1)
        if version > SPOOL_FORMAT:
            raise ValueError(f"spool format {version} is newer than this ingest's {SPOOL_FORMAT}")
        events = []
        for tenant, device, ts_ns, body in raw.get("events", []):
            event = EVENT_ADAPTER.validate_json(json.dumps(body))
            events.append(ValidatedEvent(tenant, device, event.type, event.seq, int(ts_ns), event))
        return cls(
            seen_at_ns=int(raw["seen_at_ns"]),
            readings=[ValidatedReading(*r) for r in raw["readings"]],
            statuses=[
                StatusEvent(t, d, DeviceState(s), int(ns)) for t, d, s, ns in raw["statuses"]
            ],
            dead_letters=[DeadLetter.model_validate(d) for d in raw["dead_letters"]],
            events=events,
        )


class SpoolFull(Exception):
    """A batch could not be made durable in the spool; the message says why.

    ``full``: out of space (the disk, a quota or ``max_bytes``) rather than a folder
    that cannot be written at all (permissions, a file in the way).
    """

    def __init__(self, message: str, *, full: bool) -> None:
        super().__init__(message)
        self.full = full


class Spool:
    """Batches in arrival order under ``folder``; ``rejected/`` keeps unreadable files.

    ``max_bytes`` bounds the batch files' total size (None: the disk is the bound).
    ``open`` scans the folder once (sequence, count, bytes) and removes temporary
    files a killed process left behind; the other methods open it if needed.
    """

    def __init__(self, folder: Path, *, max_bytes: int | None = None) -> None:
        self._folder = folder
        self._max_bytes = max_bytes
        self._sequence = 0
        self._pending = 0
        self._bytes = 0
        self._opened = False

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def max_bytes(self) -> int | None:
        return self._max_bytes

    def open(self) -> None:
        """Scan the folder; remove stale temporary files. Idempotent."""
        if self._opened:
            return
        for folder in (self._folder, self._folder / QUARANTINE):
            if not folder.is_dir():
                continue
            for stale in folder.glob(f".*{_SUFFIX}{_TEMPORARY}"):
                # A put interrupted by a crash: its batch was never acknowledged.
                stale.unlink(missing_ok=True)
                logger.info("removed %s, left by an interrupted spool write", stale)
        files = self._files()
        self._sequence = max((_sequence_of(p) for p in files), default=0)
        quarantined = self._folder / QUARANTINE
        if quarantined.is_dir():
            # Quarantined files keep their names: new ones must not reuse them.
            names = (_sequence_of(p) for p in quarantined.glob(f"*{_SUFFIX}"))
            self._sequence = max(self._sequence, max(names, default=0))
        self._pending = len(files)
        self._bytes = sum(_size(p) for p in files)
        self._opened = True

    def _files(self) -> list[Path]:
        if not self._folder.is_dir():
            return []
        return sorted(p for p in self._folder.iterdir() if p.name.endswith(_SUFFIX))

    def pending(self) -> int:
        """How many batches wait for replay."""
        self.open()
        return self._pending

    def pending_bytes(self) -> int:
        """The waiting batches' total file size."""
        self.open()
        return self._bytes

    def put(self, batch: SpooledBatch) -> Path:
        """Write a batch durably and return its file, or raise SpoolFull (nothing left behind)."""
        self.open()
        data = batch.encode()
        if self._max_bytes is not None and self._bytes + len(data) > self._max_bytes:
            raise SpoolFull(
                f"spool_max_bytes reached: {self._bytes:,} bytes spooled, "
                f"{len(data):,} more would pass {self._max_bytes:,}",
                full=True,
            )
        final = self._folder / f"{self._sequence + 1:020d}{_SUFFIX}"
        temporary = self._folder / f".{final.name}{_TEMPORARY}"
        renamed = False
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            with temporary.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(final)
            renamed = True
            _fsync_folder(self._folder)
        except OSError as exc:
            # Half-written, or renamed but not durably: neither may stay behind.
            _remove_quietly(final if renamed else temporary)
            raise SpoolFull(
                f"cannot write {self._folder}: {exc}", full=exc.errno in _OUT_OF_SPACE
            ) from exc
        self._sequence += 1
        self._pending += 1
        self._bytes += len(data)
        return final

    def oldest(self) -> Iterator[tuple[Path, SpooledBatch | None]]:
        """Spooled batches oldest first; None for a file that cannot be decoded."""
        for path in self._files():
            try:
                yield path, SpooledBatch.decode(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError):
                yield path, None

    def remove(self, path: Path) -> None:
        self.open()
        size = _size(path)
        path.unlink(missing_ok=True)
        _fsync_folder(self._folder)
        self._pending = max(0, self._pending - 1)
        self._bytes = max(0, self._bytes - size)

    def quarantine(self, path: Path) -> Path:
        """Move a file that cannot be replayed out of the way, keeping it for an operator."""
        self.open()
        size = _size(path)
        target = self._folder / QUARANTINE / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        self._pending = max(0, self._pending - 1)
        self._bytes = max(0, self._bytes - size)
        return target


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except (FileNotFoundError, NotADirectoryError):
        pass
    except OSError as exc:
        logger.warning("could not remove %s after a failed spool write: %s", path, exc)


def _sequence_of(path: Path) -> int:
    try:
        return int(path.name.split(".")[0])
    except ValueError:
        return 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
