"""Payload models of the iotmon contract (pydantic v2).

Telemetry comes in two shapes on the same topic: one reading per message for
tiny sensors, or a batch of readings for gateways. A batch may carry readings
of child devices the gateway bridges (e.g. Zigbee2MQTT end devices).
"""

from __future__ import annotations

import sys
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NotRequired, cast

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Tag,
    TypeAdapter,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from iotmon_contract.fields import PRINTABLE_PATTERN, UNIT_PATTERN, WireInteger
from iotmon_contract.topics import IDENTIFIER_PATTERN

MAX_PAYLOAD_BYTES = 512 * 1024
"""Largest payload a consumer accepts; larger goes to the dead-letter path.

Sized so that a full batch fits: 5000 gateway readings of about 100 bytes each
(``{"metric":"temperature","value":21.5,"ts":"2026-11-25T12:00:00Z","unit":"degC",
"device":"env-0001"}``). It stays below the broker's ``max_packet_size`` (1 MiB), so an
oversized message reaches the consumer and is dead-lettered with a reason rather than
dropped by the broker."""

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
    str,
    Field(
        min_length=1,
        max_length=16,
        pattern=UNIT_PATTERN,
        description=(
            "Unit of the value, e.g. degC, %, ppm. Printable characters only (no control, "
            "bidirectional or zero-width characters) and no backslash: it is stored as a "
            "tag and shown back."
        ),
    ),
]

TIMESTAMP_PATTERN = (
    r"^(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""RFC 3339 ``date-time`` as the contract takes it: upper-case ``T`` and ``Z``, no leap
second, no year 0. pydantic's own datetime parser also takes ``1767225600``, a space for
``T`` or no seconds, which the published schema refuses; the pattern keeps them in step.
The calendar (no 30 February) is left to the datetime parser and to ``format``."""


class _Timestamp:
    """An aware datetime; on the wire only an RFC 3339 string (the pattern above).

    All in pydantic-core (a pattern-checked string chained into its datetime parser):
    this is checked once per reading on ingest's hot path. From Python it takes an aware
    ``datetime`` object, as the producers build them.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        wire = core_schema.chain_schema(
            [
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=TIMESTAMP_PATTERN, strict=True),
                    custom_error_type="timestamp_format",
                    custom_error_message=(
                        "Input should be an RFC 3339 timestamp with a UTC offset, "
                        "e.g. 2026-11-25T10:00:00Z"
                    ),
                ),
                # The string is known to be RFC 3339 here: the (lax) parser only checks
                # the calendar and builds the datetime.
                core_schema.datetime_schema(tz_constraint="aware", strict=False),
            ]
        )
        return core_schema.json_or_python_schema(
            json_schema=wire, python_schema=core_schema.datetime_schema(tz_constraint="aware")
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}


Timestamp = Annotated[datetime, _Timestamp]


SEQUENCE_MAX = 2**63 - 1
"""Sequence numbers fit a signed 64-bit integer, what most languages and stores keep."""


SequenceNumber = Annotated[int, WireInteger(0, SEQUENCE_MAX, error_type="sequence_type")]
"""A non-negative integer; on the wire a JSON number with no fraction (see WireInteger)."""

_FLOAT_MAX = sys.float_info.max


class ContractModel(BaseModel):
    """Strict: on the wire a number is a JSON number and a timestamp an RFC 3339 string,
    as the published schemas say; from Python a value must already have its type."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True)


# allow_inf_nan and the bounds rather than a Python validator: this field is checked
# once per reading on ingest's hot path, where a Python call per reading costs ~10 %.
# The bounds put "finite" in the published schema too (1e400 parses as infinity).
Value = Annotated[
    float,
    Field(
        allow_inf_nan=False,
        ge=-_FLOAT_MAX,
        le=_FLOAT_MAX,
        description="Measured value; a finite 64-bit float.",
    ),
]


class _ReadingFields(ContractModel):
    metric: Metric
    value: Value
    ts: Timestamp = Field(
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

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "metric": "temperature",
                    "value": 21.5,
                    "ts": "2026-11-25T07:42:10Z",
                    "unit": "degC",
                    "seq": 42,
                }
            ]
        }
    )

    seq: SequenceNumber | None = Field(
        default=None, description="Per-device message sequence, lets consumers spot gaps."
    )


class ReadingBatch(ContractModel):
    """Many readings per message: what a gateway sends."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "readings": [
                        {
                            "metric": "temperature",
                            "value": 21.5,
                            "ts": "2026-11-25T07:42:10Z",
                            "unit": "degC",
                            "device": "env-0001",
                        },
                        {
                            "metric": "humidity",
                            "value": 48.2,
                            "ts": "2026-11-25T08:42:10.250+01:00",
                            "unit": "%",
                            "device": "env-0002",
                        },
                    ],
                    "seq": 7,
                }
            ]
        }
    )

    readings: list[Reading] = Field(min_length=1, max_length=MAX_BATCH_READINGS)
    seq: SequenceNumber | None = None


def _telemetry_shape(value: Any) -> str:
    if isinstance(value, dict):
        return "batch" if "readings" in value else "single"
    return "batch" if isinstance(value, ReadingBatch) else "single"


TelemetryMessage = Annotated[
    Annotated[SingleReading, Tag("single")] | Annotated[ReadingBatch, Tag("batch")],
    Discriminator(_telemetry_shape),
]

_TELEMETRY_ADAPTER: TypeAdapter[SingleReading | ReadingBatch] = TypeAdapter(TelemetryMessage)


_SINGLE_ADAPTER = TypeAdapter(SingleReading)
_BATCH_ADAPTER = TypeAdapter(ReadingBatch)


# -- the same messages as plain dicts, for consumers' hot paths ----------------------
# Validating into TypedDicts skips building a model instance per reading, which is
# over a third of the cost of a gateway batch. They are built from the same field
# types as the models above, and tests/contract/test_wire_dicts.py holds them to
# accepting exactly what the models accept; the models stay the source of truth
# (the JSON Schemas and AsyncAPI are generated from them).

_WIRE_CONFIG = ConfigDict(extra="forbid", strict=True)


class WireReading(TypedDict):
    """A ``Reading`` as validated by ``parse_telemetry_dict``."""

    __pydantic_config__ = _WIRE_CONFIG  # type: ignore[misc]
    metric: Metric
    value: Value
    ts: Timestamp
    unit: NotRequired[Unit | None]
    device: NotRequired[DeviceId | None]


class WireSingle(TypedDict):
    """A ``SingleReading`` as validated by ``parse_telemetry_dict``."""

    __pydantic_config__ = _WIRE_CONFIG  # type: ignore[misc]
    metric: Metric
    value: Value
    ts: Timestamp
    unit: NotRequired[Unit | None]
    seq: NotRequired[SequenceNumber | None]


class WireBatch(TypedDict):
    """A ``ReadingBatch`` as validated by ``parse_telemetry_dict``."""

    __pydantic_config__ = _WIRE_CONFIG  # type: ignore[misc]
    readings: Annotated[list[WireReading], Field(min_length=1, max_length=MAX_BATCH_READINGS)]
    seq: NotRequired[SequenceNumber | None]


_WIRE_SINGLE_ADAPTER = TypeAdapter(WireSingle)
_WIRE_BATCH_ADAPTER = TypeAdapter(WireBatch)


WireMessage = tuple[list[WireReading], None] | tuple[None, WireSingle]


def parse_telemetry_dict(payload: bytes | bytearray | str) -> WireMessage:
    """``parse_telemetry`` for hot paths: ``(readings, None)`` for a batch, ``(None, single)``.

    Accepts exactly what ``parse_telemetry`` accepts and raises its very
    ValidationError (the union produces the error when the fast attempt fails).
    """
    key: Any = '"readings"' if isinstance(payload, str) else b'"readings"'
    try:
        if key in payload:
            return _WIRE_BATCH_ADAPTER.validate_json(payload)["readings"], None
        return None, _WIRE_SINGLE_ADAPTER.validate_json(payload)
    except ValidationError:
        pass
    # Refused, or the key's text sat inside a string: the union decides, and its error
    # is the one raised (a bad payload costs two parses, not four).
    message = _TELEMETRY_ADAPTER.validate_json(payload)
    if isinstance(message, ReadingBatch):
        return [cast(WireReading, r.model_dump()) for r in message.readings], None
    return None, cast(WireSingle, message.model_dump())


def parse_telemetry(payload: bytes | bytearray | str) -> SingleReading | ReadingBatch:
    """Parse and validate a telemetry payload; raises pydantic.ValidationError.

    The union's callable discriminator makes pydantic build the whole document as
    Python objects before validating it, a sixth of a gateway batch's cost. So the
    shape is guessed from the raw text and that model tried alone: with
    ``extra="forbid"`` it accepts exactly what the union would give to it (a batch
    has a top-level ``readings``, a single reading cannot). Anything it refuses goes
    through the union, so errors read the same as ever.
    """
    key: Any = '"readings"' if isinstance(payload, str) else b'"readings"'
    guess = _BATCH_ADAPTER if key in payload else _SINGLE_ADAPTER
    try:
        return guess.validate_json(payload)
    except ValidationError:
        return _TELEMETRY_ADAPTER.validate_json(payload)


def telemetry_json_schema() -> dict[str, Any]:
    return _TELEMETRY_ADAPTER.json_schema()


class DeviceState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class DeviceStatus(ContractModel):
    """Retained availability of a device or agent; the offline form is its last will."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"state": "online", "ts": "2026-11-25T07:00:00Z", "agent": "iotmon-edge/1.1.0"},
                {"state": "offline", "agent": "iotmon-edge/1.1.0"},
            ]
        }
    )

    state: DeviceState
    ts: Timestamp | None = Field(
        default=None, description="When the state was set; absent in a last will."
    )
    agent: str | None = Field(
        default=None,
        max_length=128,
        pattern=PRINTABLE_PATTERN,
        description="Publishing software, printable characters only.",
    )


class DeadLetterReason(StrEnum):
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    SCHEMA = "schema"
    OVERSIZED = "oversized"
    UNKNOWN_DEVICE = "unknown_device"
    BAD_TIMESTAMP = "bad_timestamp"
    STORE_REJECTED = "store_rejected"
    """The store refused a valid message; the detail carries the store's reason."""
    UNAUTHORIZED_DEVICE = "unauthorized_device"
    """A gateway spoke for a device it does not own."""
    RETAINED = "retained"
    """Telemetry or an event published retained, which the contract forbids."""
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """An event whose ``type`` is not one of the contract's event types."""


class DeadLetter(ContractModel):
    """A message a consumer refused, with the reason, republished for inspection."""

    # Lax: written by our own services, and ingest's spool reads its JSON-mode dump back
    # through model_validate (strings for the enum and the datetime).
    model_config = ConfigDict(
        strict=False,
        json_schema_extra={
            "examples": [
                {
                    "service": "ingest",
                    "reason": "schema",
                    "detail": "value: Input should be a valid number",
                    "topic": "iotmon/v1/acme/env-0001/telemetry",
                    "payload_excerpt": '{"metric":"temperature","value":"21.5"}',
                    "payload_bytes": 39,
                    "received_at": "2026-11-25T07:42:10.512Z",
                    "kind": "dead_letter",
                }
            ]
        },
    )

    service: str
    reason: DeadLetterReason
    detail: str = Field(max_length=2000)
    topic: str
    payload_excerpt: str = Field(max_length=1024, description="Start of the payload, lossy UTF-8.")
    payload_bytes: int = Field(ge=0)
    received_at: datetime
    kind: Literal["dead_letter"] = "dead_letter"
