"""Simulated serial devices of a school bus on ptys: a tag reader's firmware and a GPS.

Each runs a thread behind a ``PtyPort`` and speaks the real wire format (the tag
readers' line protocol, NMEA 0183 with checksums), so the drivers are tested
through pyserial and their parsers as on the bus. Faults: silence, damaged lines,
lost sweep reads, a sweep that never finishes, and the port unplugged.
"""

from __future__ import annotations

import os
import select
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Self

from iotmon_devices.drivers.tag_protocol import encode_line
from iotmon_devices.simulators.serial_ports import PtyPort


def damage(line: bytes) -> bytes:
    """The line with one bit flipped inside its body: the checksum no longer matches."""
    damaged = bytearray(line)
    damaged[2] ^= 0x01
    return bytes(damaged)


class _LineTwin:
    """A thread writing lines to a pty, with the faults both twins share."""

    def __init__(self, port: PtyPort, period_s: float) -> None:
        self.port = port
        self.period_s = period_s
        self.silent = False
        """Send nothing (the driver times out)."""
        self.damaged_lines = 0
        """Damage the next this-many lines."""
        self.sent = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.port.plug()
        self._thread = threading.Thread(target=self._run, name="serial-twin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.port.unplug()

    def send(self, line: bytes) -> None:
        with self._lock:
            if self.silent:
                return
            if self.damaged_lines > 0:
                self.damaged_lines -= 1
                line = damage(line)
            self.port.write(line)
            self.sent += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._periodic()
            self._receive(self.period_s)

    def _periodic(self) -> None:
        """Lines sent every period."""

    def _command(self, line: bytes) -> None:
        """A line from the driver."""

    def _receive(self, timeout: float) -> None:
        master = self.port.master_fd
        if master < 0:
            self._stop.wait(timeout)
            return
        try:
            ready, _, _ = select.select([master], [], [], timeout)
            data = os.read(master, 4096) if ready else b""
        except (OSError, ValueError):
            self._stop.wait(timeout)  # unplugged meanwhile
            return
        for line in data.splitlines():
            if line.strip():
                self._command(line)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class TagReaderTwin(_LineTwin):
    """A door reader or cabin scanner: heartbeats, passages on demand, sweeps on command."""

    def __init__(self, port: PtyPort, *, heartbeat_s: float = 0.2) -> None:
        super().__init__(port, heartbeat_s)
        self.aboard: dict[str, float] = {}
        """Tags a sweep hears, with their RSSI."""
        self.lost_sweep_reads = 0
        """SEEN lines of the next sweep that never arrive (the DONE count still has them)."""
        self.ignore_sweeps = False
        """Never answer a SWEEP (the driver times the sweep out)."""
        self.sweeps: list[str] = []
        self._uptime = 0

    def passage(self, tag: str, rssi: float, direction: str | None = None) -> None:
        fields = ["TAG", tag, f"{rssi:g}"]
        if direction is not None:
            fields.append(direction.upper())
        self.send(encode_line(*fields))

    def _periodic(self) -> None:
        self._uptime += 1
        self.send(encode_line("HB", str(self._uptime)))

    def _command(self, line: bytes) -> None:
        fields = line.strip().lstrip(b"$").split(b"*")[0].decode("ascii", "replace").split(",")
        if fields[0] != "SWEEP" or len(fields) < 2:
            return
        sweep_id = fields[1]
        self.sweeps.append(sweep_id)
        if self.ignore_sweeps:
            return
        lost = self.lost_sweep_reads
        self.lost_sweep_reads = 0
        for index, (tag, rssi) in enumerate(sorted(self.aboard.items())):
            if index >= lost:
                self.send(encode_line("SEEN", sweep_id, tag, f"{rssi:g}"))
        self.send(encode_line("DONE", sweep_id, str(len(self.aboard))))


@dataclass(frozen=True, slots=True)
class Fix:
    lat: float
    lon: float
    speed_kmh: float = 0.0
    heading_deg: float = 0.0
    satellites: int = 9
    hdop: float = 0.9


def _nmea(body: str) -> bytes:
    checksum = 0
    for byte in body.encode("ascii"):
        checksum ^= byte
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def _degrees(value: float, width: int, positive: str, negative: str) -> tuple[str, str]:
    hemisphere = positive if value >= 0 else negative
    value = abs(value)
    whole = int(value)
    minutes = (value - whole) * 60.0
    return f"{whole:0{width}d}{minutes:07.4f}", hemisphere


def nmea_sentences(fix: Fix | None, at: datetime) -> list[bytes]:
    """GGA and RMC for ``fix`` at ``at`` (UTC); ``None`` is no fix (status V)."""
    at = at.astimezone(UTC)
    hhmmss = f"{at:%H%M%S}.{at.microsecond // 10000:02d}"
    if fix is None:
        return [
            _nmea(f"GPGGA,{hhmmss},,,,,0,00,99.9,,M,,M,,"),
            _nmea(f"GPRMC,{hhmmss},V,,,,,,,{at:%d%m%y},,,N"),
        ]
    lat, ns = _degrees(fix.lat, 2, "N", "S")
    lon, ew = _degrees(fix.lon, 3, "E", "W")
    knots = fix.speed_kmh / 1.852
    return [
        _nmea(
            f"GPGGA,{hhmmss},{lat},{ns},{lon},{ew},1,{fix.satellites:02d},{fix.hdop:.1f},"
            "12.0,M,47.0,M,,"
        ),
        _nmea(
            f"GPRMC,{hhmmss},A,{lat},{ns},{lon},{ew},{knots:.2f},{fix.heading_deg:.1f},"
            f"{at:%d%m%y},,,A"
        ),
    ]


class GpsTwin(_LineTwin):
    """A receiver sending GGA and RMC every period for the fix ``route`` gives."""

    def __init__(
        self,
        port: PtyPort,
        route: Callable[[datetime], Fix | None],
        *,
        period_s: float = 0.1,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(port, period_s)
        self.route = route
        self.clock = clock

    def _periodic(self) -> None:
        at = self.clock()
        for sentence in nmea_sentences(self.route(at), at):
            self.send(sentence)
