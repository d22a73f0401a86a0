"""A simulated Modbus electricity meter served by a real pymodbus server (TCP or RTU).

The registers follow the same register map the driver reads (float32 words where
the map says), filled on every request from a ``SimulatedMeter``: voltage, current,
power and power factor of the moment, and the import energy register integrating
the school's load. Faults act on the wire: the server can be stopped (connection
refused), answer nothing (timeout), answer with a damaged CRC (RTU) or with a
Modbus exception.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from iotmon_devices.drivers.registermaps import RegisterMap
from iotmon_devices.meters.metrics import METER_METRICS, Medium
from iotmon_devices.simulators.meter_profiles import MeterSimulation, SimulatedMeter
from iotmon_devices.simulators.noise import derive, gaussian, text_key

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_PHASES = ("l1", "l2", "l3")
_PHASE_SHARE = (0.36, 0.33, 0.31)  # phases are never loaded quite evenly


def meter_values(meter: SimulatedMeter, at: datetime, key: int) -> dict[str, float]:
    """What an SDM meter measures at ``at``: per phase and totals, by metric name."""
    kw = meter.rate(at)
    noise = gaussian(derive(key, int(at.timestamp())))
    voltage = 230.0 + 2.0 * noise
    power_factor = 0.93 + 0.02 * math.tanh(noise)
    watts = kw * 1000.0
    values: dict[str, float] = {
        "voltage_v": voltage,
        "power_w": watts,
        "current_a": watts / (voltage * power_factor),
        "apparent_power_va": watts / power_factor,
        "reactive_power_var": watts * math.tan(math.acos(power_factor)),
        "power_factor": power_factor,
        "frequency_hz": 50.0 + 0.02 * noise,
        "energy_export_kwh_total": 0.0,
        METER_METRICS[Medium.ELECTRICITY].total: meter.total(at),
    }
    for phase, share in zip(_PHASES, _PHASE_SHARE, strict=True):
        phase_watts = watts * share
        values[f"voltage_{phase}_v"] = voltage + share
        values[f"power_{phase}_w"] = phase_watts
        values[f"current_{phase}_a"] = phase_watts / (voltage * power_factor)
        values[f"power_factor_{phase}"] = power_factor
    return values


class ModbusTwinServer:
    """A meter on a pymodbus server in a background thread, with faults on the wire.

    ``values`` gives the metric values at an instant (default: ``meter_values`` of a
    ``SimulatedMeter``); metrics the map has and ``values`` lacks read as 0.
    """

    def __init__(
        self,
        register_map: RegisterMap,
        *,
        simulation: MeterSimulation | None = None,
        values: Callable[[datetime], Mapping[str, float]] | None = None,
        unit_id: int = 1,
        clock: Clock = lambda: datetime.now(UTC),
        device: str = "meter-twin",
    ) -> None:
        if values is None:
            meter = SimulatedMeter(simulation or MeterSimulation(), device)
            key = text_key(device)

            def simulated(at: datetime) -> Mapping[str, float]:
                return meter_values(meter, at, key)

            values = simulated
        self.register_map = register_map
        self.values = values
        self.unit_id = unit_id
        self.clock = clock
        self.silent = False
        """Answer nothing (the client times out)."""
        self.corrupt_responses = 0
        """Damage the CRC of the next this-many responses (RTU)."""
        self.exception_responses = 0
        """Answer the next this-many requests with a Modbus exception (device busy)."""
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._address: tuple[str, int] | None = None
        self._serial: dict[str, Any] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where it serves Modbus TCP."""
        if self._address is None:
            raise RuntimeError("not serving Modbus TCP")
        return self._address

    # -- lifecycle ---------------------------------------------------------------------

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve Modbus TCP; returns the address (a free port when ``port`` is 0)."""
        if port == 0:
            port = free_tcp_port(host)
        self._address = (host, port)
        self._run(self._start_tcp)
        return self._address

    def start_rtu(self, port: str, *, baudrate: int = 9600, parity: str = "N") -> None:
        """Serve Modbus RTU on a serial device (a pty of a ``NullModem`` in tests)."""
        self._serial = {"port": port, "baudrate": baudrate, "parity": parity}
        self._run(self._start_rtu)

    def stop(self) -> None:
        """Stop serving (a TCP client now gets connection refused)."""
        loop, server = self._loop, self._server
        if loop is None:
            return
        if server is not None:
            # pymodbus leaves shutdown() unannotated.
            shutdown = cast(Any, server).shutdown()
            asyncio.run_coroutine_threadsafe(shutdown, loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = self._thread = self._server = None

    def restart(self) -> None:
        """Serve again where it served before (the meter is back)."""
        self.stop()
        if self._serial is not None:
            self._run(self._start_rtu)
        else:
            self._run(self._start_tcp)

    def __enter__(self) -> ModbusTwinServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- the server ----------------------------------------------------------------------

    def _run(self, starter: Callable[[], Any]) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=serve, name="modbus-twin", daemon=True)
        self._thread.start()
        ready.wait(10)
        self._server = asyncio.run_coroutine_threadsafe(starter(), loop).result(10)

    def _device(self) -> SimDevice:
        end = max(value.end for value in self.register_map.all_values())
        return SimDevice(
            id=self.unit_id,
            simdata=[SimData(address=0, count=end + 1, values=0, datatype=DataType.REGISTERS)],
            action=self._on_request,
        )

    async def _start_tcp(self) -> ModbusTcpServer:
        assert self._address is not None
        server = ModbusTcpServer(
            self._device(), address=self._address, trace_packet=self._trace_packet
        )
        await server.serve_forever(background=True)
        return server

    async def _start_rtu(self) -> ModbusSerialServer:
        assert self._serial is not None
        server = ModbusSerialServer(
            self._device(),
            port=self._serial["port"],
            baudrate=self._serial["baudrate"],
            parity=self._serial["parity"],
            trace_packet=self._trace_packet,
        )
        await server.serve_forever(background=True)
        return server

    async def _on_request(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if self.exception_responses > 0:
            self.exception_responses -= 1
            return ExcCodes.DEVICE_BUSY
        values = self.values(self.clock())
        for value in self.register_map.all_values():
            words = self.register_map.encode(value, values.get(value.metric, 0.0))
            offset = value.address - start_address
            registers[offset : offset + len(words)] = words
        return None

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self.silent:
            return b""
        if self.corrupt_responses > 0 and data:
            self.corrupt_responses -= 1
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data


def free_tcp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
