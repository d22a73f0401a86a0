"""What the bus-safety core takes in: a device's contract event or availability, with
the device's own timestamp, as the service (or the replay) received it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from iotmon_contract.events import DeviceEvent
from iotmon_contract.payloads import DeviceState
from iotmon_contract.status import StatusEvent

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BusEvent:
    """One input of the core.

    ``device`` is the device the event is about (the event's own ``device`` when a gateway
    speaks for it, else the topic's); ``ts`` its device time. ``payload`` is a contract
    event, or a ``DeviceState`` from the device's status topic (availability).
    """

    tenant: str
    device: str
    ts: datetime
    payload: DeviceEvent | DeviceState

    @classmethod
    def from_event(cls, tenant: str, topic_device: str, event: DeviceEvent) -> BusEvent:
        return cls(tenant, event.device or topic_device, event.ts, event)

    @classmethod
    def from_status(cls, status: StatusEvent) -> BusEvent:
        ts = _EPOCH + timedelta(microseconds=status.ts_ns // 1000)
        return cls(status.tenant, status.device, ts, status.state)
