"""Drivers that hold a port open in a thread of their own and send events as they come.

Serial tag readers, a GPS receiver and GPIO inputs do not wait for the agent's
interval: a ``SessionDriver`` opens its port, runs a session (reading lines, or
waiting while GPIO callbacks fire) until it fails or the agent stops, and then
closes it, reports the fault once, waits out the backoff and opens it again. The
first sign of life after a failure (``_working``) clears the fault.
"""

from __future__ import annotations

import logging
import threading
from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from iotmon_devices.base import DeviceReading, Driver, DriverEvent, DriverOutput, EventSink
from iotmon_devices.faults import Backoff, DriverFault, FaultCode, FaultTracker, RetryPolicy

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class SessionDriver(Driver):
    """Base of event drivers with a reconnecting thread; subclasses open, run and close."""

    def __init__(
        self, device: str, component: str, retry: RetryPolicy, clock: Clock = utc_now
    ) -> None:
        self._device = device
        self._component = component
        self._clock = clock
        self._tracker = FaultTracker(device, component, None)
        self._backoff = Backoff(retry)
        self._sink: EventSink | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._sessions = 0

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._device]

    @property
    def active_fault(self) -> DriverFault | None:
        return self._tracker.active

    @property
    def sessions(self) -> int:
        """How many times the port was opened (1 + reconnects)."""
        return self._sessions

    def attach(self, sink: EventSink) -> None:
        self._sink = sink
        self._tracker.attach(sink)

    def read(self, now: datetime) -> list[DeviceReading]:
        """Event drivers publish no readings of their own."""
        return []

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"{self._component}-{self._device}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._interrupt()
        thread.join(10)
        if thread.is_alive():
            logger.warning("%s %s did not stop within 10s", self._component, self._device)

    # -- for subclasses -------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Open the port; raise DriverFault when it is not there."""

    @abstractmethod
    def _session(self) -> None:
        """Run until ``self._stopping`` is set (return) or the port fails (raise)."""

    @abstractmethod
    def _close(self) -> None:
        """Close what ``_open`` opened; safe after a half-done open."""

    def _interrupt(self) -> None:
        """Make a blocked ``_session`` return soon (called from ``stop``)."""

    def _emit(self, event_type: str, ts: datetime, **data: Any) -> None:
        self._send(DriverEvent(self._device, event_type, ts, data))

    def _send(self, item: DriverOutput) -> None:
        sink = self._sink
        if sink is not None:
            sink(item)

    def _working(self) -> None:
        """The device showed it works (a line arrived, the pin opened): clear any fault."""
        self._backoff.reset()
        if self._tracker.recovered(self._clock()):
            logger.info("%s %s works again", self._component, self._device)

    def _failed(self, fault: DriverFault) -> None:
        if self._tracker.failed(fault, self._clock()):
            logger.warning(
                "%s %s failed (%s): %s", self._component, self._device, fault.code, fault.detail
            )

    # -- the thread -----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._sessions += 1
                self._open()
                self._session()
            except DriverFault as fault:
                self._failed(fault)
            except Exception as exc:  # a driver bug must not end the thread for good
                logger.exception("%s %s failed unexpectedly", self._component, self._device)
                self._failed(DriverFault(FaultCode.DRIVER_ERROR, f"{type(exc).__name__}: {exc}"))
            finally:
                try:
                    self._close()
                except Exception:  # a port that failed may fail to close too
                    logger.debug("closing %s failed", self._device, exc_info=True)
            if self._stopping.is_set():
                break
            self._stopping.wait(self._backoff.next_delay())
