"""Device events: things that happened at a moment, one per message on ``.../event``.

Faults, tag reads, ignition and positions, a driver's walk-through check, button
actions, video detections and the video analytics built on them (intrusion, line
crossing, loitering, crowding, occupancy). Every event carries the envelope (``type``, ``ts``,
``seq``, ``device``) and the fields of its type; ``type`` selects the model.

To add a type: derive a model from ``EventEnvelope`` with ``type: Literal["name"]``
and add it to ``DeviceEvent`` at the bottom. ``parse_event``, ``EVENT_TYPES``, the
JSON Schema and the AsyncAPI document follow from that union.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, TypeAdapter
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from iotmon_contract.fields import OPAQUE_ID_PATTERN, PRINTABLE_PATTERN, WireInteger
from iotmon_contract.payloads import (
    SEQUENCE_MAX,
    ContractModel,
    DeviceId,
    SequenceNumber,
    Timestamp,
)
from iotmon_contract.topics import IDENTIFIER_PATTERN

TAG_PATTERN = r"^[A-Za-z0-9:_.-]{1,64}$"
"""RFID/NFC/BLE tag ids as readers print them: EPC hex, MAC-like, dotted."""

LABEL_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
"""Object classes of a detector, in snake_case: person, bus, license_plate."""

MAX_DETAIL_CHARS = 500

_EXAMPLE_TS = "2026-11-25T07:42:10Z"

Name = Annotated[str, Field(pattern=IDENTIFIER_PATTERN)]
OpaqueId = Annotated[str, Field(pattern=OPAQUE_ID_PATTERN)]
TagId = Annotated[str, Field(pattern=TAG_PATTERN, description="Tag id as the reader reports it.")]
Rssi = Annotated[
    float,
    Field(allow_inf_nan=False, ge=-150, le=30, description="Received signal strength in dBm."),
]
Fraction = Annotated[float, Field(allow_inf_nan=False, ge=0, le=1)]

MEDIA_URL_PATTERN = r"^https?://[!-~]+$"
"""An http(s) URL of printable ASCII without spaces: what a dashboard or an alert links to."""

MAX_MEDIA_URL_CHARS = 2048

Label = Annotated[str, Field(pattern=LABEL_PATTERN, description="Object class, e.g. person.")]
Confidence = Annotated[
    float, Field(allow_inf_nan=False, ge=0, le=1, description="Detector confidence, 0 to 1.")
]
# A list, not a 4-tuple: a tuple's schema is prefixItems (JSON Schema 2020-12), which
# the AsyncAPI schema format (a superset of draft 07) does not have.
Box = Annotated[
    list[Fraction],
    Field(
        min_length=4,
        max_length=4,
        description="Bounding box [x, y, width, height] as fractions of the frame, "
        "x and y of the top-left corner.",
    ),
]
TrackId = Annotated[int, WireInteger(0, SEQUENCE_MAX)]
Count = Annotated[int, WireInteger(0, SEQUENCE_MAX)]
MediaUrl = Annotated[str, Field(max_length=MAX_MEDIA_URL_CHARS, pattern=MEDIA_URL_PATTERN)]


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


class EventEnvelope(ContractModel):
    """Fields every event has; each event type adds its own."""

    type: str = Field(description="Event type; selects the fields that follow.")
    ts: Timestamp = Field(
        description="When it happened on the device (RFC 3339 with a UTC offset), not when sent."
    )
    seq: SequenceNumber = Field(
        description="Per-device event sequence (of the topic's device); lets consumers "
        "spot lost or repeated events."
    )
    device: DeviceId | None = Field(
        default=None,
        description="Child device the event belongs to; defaults to the topic's device.",
    )


class FaultSeverity(StrEnum):
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


class FaultEvent(EventEnvelope):
    """A driver fault or an agent warning; the same fault with ``cleared`` ends it."""

    model_config = _examples(
        {
            "type": "fault",
            "ts": _EXAMPLE_TS,
            "seq": 17,
            "component": "modbus",
            "code": "timeout",
            "detail": "no answer from unit 3 after 3 retries",
            "severity": "error",
        },
        {
            "type": "fault",
            "ts": _EXAMPLE_TS,
            "seq": 18,
            "component": "modbus",
            "code": "timeout",
            "severity": "error",
            "cleared": True,
        },
    )

    type: Literal["fault"]
    component: Name = Field(description="Part that failed, e.g. modbus, camera-2, agent.")
    code: OpaqueId = Field(description="Fault code, stable for one kind of fault.")
    detail: Annotated[str, Field(max_length=MAX_DETAIL_CHARS, pattern=PRINTABLE_PATTERN)] | None = (
        Field(default=None, description="Human-readable detail; printable characters only.")
    )
    severity: FaultSeverity
    cleared: bool = Field(default=False, description="True when the fault has gone away.")


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class TagReadEvent(EventEnvelope):
    """A tag passed a door reader (e.g. a child's badge boarding a bus)."""

    model_config = _examples(
        {
            "type": "tag_read",
            "ts": _EXAMPLE_TS,
            "seq": 230,
            "tag": "E2801160600002084A3C1F2B",
            "rssi": -61.5,
            "direction": "in",
        }
    )

    type: Literal["tag_read"]
    tag: TagId
    rssi: Rssi
    direction: Direction | None = Field(
        default=None, description="Passage direction when the reader can tell."
    )


class SweepReadEvent(EventEnvelope):
    """A tag seen by a sweep: an inventory of the tags present (e.g. after a run)."""

    model_config = _examples(
        {
            "type": "sweep_read",
            "ts": _EXAMPLE_TS,
            "seq": 231,
            "sweep_id": "sweep-0042",
            "tag": "E2801160600002084A3C1F2B",
            "rssi": -70.0,
        }
    )

    type: Literal["sweep_read"]
    sweep_id: OpaqueId = Field(description="Sweep this read belongs to.")
    tag: TagId
    rssi: Rssi


class SweepCompleteEvent(EventEnvelope):
    """A sweep finished; ``reads`` says how many sweep_read events it sent."""

    model_config = _examples(
        {"type": "sweep_complete", "ts": _EXAMPLE_TS, "seq": 232, "sweep_id": "sweep-0042",
         "reads": 1}
    )  # fmt: skip

    type: Literal["sweep_complete"]
    sweep_id: OpaqueId = Field(description="Sweep that finished.")
    reads: Annotated[int, WireInteger(0, 1_000_000)] = Field(description="Tags read in the sweep.")


class IgnitionEvent(EventEnvelope):
    """The vehicle's ignition turned on or off."""

    model_config = _examples({"type": "ignition", "ts": _EXAMPLE_TS, "seq": 3, "on": True})

    type: Literal["ignition"]
    on: bool = Field(description="True when the ignition turned on.")


class PositionEvent(EventEnvelope):
    """A GNSS fix."""

    model_config = _examples(
        {
            "type": "position",
            "ts": _EXAMPLE_TS,
            "seq": 4,
            "lat": 52.3731,
            "lon": 4.8922,
            "speed_kmh": 31.5,
            "heading_deg": 270.0,
            "satellites": 9,
            "hdop": 0.9,
        }
    )

    type: Literal["position"]
    lat: float = Field(allow_inf_nan=False, ge=-90, le=90, description="Latitude, WGS 84 degrees.")
    lon: float = Field(
        allow_inf_nan=False, ge=-180, le=180, description="Longitude, WGS 84 degrees."
    )
    speed_kmh: Annotated[float, Field(allow_inf_nan=False, ge=0, le=2000)] | None = Field(
        default=None, description="Ground speed in km/h."
    )
    heading_deg: Annotated[float, Field(allow_inf_nan=False, ge=0, le=360)] | None = Field(
        default=None, description="Course over ground, degrees clockwise from true north."
    )
    satellites: Annotated[int, WireInteger(0, 255)] | None = Field(
        default=None, description="Satellites used in the fix."
    )
    hdop: Annotated[float, Field(allow_inf_nan=False, ge=0, le=100)] | None = Field(
        default=None, description="Horizontal dilution of precision."
    )


class WalkthroughCheckEvent(EventEnvelope):
    """The driver pressed the rear child-check button after walking through the bus."""

    model_config = _examples({"type": "walkthrough_check", "ts": _EXAMPLE_TS, "seq": 5})

    type: Literal["walkthrough_check"]


class RunStartEvent(EventEnvelope):
    """A run (a trip of a route) started."""

    model_config = _examples(
        {"type": "run_start", "ts": _EXAMPLE_TS, "seq": 1, "run_id": "2026-11-25-am-12"}
    )

    type: Literal["run_start"]
    run_id: OpaqueId | None = Field(default=None, description="Run id, when the device knows it.")


class RunEndEvent(EventEnvelope):
    """A run ended."""

    model_config = _examples(
        {"type": "run_end", "ts": _EXAMPLE_TS, "seq": 6, "run_id": "2026-11-25-am-12"}
    )

    type: Literal["run_end"]
    run_id: OpaqueId | None = Field(default=None, description="Run id, when the device knows it.")


class ActionEvent(EventEnvelope):
    """A button or remote action, e.g. Zigbee2MQTT's ``action`` of a wireless switch."""

    model_config = _examples(
        {"type": "action", "ts": _EXAMPLE_TS, "seq": 9, "device": "button-1",
         "action": "single"}
    )  # fmt: skip

    type: Literal["action"]
    action: str = Field(
        min_length=1,
        max_length=64,
        pattern=PRINTABLE_PATTERN,
        description="Action as the device names it, e.g. single, double, hold; printable.",
    )


class DetectionEvent(EventEnvelope):
    """An object a video detector found in a frame."""

    model_config = _examples(
        {
            "type": "detection",
            "ts": _EXAMPLE_TS,
            "seq": 120,
            "label": "person",
            "confidence": 0.87,
            "box": [0.41, 0.22, 0.12, 0.55],
            "track_id": 7,
            "zone": "rear-seats",
        }
    )

    type: Literal["detection"]
    label: Label
    confidence: Confidence
    box: Box
    track_id: TrackId | None = Field(
        default=None, description="Tracker id: the same object across frames."
    )
    zone: Name | None = Field(default=None, description="Configured zone the object is in.")
    snapshot_url: MediaUrl | None = Field(
        default=None, description="JPEG of the frame with the boxes drawn (contract 1.2)."
    )


class OccupancyEvent(EventEnvelope):
    """How many people a camera counts (in a zone, or in its whole view).

    From a cabin camera of a parked vehicle, ``vehicle`` names the vehicle (the bus's
    device id): the bus rules take a person seen there as evidence that someone is aboard.
    """

    model_config = _examples(
        {"type": "occupancy", "ts": _EXAMPLE_TS, "seq": 121, "people": 0, "zone": "rear-seats"},
        {
            "type": "occupancy",
            "ts": _EXAMPLE_TS,
            "seq": 122,
            "people": 1,
            "zone": "cabin",
            "vehicle": "bus-12",
            "confidence": 0.81,
            "snapshot_url": "http://video.local:8090/media/cabin-12/20261125T074210Z-122.jpg",
        },
    )

    type: Literal["occupancy"]
    people: Annotated[int, WireInteger(0, 10_000)] = Field(description="People counted.")
    zone: Name | None = Field(default=None, description="Configured zone counted.")
    vehicle: DeviceId | None = Field(
        default=None,
        description="Vehicle the camera is in, e.g. the bus's device id (contract 1.2).",
    )
    confidence: Confidence | None = Field(
        default=None,
        description="Highest detector confidence among the people counted (contract 1.2).",
    )
    snapshot_url: MediaUrl | None = Field(
        default=None, description="JPEG of the frame counted (contract 1.2)."
    )


class _MediaLinks(ContractModel):
    """Evidence of a video analytics event: where its snapshot and clip are served."""

    snapshot_url: MediaUrl | None = Field(
        default=None, description="JPEG of the frame with the boxes drawn."
    )
    clip_url: MediaUrl | None = Field(
        default=None,
        description="Short clip around the event; complete a few seconds after the event.",
    )


class IntrusionEvent(EventEnvelope, _MediaLinks):
    """An object entered a zone while its intrusion rule was armed (e.g. after hours)."""

    model_config = _examples(
        {
            "type": "intrusion",
            "ts": _EXAMPLE_TS,
            "seq": 130,
            "zone": "yard",
            "label": "person",
            "confidence": 0.82,
            "box": [0.41, 0.22, 0.12, 0.55],
            "track_id": 7,
            "snapshot_url": "http://video.local:8090/media/gate-1/20261125T074210Z-130.jpg",
            "clip_url": "http://video.local:8090/media/gate-1/20261125T074210Z-130.avi",
        }
    )

    type: Literal["intrusion"]
    zone: Name = Field(description="Zone entered.")
    label: Label
    confidence: Confidence
    box: Box
    track_id: TrackId | None = Field(default=None, description="Tracker id of the object.")


class LineCrossEvent(EventEnvelope, _MediaLinks):
    """An object crossed a counting line; the counts are the line's totals after it."""

    model_config = _examples(
        {
            "type": "line_cross",
            "ts": _EXAMPLE_TS,
            "seq": 131,
            "line": "door",
            "direction": "in",
            "label": "person",
            "confidence": 0.77,
            "box": [0.5, 0.3, 0.1, 0.4],
            "track_id": 9,
            "count_in": 12,
            "count_out": 10,
        }
    )

    type: Literal["line_cross"]
    line: Name = Field(description="Configured line crossed.")
    direction: Direction = Field(
        description="in: from the line's left to its right, looking from its start to its end."
    )
    label: Label
    confidence: Confidence
    box: Box
    track_id: TrackId | None = Field(default=None, description="Tracker id of the object.")
    count_in: Count = Field(description="Crossings in since the counter started.")
    count_out: Count = Field(description="Crossings out since the counter started.")


class LoiteringEvent(EventEnvelope, _MediaLinks):
    """An object stayed in a zone longer than the zone's loitering time."""

    model_config = _examples(
        {
            "type": "loitering",
            "ts": _EXAMPLE_TS,
            "seq": 132,
            "zone": "entrance",
            "dwell_s": 65.0,
            "label": "person",
            "confidence": 0.7,
            "box": [0.3, 0.3, 0.1, 0.4],
            "track_id": 11,
        }
    )

    type: Literal["loitering"]
    zone: Name = Field(description="Zone the object stays in.")
    dwell_s: float = Field(
        allow_inf_nan=False, ge=0, le=10_000_000, description="Seconds in the zone so far."
    )
    label: Label
    confidence: Confidence
    box: Box
    track_id: TrackId | None = Field(default=None, description="Tracker id of the object.")


class CrowdingEvent(EventEnvelope, _MediaLinks):
    """More objects of a class in a zone (or the whole view) than its limit."""

    model_config = _examples(
        {
            "type": "crowding",
            "ts": _EXAMPLE_TS,
            "seq": 133,
            "zone": "platform",
            "label": "person",
            "count": 14,
            "limit": 10,
        }
    )

    type: Literal["crowding"]
    zone: Name | None = Field(default=None, description="Zone counted; none for the whole view.")
    label: Label
    count: Annotated[int, WireInteger(0, 10_000)] = Field(description="Objects counted.")
    limit: Annotated[int, WireInteger(0, 10_000)] = Field(
        description="Configured most objects; the event says count went over it."
    )


DeviceEvent = Annotated[
    FaultEvent
    | TagReadEvent
    | SweepReadEvent
    | SweepCompleteEvent
    | IgnitionEvent
    | PositionEvent
    | WalkthroughCheckEvent
    | RunStartEvent
    | RunEndEvent
    | ActionEvent
    | DetectionEvent
    | OccupancyEvent
    | IntrusionEvent
    | LineCrossEvent
    | LoiteringEvent
    | CrowdingEvent,
    Field(discriminator="type"),
]
"""Any device event; the one place a new event type is registered."""

_EVENT_ADAPTER: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent)


def _type_of(model: type[EventEnvelope]) -> str:
    (value,) = get_args(model.model_fields["type"].annotation)
    return str(value)


EVENT_TYPES: MappingProxyType[str, type[EventEnvelope]] = MappingProxyType(
    {_type_of(model): model for model in get_args(get_args(DeviceEvent)[0])}
)
"""Event type name → model, as registered in ``DeviceEvent``."""


def parse_event(payload: bytes | bytearray | str) -> DeviceEvent:
    """Parse and validate an event payload; raises pydantic.ValidationError."""
    return _EVENT_ADAPTER.validate_json(payload)


def event_json_schema(ref_template: str = DEFAULT_REF_TEMPLATE) -> dict[str, Any]:
    """JSON Schema of DeviceEvent: a oneOf over the event types, with their definitions."""
    return _EVENT_ADAPTER.json_schema(mode="validation", ref_template=ref_template)
