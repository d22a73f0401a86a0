"""Serial devices that send lines (pyserial): open, read lines, reconnect on failure.

A port that cannot be opened or fails while read (a pulled USB adapter) is an
``unplugged`` fault, silence longer than ``silence_timeout_s`` a ``timeout`` (the
port is reopened: a wedged adapter often comes back), ``max_bad_lines`` damaged
lines in a row a ``crc_error``. Any good line clears the fault.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Callable

import serial

from iotmon_devices.drivers.serial_config import SerialDeviceConfig
from iotmon_devices.drivers.session import Clock, SessionDriver, utc_now
from iotmon_devices.drivers.tag_protocol import MAX_LINE_BYTES
from iotmon_devices.faults import DriverFault, FaultCode

logger = logging.getLogger(__name__)

READ_TIMEOUT_S = 0.1
"""How long one read waits: also how soon ``stop`` is noticed."""


class BadLine(ValueError):
    """A line that arrived damaged (``checksum``) or makes no sense."""

    def __init__(self, detail: str, *, checksum: bool) -> None:
        super().__init__(detail)
        self.checksum = checksum


class SerialLineDriver(SessionDriver):
    def __init__(
        self,
        config: SerialDeviceConfig,
        component: str,
        *,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config.device_id, component, config.retry, clock)
        self._serial_config = config
        self._monotonic = monotonic
        self._port: serial.Serial | None = None
        self.bad_lines = 0
        """Lines dropped as damaged or malformed, in all."""
        self.lines = 0

    def _open(self) -> None:
        config = self._serial_config
        try:
            self._port = serial.Serial(config.port, config.baudrate, timeout=READ_TIMEOUT_S)
        except (serial.SerialException, OSError) as exc:
            raise DriverFault(FaultCode.UNPLUGGED, f"cannot open {config.port}: {exc}") from exc

    def _close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()

    def _write(self, data: bytes) -> None:
        port = self._port
        if port is None:
            return
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            raise DriverFault(
                FaultCode.UNPLUGGED, f"{self._serial_config.port}: write failed: {exc}"
            ) from exc

    def _session(self) -> None:
        port = self._port
        assert port is not None
        config = self._serial_config
        buffer = bytearray()
        last_line = self._monotonic()
        bad_in_a_row = 0
        self._session_started()
        while not self._stopping.is_set():
            self._tick()
            try:
                chunk = port.read(max(1, port.in_waiting))
            except (serial.SerialException, OSError) as exc:
                raise DriverFault(
                    FaultCode.UNPLUGGED, f"{config.port}: read failed: {exc}"
                ) from exc
            if not chunk:
                silent = self._monotonic() - last_line
                if silent >= config.silence_timeout_s:
                    raise DriverFault(
                        FaultCode.TIMEOUT, f"{config.port}: nothing received for {silent:.1f}s"
                    )
                continue
            buffer.extend(chunk)
            while (end := buffer.find(b"\n")) >= 0:
                line, buffer = bytes(buffer[: end + 1]), buffer[end + 1 :]
                last_line = self._monotonic()
                self.lines += 1
                try:
                    self._line(line)
                except BadLine as bad:
                    self.bad_lines += 1
                    bad_in_a_row += 1
                    logger.debug("%s: dropped line: %s", self._device, bad)
                    if bad.checksum and bad_in_a_row >= config.max_bad_lines:
                        raise DriverFault(
                            FaultCode.CRC_ERROR,
                            f"{config.port}: {bad_in_a_row} damaged lines in a row ({bad})",
                        ) from bad
                    continue
                bad_in_a_row = 0
                self._working()
            if len(buffer) > MAX_LINE_BYTES:
                # Line noise with no newline: drop it rather than grow without bound.
                self.bad_lines += 1
                buffer.clear()

    def _session_started(self) -> None:
        """The port is open (e.g. re-send a request the last session did not finish)."""

    def _tick(self) -> None:
        """Called every read round (about every READ_TIMEOUT_S): check deadlines."""

    @abstractmethod
    def _line(self, line: bytes) -> None:
        """Handle one line; raise BadLine for a damaged or senseless one."""
