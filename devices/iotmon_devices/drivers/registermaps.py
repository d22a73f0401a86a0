"""Modbus register maps as data: which register holds which metric, in which encoding.

A meter model is a YAML file (``iotmon_devices/registermaps/<name>.yaml`` ships the
Eastron SDM120 and SDM630); another meter needs a new file, not new code. A map is
validated when loaded, and errors name the file and the key path.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iotmon_contract.payloads import METRIC_PATTERN
from iotmon_devices.meters.metrics import METER_METRICS, Medium

MAX_REGISTERS_PER_REQUEST = 125
"""The Modbus limit for one read request."""


class RegisterMapError(ValueError):
    """A register map that cannot be used; the message names the file and key path."""


class RegisterFunction(StrEnum):
    INPUT = "input"
    """Function 04, read input registers (measurements on most meters)."""
    HOLDING = "holding"
    """Function 03, read holding registers."""


class WordOrder(StrEnum):
    BIG = "big"
    """High word first (Eastron, most meters)."""
    LITTLE = "little"
    """Low word first."""


class ValueType(StrEnum):
    FLOAT32 = "float32"
    UINT32 = "uint32"
    INT32 = "int32"
    UINT16 = "uint16"
    INT16 = "int16"

    @property
    def registers(self) -> int:
        return 1 if self in {ValueType.UINT16, ValueType.INT16} else 2


_STRUCT = {
    ValueType.FLOAT32: ">f",
    ValueType.UINT32: ">I",
    ValueType.INT32: ">i",
    ValueType.UINT16: ">H",
    ValueType.INT16: ">h",
}

Address = Annotated[int, Field(ge=0, le=0xFFFF, description="Register address as requested.")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterValue(_Model):
    metric: str = Field(pattern=METRIC_PATTERN, description="Metric name it is published as.")
    address: Address
    type: ValueType = Field(ValueType.FLOAT32, description="Encoding of the value.")
    scale: float = Field(1.0, description="Multiplied with the raw value (e.g. 0.1 for dV).")
    unit: str | None = Field(None, min_length=1, max_length=16, description="Unit published.")

    @property
    def end(self) -> int:
        return self.address + self.type.registers


class EnergyRegister(_Model):
    """The cumulative register the meter accounting turns into interval consumption."""

    address: Address
    type: ValueType = Field(ValueType.FLOAT32, description="Encoding of the value.")
    scale: float = Field(1.0, gt=0, description="Multiplied with the raw value to give kWh.")
    unit: str = Field("kWh", pattern="^kWh$", description="Always kWh after scaling.")
    rollover: float | None = Field(
        None, gt=0, description="Where the register wraps to zero, in kWh (None: it does not)."
    )

    def as_value(self) -> RegisterValue:
        total = METER_METRICS[Medium.ELECTRICITY].total
        return RegisterValue(
            metric=total, address=self.address, type=self.type, scale=self.scale, unit=self.unit
        )


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` registers from ``address``."""

    address: int
    count: int

    @property
    def end(self) -> int:
        return self.address + self.count


class RegisterMap(_Model):
    model: str = Field(min_length=1, max_length=100, description="Meter make and model.")
    function: RegisterFunction = Field(RegisterFunction.INPUT, description="Register table.")
    word_order: WordOrder = Field(WordOrder.BIG, description="Word order of 32-bit values.")
    max_registers_per_read: int = Field(
        MAX_REGISTERS_PER_REQUEST,
        ge=1,
        le=MAX_REGISTERS_PER_REQUEST,
        description="Most registers the meter answers in one request.",
    )
    max_gap_registers: int = Field(
        0,
        ge=0,
        le=MAX_REGISTERS_PER_REQUEST,
        description="Unmapped registers a request may span to save a round trip "
        "(0 for meters that refuse reads of unmapped addresses).",
    )
    values: list[RegisterValue] = Field(default_factory=list, description="Measurements.")
    energy_register: EnergyRegister | None = Field(
        None, description="Import active energy, kWh: energy_kwh_total and energy_kwh."
    )

    @model_validator(mode="after")
    def _consistent(self) -> RegisterMap:
        seen: dict[str, int] = {}
        taken: dict[int, str] = {}
        for value in self.all_values():
            if value.metric in seen:
                raise ValueError(f"metric {value.metric!r} is mapped twice")
            seen[value.metric] = value.address
            for register in range(value.address, value.end):
                if register in taken:
                    raise ValueError(
                        f"register {register:#06x} of {value.metric} is also {taken[register]}"
                    )
                taken[register] = value.metric
        interval = METER_METRICS[Medium.ELECTRICITY].interval
        if interval in seen:
            raise ValueError(f"metric {interval!r} is computed from energy_register, not read")
        if not self.values and self.energy_register is None:
            raise ValueError("the map reads nothing: add values or an energy_register")
        return self

    def all_values(self) -> list[RegisterValue]:
        extra = [self.energy_register.as_value()] if self.energy_register else []
        return [*self.values, *extra]

    def blocks(self) -> list[ReadBlock]:
        """The read requests covering every value, merged across small gaps."""
        blocks: list[ReadBlock] = []
        for value in sorted(self.all_values(), key=lambda v: v.address):
            last = blocks[-1] if blocks else None
            if (
                last is not None
                and value.address - last.end <= self.max_gap_registers
                and value.end - last.address <= self.max_registers_per_read
            ):
                blocks[-1] = ReadBlock(last.address, value.end - last.address)
            else:
                blocks.append(ReadBlock(value.address, value.end - value.address))
        return blocks

    def decode(self, value: RegisterValue, registers: dict[int, int]) -> float:
        """The value from the registers read (address -> 16-bit word)."""
        words = [registers[address] for address in range(value.address, value.end)]
        if self.word_order is WordOrder.LITTLE:
            words.reverse()
        raw = b"".join(word.to_bytes(2, "big") for word in words)
        (number,) = struct.unpack(_STRUCT[value.type], raw)
        return float(number) * value.scale

    def encode(self, value: RegisterValue, number: float) -> list[int]:
        """The registers a meter stores ``number`` in (for twins and tests)."""
        raw_number: float | int = number / value.scale
        if value.type is not ValueType.FLOAT32:
            raw_number = round(raw_number)
        raw = struct.pack(_STRUCT[value.type], raw_number)
        words = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
        if self.word_order is WordOrder.LITTLE:
            words.reverse()
        return words


def shipped_register_maps() -> list[str]:
    """Names of the maps in the package (``sdm120``, ``sdm630``)."""
    folder = resources.files("iotmon_devices.registermaps")
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_register_map(name_or_path: str) -> RegisterMap:
    """A shipped map by name, or a YAML file by path; raises RegisterMapError."""
    if name_or_path in shipped_register_maps():
        resource = resources.files("iotmon_devices.registermaps") / f"{name_or_path}.yaml"
        return parse_register_map(resource.read_text(encoding="utf-8"), f"{name_or_path}.yaml")
    path = Path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        known = ", ".join(shipped_register_maps())
        raise RegisterMapError(
            f"{path}: cannot read register map ({exc.strerror or exc}); shipped maps: {known}"
        ) from None
    return parse_register_map(text, str(path))


def parse_register_map(text: str, source: str) -> RegisterMap:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RegisterMapError(f"{source}: invalid YAML: {exc}") from None
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(part) for part in error["loc"]) or "<top level>"
            lines.append(f"{source}: {where}: {error['msg'].removeprefix('Value error, ')}")
        raise RegisterMapError("\n".join(lines)) from None
