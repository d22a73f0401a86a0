"""Payload models of the iotmon contract (pydantic v2).

Telemetry comes in two shapes on the same topic: one reading per message for
tiny sensors, or a batch of readings for gateways. A batch may carry readings
of child devices the gateway bridges (e.g. Zigbee2MQTT end devices).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
)

from iotmon_contract.topics import IDENTIFIER_PATTERN

MAX_PAYLOAD_BYTES = 256 * 1024
"""Largest telemetry payload a consumer accepts; larger goes to the dead-letter path."""

MAX_BATCH_READINGS = 5000

METRIC_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"

Metric = Annotated[
    str,
    Field(
        pattern=METRIC_PATTERN,
        description="Metric name in snake_case, e.g. temperature, humidity, co2, power_w.",
        examples=["temperature"],
    ),
]
DeviceId = Annotated[
    str, Field(pattern=IDENTIFIER_PATTERN, description="Device id, unique within a tenant.")
]
Unit = Annotated[
    str, Field(min_length=1, max_length=16, description="Unit of the value, e.g. degC, %, ppm.")
]


class ContractModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _ReadingFields(ContractModel):
    metric: Metric
    # allow_inf_nan rather than a Python validator: this field is checked once per
    # reading on ingest's hot path, where a Python call per reading costs ~10 %.
    value: float = Field(allow_inf_nan=False, description="Measured value; must be finite.")
    ts: AwareDatetime = Field(
        description="When the value was measured (RFC 3339 with a UTC offset), not when sent."
    )
    unit: Unit | None = None


class Reading(_ReadingFields):
    """One reading inside a batch."""

    device: DeviceId | None = Field(
        default=None,
        description="Child device this reading belongs to; defaults to the topic's device.",
    )


class SingleReading(_ReadingFields):
    """One reading per message: what a tiny sensor sends."""

    seq: int | None = Field(
        default=None, ge=0, description="Per-device message sequence, lets consumers spot gaps."
    )


class ReadingBatch(ContractModel):
    """Many readings per message: what a gateway sends."""

    readings: list[Reading] = Field(min_length=1, max_length=MAX_BATCH_READINGS)
    seq: int | None = Field(default=None, ge=0)


def _telemetry_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "readings" in value else "single"
    return "batch" if isinstance(value, ReadingBatch) else "single"


TelemetryMessage = Annotated[
    Annotated[SingleReading, Tag("single")] | Annotated[ReadingBatch, Tag("batch")],
    Discriminator(_telemetry_shape),
]

_TELEMETRY_ADAPTER: TypeAdapter[SingleReading | ReadingBatch] = TypeAdapter(TelemetryMessage)


def parse_telemetry(payload: bytes | str) -> SingleReading | ReadingBatch:
    """Parse and validate a telemetry payload; raises pydantic.ValidationError."""
    return _TELEMETRY_ADAPTER.validate_json(payload)


def telemetry_json_schema() -> dict[str, Any]:
    return _TELEMETRY_ADAPTER.json_schema()


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(ContractModel):
    """Retained availability of a device or agent; the offline form is its last will."""

    state: DeviceState
    ts: AwareDatetime | None = Field(
        default=None, description="When the state was set; absent in a last will."
    )
    agent: str | None = Field(default=None, max_length=128, description="Publishing software.")


class DeadLetterReason(StrEnum):
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    OVERSIZED = "oversized"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_TIMESTAMP = "bad_timestamp"


class DeadLetter(ContractModel):
    """A message a consumer refused, with the reason, republished for inspection."""

    service: str
    reason: DeadLetterReason
    detail: str = Field(max_length=2000)
    topic: str
    payload_excerpt: str = Field(max_length=1024, description="Start of the payload, lossy UTF-8.")
    payload_bytes: int = Field(ge=0)
    received_at: datetime
    kind: Literal["dead_letter"] = "dead_letter"
