"""Polled drivers under supervision: a failure is a fault event and a retry, never a crash.

``SupervisedDriver`` wraps a driver whose ``read`` talks to hardware (I2C, 1-Wire,
Modbus, sysfs). It opens the driver lazily, so a device missing at boot is a fault
and a retry rather than an agent that does not start; on a failure it closes the
driver, sends the fault (once per episode) and skips reads until the backoff has
passed; the first good read after that sends the fault again with ``cleared``.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Sequence
from datetime import datetime, timedelta

from iotmon_devices.base import DeviceReading, Driver, DriverEvent, EventSink
from iotmon_devices.faults import Backoff, DriverFault, FaultCode, FaultTracker, RetryPolicy

logger = logging.getLogger(__name__)


class PolledDevice(Driver):
    """A driver whose device its supervisor opens, and closes and reopens around failures.

    ``connect`` and ``read`` raise ``DriverFault`` (or ``OSError`` and the like, which
    the supervisor reports as ``driver_error``); ``disconnect`` releases what
    ``connect`` opened. ``start``/``stop`` remain the agent's once-per-run hooks.
    """

    @abstractmethod
    def connect(self) -> None:
        """Open the bus or port and check the device is there."""

    @abstractmethod
    def disconnect(self) -> None:
        """Close what ``connect`` opened; safe to call when it failed half-way."""

    def stop(self) -> None:
        self.disconnect()


class SupervisedDriver(Driver):
    """Runs ``inner`` so that its failures become fault events with backoff and recovery."""

    def __init__(
        self,
        inner: PolledDevice,
        *,
        device: str,
        component: str,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._inner = inner
        self._device = device
        self._component = component
        self._tracker = FaultTracker(device, component, None)
        self._backoff = Backoff(retry or RetryPolicy())
        self._open = False
        self._retry_at: datetime | None = None

    @property
    def inner(self) -> PolledDevice:
        return self._inner

    @property
    def device_ids(self) -> Sequence[str]:
        return self._inner.device_ids

    @property
    def active_fault(self) -> DriverFault | None:
        return self._tracker.active

    @property
    def retry_at(self) -> datetime | None:
        """When the next attempt is due after a failure; None while the device works."""
        return self._retry_at

    def attach(self, sink: EventSink) -> None:
        self._tracker.attach(sink)
        self._inner.attach(sink)

    def observe(self, event: DriverEvent) -> None:
        self._inner.observe(event)

    def start(self) -> None:
        """The inner driver's own start; the first ``read`` connects (module docstring)."""
        self._inner.start()

    def stop(self) -> None:
        self._open = False
        self._inner.stop()

    def read(self, now: datetime) -> list[DeviceReading]:
        if self._retry_at is not None and not self._due(now):
            return []
        try:
            if not self._open:
                # Marked open first: a connect that fails half-way is disconnected too.
                self._open = True
                self._inner.connect()
            readings = self._inner.read(now)
        except DriverFault as fault:
            self._failed(fault, now)
            return []
        except Exception as exc:  # a driver bug must not stop the agent or the other drivers
            logger.exception("%s driver of %s failed unexpectedly", self._component, self._device)
            self._failed(DriverFault(FaultCode.DRIVER_ERROR, f"{type(exc).__name__}: {exc}"), now)
            return []
        self._retry_at = None
        self._backoff.reset()
        if self._tracker.recovered(now):
            logger.info("%s %s works again", self._component, self._device)
        return readings

    def _due(self, now: datetime) -> bool:
        assert self._retry_at is not None
        # A wall clock set back (NTP after a boot without RTC) must not postpone the
        # retry by the size of the jump: never wait longer than the longest backoff.
        wait = self._retry_at - now
        return wait <= timedelta(0) or wait > timedelta(seconds=self._backoff.max_s)

    def _failed(self, fault: DriverFault, now: datetime) -> None:
        delay = self._backoff.next_delay()
        self._retry_at = now + timedelta(seconds=delay)
        if self._tracker.failed(fault, now):
            logger.warning(
                "%s %s failed (%s): %s; retrying in %gs",
                self._component,
                self._device,
                fault.code.value,
                fault.detail,
                delay,
            )
        else:
            logger.debug("%s %s still failing: %s", self._component, self._device, fault)
        if self._open:
            self._close()

    def _close(self) -> None:
        self._open = False
        try:
            self._inner.disconnect()
        except Exception:  # closing a broken bus may fail too; the retry reopens it
            logger.debug("closing %s %s failed", self._component, self._device, exc_info=True)
