"""A service's availability on ``iotmon/v1/_sys/status/<service>/<instance>`` (retained).

The broker publishes the offline form as the service's last will if the process dies;
the client publishes ``online`` on every connect and ``offline`` on a clean stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from iotmon_contract import DeviceState, DeviceStatus, service_status_topic
from iotmon_contract.topics import SERVICE_STATUS_RULE
from iotmon_runtime.mqtt import OutgoingMessage
from iotmon_runtime.version import distribution_version


@dataclass(frozen=True, slots=True)
class ServiceAvailability:
    topic: str
    software: str
    """What ``DeviceStatus.agent`` says, e.g. ``iotmon-ingest/0.2.0``."""

    @classmethod
    def of(cls, service: str, instance: str, distribution: str) -> ServiceAvailability:
        return cls(
            service_status_topic(service, instance),
            f"{distribution}/{distribution_version(distribution)}",
        )

    def message(self, state: DeviceState, ts: datetime | None = None) -> OutgoingMessage:
        payload = DeviceStatus(state=state, ts=ts, agent=self.software).model_dump_json(
            exclude_none=True
        )
        rule = SERVICE_STATUS_RULE
        return OutgoingMessage(self.topic, payload.encode(), rule.qos, rule.retain)

    @property
    def will(self) -> OutgoingMessage:
        """Offline without a time: the broker sends it later, when the process is gone."""
        return self.message(DeviceState.OFFLINE)

    @property
    def online(self) -> OutgoingMessage:
        """Published on every (re)connect; no time, so consumers use when they got it."""
        return self.message(DeviceState.ONLINE)

    def offline(self) -> OutgoingMessage:
        return self.message(DeviceState.OFFLINE, datetime.now(UTC))
