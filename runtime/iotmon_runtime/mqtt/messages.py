"""The records the MQTT client speaks in: messages in, messages out, subscriptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, IntEnum
from typing import NamedTuple

from iotmon_contract import shared_subscription


class InboundMessage(NamedTuple):
    """A received message. A NamedTuple: one is built per message on the hot path."""

    topic: str
    payload: bytes
    token: int
    """Acknowledgement token for ``MqttClient.ack`` (manual-ack clients); 0: nothing to ack."""
    retained: bool


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    topic: str
    payload: bytes
    qos: int
    retain: bool


Handler = Callable[[InboundMessage], None]

Completion = Callable[[bool], None]
"""Told once how a published message ended: True when the broker took it (QoS 1:
PUBACK; QoS 0: written to the socket), False when it refused it (an MQTT 5 reason
code, e.g. not authorised). Runs on paho's network thread: record or signal only."""


class RetainHandling(IntEnum):
    """MQTT 5 subscription option: when the broker sends retained messages."""

    ON_SUBSCRIBE = 0
    IF_NEW_SUBSCRIPTION = 1
    """Only for a new subscription: a resumed session already has them."""
    NEVER = 2


@dataclass(frozen=True, slots=True)
class Subscription:
    """A topic filter and who handles its messages; restored on every reconnect."""

    topic_filter: str
    handler: Handler
    qos: int = 1
    share_group: str | None = None
    """MQTT 5 shared subscription: replicas in one group split the messages."""
    retain_handling: RetainHandling = RetainHandling.ON_SUBSCRIBE
    retain_as_published: bool = False
    """Keep the publisher's retain flag on live messages (so a consumer can refuse them)."""
    inline: bool = False
    """Call the handler on the network thread. It must only enqueue, and with manual
    acknowledgement it owns the message's token. Otherwise the client's dispatcher
    thread calls it and acknowledges the message once it returns."""

    @property
    def subscribe_topic(self) -> str:
        if self.share_group is None:
            return self.topic_filter
        return shared_subscription(self.share_group, self.topic_filter)


class ConnectionEvent(Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"
    """Refused for good (bad credentials): the client stopped retrying."""


ConnectionListener = Callable[[ConnectionEvent], None]


@dataclass(frozen=True, slots=True)
class ClientStats:
    accepted: int
    """Messages handed to paho (sent, or kept by paho across a dropped connection)."""
    refused: int
    """Publishes refused: the hold queue or paho's queue was full, or not started."""
    completed: int
    """QoS 1: PUBACK received; QoS 0: written to the socket."""
    rejected: int
    """MQTT 5: the broker acknowledged with a failure reason (e.g. not authorised)."""
    connects: int
    held: int
    """Messages waiting for a connection."""
    received: int
    unrouted: int
    """Messages that matched no subscription of this client (acknowledged and dropped)."""
    handler_errors: int
    """Messages whose handler raised; logged, counted and acknowledged."""
    acks: int
    """Acknowledgements sent for manual-ack tokens."""
    awaiting: int = 0
    """Messages sent with ``on_complete`` whose acknowledgement has not come yet."""
