"""The school bus's tag readers on serial ports: the door reader and the cabin scanner.

The door reader sends a line per tag passing the door; each becomes a ``tag_read``
event stamped with the agent's clock when the line arrived (the readers have no
clock of their own). The cabin scanner sweeps on request: when the ignition goes
off or a run ends (events of the agent's other drivers), it is asked to listen for
every tag aboard; each tag heard is a ``sweep_read`` and the end a
``sweep_complete``. A sweep that does not finish, or whose reader reports more
tags than arrived, is a ``sweep_incomplete`` fault and has no ``sweep_complete``:
an unfinished sweep must never read as an empty bus.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from iotmon_contract import Direction, FaultSeverity
from iotmon_devices.base import DriverEvent, EventSink
from iotmon_devices.drivers.serial_config import CabinTagScannerConfig, DoorTagReaderConfig
from iotmon_devices.drivers.serial_lines import BadLine, SerialLineDriver
from iotmon_devices.drivers.session import Clock, utc_now
from iotmon_devices.drivers.tag_protocol import (
    Heartbeat,
    LineError,
    LineErrorKind,
    ReaderError,
    ReaderMessage,
    SweepDone,
    SweepSeen,
    TagPassed,
    encode_line,
    parse_line,
)
from iotmon_devices.faults import DriverFault, FaultCode, FaultTracker

logger = logging.getLogger(__name__)


def _parse(line: bytes) -> ReaderMessage:
    try:
        return parse_line(line)
    except LineError as exc:
        raise BadLine(str(exc), checksum=exc.kind is LineErrorKind.CHECKSUM) from exc


class DoorTagReaderDriver(SerialLineDriver):
    def __init__(
        self,
        config: DoorTagReaderConfig,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, "door_reader", clock=clock, monotonic=monotonic)

    def _line(self, line: bytes) -> None:
        message = _parse(line)
        if isinstance(message, TagPassed):
            data: dict[str, object] = {"tag": message.tag, "rssi": message.rssi}
            if message.direction is not None:
                data["direction"] = Direction(message.direction)
            self._emit("tag_read", self._clock(), **data)
        elif isinstance(message, ReaderError):
            logger.warning("%s reports: %s", self._device, message.text)
        elif not isinstance(message, Heartbeat):
            raise BadLine(f"unexpected {type(message).__name__} from a door reader", checksum=False)


@dataclass(slots=True)
class _Sweep:
    sweep_id: str
    requested_at: datetime
    started: float | None = None
    """Monotonic time the SWEEP command was sent (None: not yet)."""
    reads: int = 0


class CabinTagScannerDriver(SerialLineDriver):
    def __init__(
        self,
        config: CabinTagScannerConfig,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, "cabin_scanner", clock=clock, monotonic=monotonic)
        self._config = config
        self._lock = threading.Lock()
        self._sweep: _Sweep | None = None
        self._numbers = itertools.count(1)
        self._sweep_faults = FaultTracker(config.device_id, "cabin_sweep", None)
        self.sweeps_completed = 0

    def attach(self, sink: EventSink) -> None:
        super().attach(sink)
        self._sweep_faults.attach(sink)

    def observe(self, event: DriverEvent) -> None:
        triggers = self._config.sweep_on
        ignition_off = event.type == "ignition" and event.data.get("on") is False
        if ("ignition_off" in triggers and ignition_off) or (
            "run_end" in triggers and event.type == "run_end"
        ):
            self.request_sweep(event.ts)

    def request_sweep(self, at: datetime) -> str:
        """Ask for a sweep (from any thread); the session thread sends it. Returns its id."""
        sweep_id = f"{self._device}.{at:%Y%m%dT%H%M%S}.{next(self._numbers)}"
        with self._lock:
            self._sweep = _Sweep(sweep_id, at)
        return sweep_id

    def _session_started(self) -> None:
        with self._lock:
            sweep = self._sweep
            if sweep is not None:
                # The port was reopened mid-sweep: the reader forgot it; ask again.
                sweep.started, sweep.reads = None, 0

    def _tick(self) -> None:
        with self._lock:
            sweep = self._sweep
            if sweep is None:
                return
            now = self._monotonic()
            if sweep.started is None:
                sweep.started = now
                command = encode_line("SWEEP", sweep.sweep_id, f"{self._config.sweep_duration_s:g}")
            elif now - sweep.started > self._config.sweep_timeout_s:
                self._sweep = None
                command = None
                self._sweep_failed(sweep, f"no DONE within {self._config.sweep_timeout_s}s")
            else:
                return
        if command is not None:
            self._write(command)

    def _line(self, line: bytes) -> None:
        message = _parse(line)
        if isinstance(message, SweepSeen):
            with self._lock:
                sweep = self._sweep
                if sweep is None or message.sweep_id != sweep.sweep_id:
                    logger.info("%s: read of another sweep (%s) ignored", self._device, message)
                    return
                sweep.reads += 1
            self._emit(
                "sweep_read",
                self._clock(),
                sweep_id=message.sweep_id,
                tag=message.tag,
                rssi=message.rssi,
            )
        elif isinstance(message, SweepDone):
            self._done(message)
        elif isinstance(message, ReaderError):
            logger.warning("%s reports: %s", self._device, message.text)
        elif not isinstance(message, Heartbeat):
            raise BadLine(
                f"unexpected {type(message).__name__} from a cabin scanner", checksum=False
            )

    def _done(self, message: SweepDone) -> None:
        with self._lock:
            sweep = self._sweep
            if sweep is None or message.sweep_id != sweep.sweep_id:
                return
            self._sweep = None
        if message.count != sweep.reads:
            self._sweep_failed(
                sweep, f"reader heard {message.count} tags, {sweep.reads} reads arrived"
            )
            return
        now = self._clock()
        self._emit("sweep_complete", now, sweep_id=sweep.sweep_id, reads=sweep.reads)
        self.sweeps_completed += 1
        self._sweep_faults.recovered(now)

    def _sweep_failed(self, sweep: _Sweep, why: str) -> None:
        fault = DriverFault(
            FaultCode.SWEEP_INCOMPLETE,
            f"sweep {sweep.sweep_id}: {why}; the bus is not known to be empty",
            FaultSeverity.ERROR,
        )
        # Each failed sweep is an episode of its own: clear the last one first.
        self._sweep_faults.recovered(self._clock())
        self._sweep_faults.failed(fault, self._clock())
