"""YAML config of a Modbus electricity meter (RTU over RS-485, or TCP)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iotmon_devices.drivers.common import DeviceDriverConfig, device_id_field
from iotmon_devices.drivers.registermaps import RegisterMapError, load_register_map
from iotmon_devices.meters.metrics import Medium
from iotmon_devices.simulators.meter_profiles import MeterSimulation


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModbusTcp(_Section):
    transport: Literal["tcp"] = Field("tcp", description="Modbus TCP.")
    host: str = Field("127.0.0.1", min_length=1, max_length=253, description="Meter or gateway.")
    port: int = Field(502, ge=1, le=65535, description="TCP port.")


class ModbusRtu(_Section):
    transport: Literal["rtu"] = Field("rtu", description="Modbus RTU on a serial line.")
    port: str = Field(
        "/dev/ttyUSB0", min_length=1, description="Serial device of the RS-485 adapter."
    )
    baudrate: int = Field(9600, ge=300, le=921_600, description="Line speed (SDM: 2400-38400).")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity: N, E or O.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")
    bytesize: Literal[7, 8] = Field(8, description="Data bits.")


Connection = Annotated[ModbusTcp | ModbusRtu, Field(discriminator="transport")]


class ModbusMeterConfig(DeviceDriverConfig):
    """An electricity meter read over Modbus with a register map (data, not code)."""

    type: Literal["modbus_meter"] = Field("modbus_meter", description="Driver type.")
    device_id: str = device_id_field("meter-1")
    register_map: str = Field(
        "sdm120",
        description="A shipped map (sdm120, sdm630) or the path of a register map YAML.",
    )
    connection: Connection = Field(
        default_factory=ModbusRtu, description="How the meter is reached: rtu or tcp."
    )
    unit_id: int = Field(1, ge=0, le=247, description="Modbus unit (slave) id of the meter.")
    timeout_s: float = Field(1.0, gt=0, le=30, description="Wait for an answer, seconds.")
    request_retries: int = Field(
        1, ge=0, le=5, description="Retries of one request before the read fails."
    )
    max_power_kw: float = Field(
        100.0,
        gt=0,
        le=100_000,
        description="Most the supply can draw: a larger energy step is not believed "
        "(a glitch or a replaced meter).",
    )
    simulate: MeterSimulation | None = Field(
        None,
        description="Serve a simulated meter on loopback (Modbus TCP) and read it, "
        "instead of the connection.",
    )

    @field_validator("simulate")
    @classmethod
    def _electricity(cls, value: MeterSimulation | None) -> MeterSimulation | None:
        if value is not None and value.medium is not Medium.ELECTRICITY:
            raise ValueError("a Modbus meter here is an electricity meter: medium electricity")
        return value

    @field_validator("register_map")
    @classmethod
    def _loadable(cls, value: str) -> str:
        try:
            load_register_map(value)
        except RegisterMapError as exc:
            raise ValueError(str(exc)) from None
        return value
