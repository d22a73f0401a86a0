"""Electricity meters over Modbus RTU or TCP (pymodbus), read through a register map.

Every publish interval the driver reads the map's blocks, decodes each value and
publishes it under the map's metric name; the import energy register goes through
the meter accounting (``energy_kwh_total`` and ``energy_kwh``). Failures become
faults: no connection or no serial port is an unplugged meter, no answer a timeout
(a CRC error when a damaged frame did arrive: pymodbus drops it and waits), a
Modbus exception reply a bus error, a NaN or infinite value bad data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from pymodbus.client import ModbusSerialClient, ModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from iotmon_devices.base import DeviceReading, EventSink
from iotmon_devices.drivers.modbus_config import ModbusMeterConfig, ModbusRtu, ModbusTcp
from iotmon_devices.drivers.registermaps import (
    ReadBlock,
    RegisterFunction,
    RegisterMap,
    load_register_map,
)
from iotmon_devices.faults import DriverFault, FaultCode
from iotmon_devices.meters.account import MeterAccount
from iotmon_devices.meters.accounting import CumulativeRegister
from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.modbus_twin import ModbusTwinServer
from iotmon_devices.supervision import PolledDevice

ENERGY_RESOLUTION_KWH = 0.01
"""Display resolution of an SDM's energy register; smaller decreases are read noise."""


def modbus_crc(frame: bytes) -> int:
    """CRC-16/MODBUS (reflected 0x8005, initial 0xFFFF); sent low byte first."""
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def damaged_rtu_frame(received: bytes) -> bool:
    """True when ``received`` holds a whole RTU frame whose CRC does not match."""
    if len(received) < 5:
        return False
    # A read reply is unit, function, byte count, data, CRC; an exception reply is 5 bytes.
    length = 5 if received[1] & 0x80 else 5 + received[2]
    if len(received) < length:
        return False
    frame = received[:length]
    return modbus_crc(frame[:-2]) != int.from_bytes(frame[-2:], "little")


class ModbusMeterDriver(PolledDevice):
    def __init__(self, config: ModbusMeterConfig) -> None:
        self._config = config
        self._map: RegisterMap = load_register_map(config.register_map)
        self._client: ModbusTcpClient | ModbusSerialClient | None = None
        self._twin: ModbusTwinServer | None = None
        self._received = bytearray()
        self._damaged_frames = 0
        energy = self._map.energy_register
        self._account = (
            MeterAccount(
                config.device_id,
                Medium.ELECTRICITY,
                CumulativeRegister(
                    max_rate_per_h=config.max_power_kw,
                    rollover=energy.rollover,
                    resolution=ENERGY_RESOLUTION_KWH,
                ),
            )
            if energy is not None
            else None
        )

    @property
    def config(self) -> ModbusMeterConfig:
        return self._config

    @property
    def register_map(self) -> RegisterMap:
        return self._map

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    @property
    def twin(self) -> ModbusTwinServer | None:
        """The simulated meter served in ``simulate`` mode."""
        return self._twin

    def attach(self, sink: EventSink) -> None:
        if self._account is not None:
            self._account.attach(sink)

    def start(self) -> None:
        simulation = self._config.simulate
        if simulation is not None and self._twin is None:
            self._twin = ModbusTwinServer(
                self._map,
                simulation=simulation,
                unit_id=self._config.unit_id,
                device=self._config.device_id,
            )
            self._twin.start_tcp()

    def stop(self) -> None:
        self.disconnect()
        twin, self._twin = self._twin, None
        if twin is not None:
            twin.stop()

    def connect(self) -> None:
        client = self._client = self._new_client()
        if not client.connect():
            raise DriverFault(FaultCode.UNPLUGGED, f"cannot connect to {self._where()}")

    def disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            cast(Any, client).close()  # unannotated in pymodbus

    def read(self, now: datetime) -> list[DeviceReading]:
        registers: dict[int, int] = {}
        for block in self._map.blocks():
            words = self._read_block(block)
            registers.update(zip(range(block.address, block.end), words, strict=True))
        device = self._config.device_id
        readings: list[DeviceReading] = []
        for value in self._map.values:
            number = self._map.decode(value, registers)
            if not math.isfinite(number):
                raise DriverFault(
                    FaultCode.BAD_DATA, f"{self._where()}: {value.metric} reads {number}"
                )
            readings.append(DeviceReading(device, value.metric, round(number, 4), value.unit, now))
        energy = self._map.energy_register
        if energy is not None and self._account is not None:
            total = self._map.decode(energy.as_value(), registers)
            if not math.isfinite(total) or total < 0:
                raise DriverFault(FaultCode.BAD_DATA, f"{self._where()}: energy reads {total}")
            readings.extend(self._account.readings(total, now))
        return readings

    def _read_block(self, block: ReadBlock) -> list[int]:
        client = self._client
        if client is None:
            raise RuntimeError("read before connect")
        damaged_before = self._damaged_frames
        unit = self._config.unit_id
        try:
            if self._map.function is RegisterFunction.INPUT:
                response = client.read_input_registers(
                    block.address, count=block.count, device_id=unit
                )
            else:
                response = client.read_holding_registers(
                    block.address, count=block.count, device_id=unit
                )
        except ConnectionException as exc:
            raise DriverFault(FaultCode.UNPLUGGED, f"{self._where()}: {exc}") from exc
        except ModbusIOException as exc:
            if self._damaged_frames > damaged_before:
                raise DriverFault(
                    FaultCode.CRC_ERROR,
                    f"{self._where()}: answer to {block.count} registers at "
                    f"{block.address:#06x} failed its CRC",
                ) from exc
            raise DriverFault(
                FaultCode.TIMEOUT,
                f"{self._where()}: no answer to {block.count} registers at "
                f"{block.address:#06x} within {self._config.timeout_s}s",
            ) from exc
        except ModbusException as exc:
            raise DriverFault(FaultCode.BUS_ERROR, f"{self._where()}: {exc}") from exc
        except OSError as exc:
            raise DriverFault(FaultCode.UNPLUGGED, f"{self._where()}: {exc}") from exc
        if response.isError():
            raise DriverFault(
                FaultCode.BUS_ERROR,
                f"{self._where()}: exception reply to registers at {block.address:#06x}: "
                f"{response}",
            )
        words = list(response.registers)
        if len(words) != block.count:
            raise DriverFault(
                FaultCode.BAD_DATA,
                f"{self._where()}: {len(words)} registers in reply, asked for {block.count}",
            )
        return words

    def _new_client(self) -> ModbusTcpClient | ModbusSerialClient:
        config = self._config
        if self._twin is not None:
            host, port = self._twin.address
            return ModbusTcpClient(
                host,
                port=port,
                timeout=config.timeout_s,
                retries=config.request_retries,
                reconnect_delay=0,
            )
        connection = config.connection
        if isinstance(connection, ModbusTcp):
            return ModbusTcpClient(
                connection.host,
                port=connection.port,
                timeout=config.timeout_s,
                retries=config.request_retries,
                # Reconnects are ours (backoff with fault events), not pymodbus's.
                reconnect_delay=0,
            )
        return ModbusSerialClient(
            connection.port,
            baudrate=connection.baudrate,
            parity=connection.parity,
            stopbits=connection.stopbits,
            bytesize=connection.bytesize,
            timeout=config.timeout_s,
            retries=config.request_retries,
            reconnect_delay=0,
            trace_packet=self._trace_rtu,
        )

    def _trace_rtu(self, sending: bool, data: bytes) -> bytes:
        """Keeps what each request received, to tell a damaged answer from none."""
        if sending:
            self._received.clear()
        else:
            self._received.extend(data)
            if damaged_rtu_frame(bytes(self._received)):
                self._damaged_frames += 1
                self._received.clear()
        return data

    def _where(self) -> str:
        connection = self._config.connection
        if self._twin is not None:
            host, port = self._twin.address
            return f"simulated meter at {host}:{port}"
        if isinstance(connection, ModbusRtu):
            return f"unit {self._config.unit_id} on {connection.port}"
        return f"unit {self._config.unit_id} at {connection.host}:{connection.port}"
