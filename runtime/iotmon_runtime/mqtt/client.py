"""The one MQTT client of every iotmon process, on paho-mqtt 2.x (VERSION2 callbacks).

Consumers register handlers with ``subscribe(filter, handler)``; the client
subscribes them all on every connect, so a reconnect restores them. Producers
``publish``; while disconnected, messages wait in a bounded hold queue. A producer
that keeps its own copy until the broker has it (the edge agent's durable queue)
passes ``on_complete`` and is told, per message, when the broker acknowledged it. Options
cover what the services differ in: a persistent session with manual
acknowledgement (ingest acknowledges after the write), the receive fast path, a
last will and an ``online`` message on every connect.

Threads: paho's network thread runs the callbacks, which only record, route
and enqueue; handlers that are not ``inline`` run on the client's dispatcher
thread, one message at a time, each in its own ``try``.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, NamedTuple

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from iotmon_runtime.mqtt.messages import (
    ClientStats,
    Completion,
    ConnectionEvent,
    ConnectionListener,
    Handler,
    InboundMessage,
    OutgoingMessage,
    RetainHandling,
    Subscription,
)
from iotmon_runtime.mqtt.paho_client import (
    MID_MASK,
    TOKEN_SHIFT,
    FastPahoClient,
    PahoClient,
    fast_path_available,
)
from iotmon_runtime.mqtt.settings import MqttProtocol, MqttSettings

logger = logging.getLogger(__name__)

# CONNACK refusals that retrying cannot fix; paho maps MQTT 3.1.1 return codes
# 4 and 5 to these same v5 names.
_AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized"})
_ROUTE_CACHE_LIMIT = 65_536
_DISPATCH_PAUSE_AT = 10_000
"""Queued messages for the dispatcher above which the client stops reading."""
_STOP = object()
_UNKNOWN: Any = object()
"""A topic not routed yet (None is a topic routed to no subscription)."""


class _Outgoing(NamedTuple):
    """A message waiting in the hold queue, with whoever wants to hear how it ended."""

    message: OutgoingMessage
    on_complete: Completion | None


class _PahoNoise(logging.Filter):
    """paho logs ERROR "Client is not connected … Socket: None" after every failed
    reconnect and after our own disconnect; the client logs the reason instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Client is not connected")


def filters_overlap(first: str, second: str) -> bool:
    """Whether some topic matches both MQTT topic filters."""
    a, b = first.split("/"), second.split("/")
    for left, right in zip(a, b, strict=False):
        if "#" in (left, right):
            return True
        if "+" in (left, right):
            continue
        if left != right:
            return False
    if len(a) == len(b):
        return True
    longer = a if len(a) > len(b) else b
    # "a/#" also matches "a": a longer filter overlaps when it only adds a "#".
    return longer[min(len(a), len(b))] == "#" and len(longer) == min(len(a), len(b)) + 1


class MqttClient:
    """Connects in the background, reconnects with backoff, routes messages to handlers.

    ``manual_ack``: messages are acknowledged only through ``ack(tokens)`` (by an
    inline handler) or by the dispatcher once a handler returned. With
    ``persistent_session`` the broker keeps subscriptions and unacknowledged
    messages while the process is away (MQTT 5 session expiry, or a 3.1.1
    non-clean session). Ack tokens carry the connection generation: acks for
    messages of an older connection are dropped (the broker redelivers those).
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        will: OutgoingMessage | None = None,
        online: OutgoingMessage | None = None,
        manual_ack: bool = False,
        persistent_session: bool = False,
        session_expiry_s: int = 0,
        receive_maximum: int | None = None,
        fast_path: bool = False,
        max_inflight: int = 1000,
        max_queued: int = 100_000,
        name: str | None = None,
    ) -> None:
        if fast_path and not manual_ack:
            raise ValueError("the receive fast path needs manual acknowledgement")
        self._settings = settings
        self._client_id = client_id
        self._will = will
        self._online = online
        self._manual_ack = manual_ack
        self._persistent = persistent_session
        self._session_expiry_s = session_expiry_s
        self._receive_maximum = receive_maximum
        self._fast_path = fast_path and fast_path_available()
        self._max_inflight = max_inflight
        self._max_queued = max_queued
        self._name = name or client_id
        self._client: PahoClient | None = None
        self._subscriptions: list[Subscription] = []
        self._leave_on_resume: list[str] = []
        self._routes: dict[str, Subscription | None] = {}
        self._listeners: list[ConnectionListener] = []
        self._lock = threading.Condition()
        # One sender at a time keeps held messages ahead of new ones.
        self._send_lock = threading.Lock()
        self._held: deque[_Outgoing] = deque()
        # Completion tracking (see _send_tracked): paho's message id -> callback, and
        # acknowledgements that arrived before their sender could register the id.
        self._tracked: dict[int, Completion] = {}
        self._claims = 0
        self._unclaimed: dict[int, bool] = {}
        self._dispatch: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._generation = 0
        self._next_delay: int | None = None
        self._stopping = False
        self._user_paused: Any = None
        self._counts = dict.fromkeys(
            (
                "accepted",
                "refused",
                "completed",
                "rejected",
                "connects",
                "unrouted",
                "handler_errors",
                "acks",
            ),
            0,
        )
        self._received = 0
        self.failure: str | None = None
        """Why the client gave up for good (bad credentials), or None."""
        self.refused_subscriptions: list[str] = []
        self.session_present = False

    # -- configuration (before or after start) -------------------------------------

    @property
    def settings(self) -> MqttSettings:
        return self._settings

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def fast_path(self) -> bool:
        return self._fast_path

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def v5(self) -> bool:
        return self._settings.protocol is MqttProtocol.V5

    def subscribe(
        self,
        topic_filter: str,
        handler: Handler,
        *,
        qos: int = 1,
        share_group: str | None = None,
        retain_handling: RetainHandling = RetainHandling.ON_SUBSCRIBE,
        retain_as_published: bool = False,
        inline: bool = False,
    ) -> Subscription:
        """Register ``handler`` for ``topic_filter``; subscribed now if connected, and on
        every reconnect. On MQTT 3.1.1 a share group is ignored (one replica only).

        Filters of one client must not overlap: the broker delivers a copy per matching
        subscription, which no handler could tell from a duplicate. Dispatch inside one
        handler instead.
        """
        for existing in self._subscriptions:
            if filters_overlap(existing.topic_filter, topic_filter):
                raise ValueError(
                    f"{topic_filter!r} overlaps {existing.topic_filter!r}, already subscribed: "
                    "the broker would deliver a copy per subscription"
                )
        subscription = Subscription(
            topic_filter,
            handler,
            qos=qos,
            share_group=share_group if self.v5 else None,
            retain_handling=retain_handling,
            retain_as_published=retain_as_published,
            inline=inline,
        )
        with self._lock:
            self._subscriptions.append(subscription)
            self._routes.clear()
        client = self._client
        if client is not None and self._connected.is_set():
            self._subscribed.clear()
            client.subscribe([self._subscribe_argument(subscription)])
        return subscription

    def leave_on_resume(self, subscribe_topic: str) -> None:
        """Unsubscribe ``subscribe_topic`` (e.g. a former ``$share/…`` form) whenever a
        persistent session is resumed: the broker keeps the subscriptions of an earlier
        configuration, which would deliver a second copy or take another's share.
        Sent after the SUBSCRIBE, so the current subscriptions leave no gap."""
        self._leave_on_resume.append(subscribe_topic)

    def add_listener(self, listener: ConnectionListener) -> None:
        """``listener`` runs on paho's thread: it must only record or signal, never block."""
        self._listeners.append(listener)

    def set_paused(self, paused: Any) -> None:
        """``paused()`` true stops reading from the socket (TCP back-pressure)."""
        self._user_paused = paused

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._client is not None:
            raise RuntimeError("MQTT client already started")
        settings = self._settings
        client_class = FastPahoClient if self._fast_path else PahoClient
        client = client_class(
            CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else not self._persistent,
            manual_ack=self._manual_ack,
        )
        client.deliver = self._deliver
        client.paused = self._paused
        paho_logger = logging.getLogger(f"iotmon_runtime.mqtt.paho.{self._name}")
        paho_logger.addFilter(_PahoNoise())
        client.enable_logger(paho_logger)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)
        client.max_inflight_messages_set(self._max_inflight)
        if settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        if settings.tls:
            context = ssl.create_default_context(
                cafile=str(settings.ca_file) if settings.ca_file else None
            )
            if settings.cert_file is not None:
                context.load_cert_chain(
                    str(settings.cert_file), str(settings.key_file) if settings.key_file else None
                )
            client.tls_set_context(context)
        if self._will is not None:
            will = self._will
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        properties = None
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._session_expiry_s if self._persistent else 0
            if self._receive_maximum is not None:
                properties.ReceiveMaximum = self._receive_maximum
        self._client = client
        self._stopping = False
        self._dispatcher = threading.Thread(
            target=self._dispatch_loop, name=f"mqtt-dispatch-{self._name}", daemon=True
        )
        self._dispatcher.start()
        # connect_async + loop_start: the first connection is retried like any other,
        # so a process can start before its broker.
        client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive_s,
            clean_start=(not self._persistent) if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        client.loop_start()

    def stop(self, offline: OutgoingMessage | None = None, timeout: float = 5.0) -> None:
        """Publish ``offline`` (if given), disconnect cleanly (the broker discards the will)."""
        client = self._client
        if client is None:
            return
        if offline is not None and self._connected.is_set():
            info = client.publish(offline.topic, offline.payload, offline.qos, offline.retain)
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._count(accepted=1)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                logger.warning("could not publish %s before disconnecting", offline.topic)
        self._stopping = True
        # Queued acks are written before DISCONNECT: paho sends its queue in order.
        client.disconnect()
        client.loop_stop()
        self._dispatch.put(_STOP)
        if self._dispatcher is not None:
            self._dispatcher.join(timeout)
        self._client = None
        self._connected.clear()
        self._subscribed.clear()
        with self._lock:
            # Never to be acknowledged now: their senders keep their own copies.
            self._tracked.clear()
            self._unclaimed.clear()

    def wait_connected(self, timeout: float | None = None) -> bool:
        return self._connected.wait(timeout)

    def wait_subscribed(self, timeout: float | None = None) -> bool:
        """True once every registered subscription was granted on the current connection."""
        return self._subscribed.wait(timeout)

    # -- publishing ------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes | str,
        qos: int = 1,
        retain: bool = False,
        *,
        on_complete: Completion | None = None,
    ) -> bool:
        """Send, or hold until connected; False when refused (queue full, not started)."""
        data = payload.encode() if isinstance(payload, str) else payload
        return self.publish_message(OutgoingMessage(topic, data, qos, retain), on_complete)

    def publish_message(
        self, message: OutgoingMessage, on_complete: Completion | None = None
    ) -> bool:
        """``publish`` for a built message.

        ``on_complete`` is called exactly once for a message this returns True for,
        when the broker acknowledged it (True) or refused it (False); a message still
        unacknowledged when the client stops is never reported, and its sender still
        owns it. paho resends an unacknowledged QoS 1 message after a reconnect, so
        the report may come on a later connection.
        """
        if self._client is None:
            self._count(refused=1)
            return False
        with self._send_lock:
            if not self._connected.is_set():
                return self._hold(_Outgoing(message, on_complete))
            self._release_held()
            return self._send(message, on_complete)

    def flush(self, timeout: float) -> bool:
        """Wait until every message taken is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._send_lock:
                if self._connected.is_set():
                    self._release_held()
            with self._lock:
                remaining = deadline - time.monotonic()
                if self._lock.wait_for(self._all_acknowledged, min(max(remaining, 0), 0.1)):
                    return True
            if remaining <= 0:
                return False

    # -- acknowledging ---------------------------------------------------------------

    def ack(self, tokens: Iterable[int]) -> int:
        """Acknowledge messages by token (manual-ack clients); returns how many acks were sent."""
        client = self._client
        if client is None:
            return 0
        with self._lock:
            generation = self._generation
            mids = [
                token & MID_MASK
                for token in tokens
                if token >> TOKEN_SHIFT == generation and token & MID_MASK
            ]
            if not mids:
                return 0
            client.ack_many(mids)
            self._counts["acks"] += len(mids)
        return len(mids)

    def stats(self) -> ClientStats:
        with self._lock:
            counts = dict(self._counts)
            held = len(self._held)
            awaiting = len(self._tracked)
        return ClientStats(held=held, received=self._received, awaiting=awaiting, **counts)

    # -- internals: sending ----------------------------------------------------------

    def _hold(self, message: _Outgoing) -> bool:
        # Held here rather than in paho: paho writes a publish to a socket that is
        # still waiting for its CONNACK, and if the broker refuses the login that
        # write can reset the connection before the refusal is read, so the auth
        # failure would look like a network error and be retried.
        with self._lock:
            if self._max_queued and len(self._held) >= self._max_queued:
                self._counts["refused"] += 1
                return False
            self._held.append(message)
            return True

    def _release_held(self) -> None:
        """Send what was held while disconnected, oldest first (caller holds _send_lock)."""
        while self._held and self._connected.is_set():
            with self._lock:
                held = self._held.popleft()
            self._send(held.message, held.on_complete)

    def _send(self, message: OutgoingMessage, on_complete: Completion | None = None) -> bool:
        client = self._client
        if client is None:
            return False
        if on_complete is not None:
            return self._send_tracked(client, message, on_complete)
        info = client.publish(
            message.topic, message.payload, qos=message.qos, retain=message.retain
        )
        ok = self._taken(message, info.rc)
        self._count(**{"accepted" if ok else "refused": 1})
        return ok

    @staticmethod
    def _taken(message: OutgoingMessage, rc: MQTTErrorCode) -> bool:
        # NO_CONN with QoS > 0: the connection dropped just now and paho keeps the
        # message for the next one, so it is taken.
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            message.qos > 0 and rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        )

    def _send_tracked(
        self, client: PahoClient, message: OutgoingMessage, on_complete: Completion
    ) -> bool:
        """Send and register ``on_complete`` under paho's message id.

        paho only says the id once ``publish`` returns, and its network thread may
        have handled the PUBACK by then. Holding our lock across ``publish`` could
        deadlock (paho calls ``on_publish`` holding its own lock, which ``publish``
        takes), so instead a claim is open while we publish: acknowledgements that
        find no registered id are kept aside until every open claim is settled.
        """
        with self._lock:
            self._claims += 1
        early: bool | None = None
        ok = False
        try:
            info = client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
            ok = self._taken(message, info.rc)
        finally:
            with self._lock:
                self._claims -= 1
                if ok:
                    early = self._unclaimed.pop(info.mid, None)
                    if early is None:
                        self._tracked[info.mid] = on_complete
                    self._counts["accepted"] += 1
                else:
                    self._counts["refused"] += 1
                if not self._claims:
                    # Whatever is left belongs to untracked messages.
                    self._unclaimed.clear()
        if early is not None:
            self._complete(on_complete, early)
        return ok

    def _complete(self, on_complete: Completion, success: bool) -> None:
        try:
            on_complete(success)
        except Exception:
            logger.exception("publish completion callback failed")

    def _all_acknowledged(self) -> bool:
        counts = self._counts
        return not self._held and counts["completed"] + counts["rejected"] >= counts["accepted"]

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, value in increments.items():
                self._counts[name] += value

    # -- internals: receiving --------------------------------------------------------

    def _paused(self) -> bool:
        user = self._user_paused
        return self._dispatch.qsize() > _DISPATCH_PAUSE_AT or (user is not None and bool(user()))

    def _route(self, topic: str) -> Subscription | None:
        """The one subscription whose filter matches (filters never overlap), cached."""
        with self._lock:
            matched = next(
                (s for s in self._subscriptions if paho.topic_matches_sub(s.topic_filter, topic)),
                None,
            )
            if len(self._routes) >= _ROUTE_CACHE_LIMIT:
                self._routes.clear()
            self._routes[topic] = matched
        return matched

    def _deliver(self, message: InboundMessage) -> None:
        """Network thread: hand one message to its handler (the hot path)."""
        self._received += 1
        routes = self._routes
        subscription = (
            routes[message.topic] if message.topic in routes else self._route(message.topic)
        )
        if subscription is None:
            self._count(unrouted=1)
            logger.debug("message on %s matches no subscription; dropped", message.topic[:200])
            self._auto_ack(message)
        elif subscription.inline:
            try:
                subscription.handler(message)
            except Exception:
                self._count(handler_errors=1)
                logger.exception("inline handler failed on %s", message.topic[:200])
        else:
            self._dispatch.put((subscription, message))

    def _auto_ack(self, message: InboundMessage) -> None:
        if self._manual_ack and message.token:
            self.ack((message.token,))

    def _dispatch_loop(self) -> None:
        while True:
            job = self._dispatch.get()
            if job is _STOP:
                return
            if callable(job):
                job()
                continue
            subscription, message = job
            try:
                subscription.handler(message)
            except Exception:
                # One bad message costs itself, never the consumer.
                self._count(handler_errors=1)
                logger.exception(
                    "handler for %s failed on a message on %s",
                    subscription.topic_filter,
                    message.topic[:200],
                )
            self._auto_ack(message)

    def _subscribe_argument(self, subscription: Subscription) -> tuple[str, Any]:
        if not self.v5:
            return subscription.subscribe_topic, subscription.qos
        options = SubscribeOptions(
            qos=subscription.qos,
            retainAsPublished=subscription.retain_as_published,
            retainHandling=int(subscription.retain_handling),
        )
        return subscription.subscribe_topic, options

    # -- paho callbacks (network thread: record, signal, return) -------------------

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        address = self._settings.address
        if reason_code.is_failure:
            if reason_code.getName() in _AUTH_FAILURES:
                self.failure = f"MQTT broker {address} refused the login: {reason_code.getName()}"
                logger.error("%s; not retrying", self.failure)
                self._stopping = True
                # disconnect() from a callback is paho's way to end loop_forever's retries.
                client.disconnect()
                self._notify(ConnectionEvent.FAILED)
            else:
                logger.warning(
                    "MQTT broker %s refused the connection: %s; retrying",
                    address,
                    reason_code.getName(),
                )
            return
        self.session_present = bool(flags.session_present)
        with self._lock:
            self._generation += 1
            if isinstance(client, PahoClient):
                client.generation = self._generation
            self._counts["connects"] += 1
            subscriptions = list(self._subscriptions)
        self._next_delay = None
        logger.info(
            "connected to MQTT broker %s as %s%s",
            address,
            self._client_id,
            (" (session resumed)" if flags.session_present else " (session new)")
            if self._persistent
            else "",
        )
        self.refused_subscriptions = []
        if subscriptions:
            self._subscribed.clear()
            client.subscribe([self._subscribe_argument(s) for s in subscriptions])
        else:
            self._subscribed.set()
        current = {s.subscribe_topic for s in subscriptions}
        stale = [topic for topic in self._leave_on_resume if topic not in current]
        if flags.session_present and stale:
            client.unsubscribe(stale)
        if self._online is not None:
            online = self._online
            info = client.publish(online.topic, online.payload, online.qos, online.retain)
            # Its acknowledgement is counted as completed like any other: counted as taken
            # too, or ``flush`` would take it for another message's and return early.
            if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._count(accepted=1)
        self._connected.set()
        # Held messages go out from the dispatcher thread, not from this callback.
        self._dispatch.put(self._release_held_now)
        self._notify(ConnectionEvent.CONNECTED)

    def _release_held_now(self) -> None:
        with self._send_lock:
            self._release_held()

    def _on_connect_fail(self, client: paho.Client, _userdata: Any) -> None:
        error = client.last_socket_error if isinstance(client, PahoClient) else None
        reason = f"{type(error).__name__}: {error}" if error is not None else "no answer"
        logger.warning(
            "cannot reach MQTT broker %s (%s); next try in %ds",
            self._settings.address,
            reason,
            self._advance_delay(),
        )

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        with self._lock:
            # Acks still pending for this connection must not reach the next one.
            self._generation += 1
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        if self._stopping:
            return
        if was_connected:
            logger.warning(
                "lost MQTT broker %s (%s); reconnecting in %ds",
                self._settings.address,
                reason_code.getName(),
                self._advance_delay(),
            )
            self._notify(ConnectionEvent.DISCONNECTED)

    def _advance_delay(self) -> int:
        """The wait paho will do before its next attempt (it doubles on each failure)."""
        settings = self._settings
        if self._next_delay is None:
            self._next_delay = settings.reconnect_min_s
        else:
            self._next_delay = min(self._next_delay * 2, settings.reconnect_max_s)
        return self._next_delay

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reason_codes: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        refused = [code.getName() for code in reason_codes if code.is_failure]
        if refused:
            self.refused_subscriptions = refused
            logger.error("MQTT broker refused a subscription: %s", ", ".join(refused))
        else:
            self._subscribed.set()

    def _on_publish(
        self,
        _client: paho.Client,
        _userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        success = not reason_code.is_failure
        on_complete = None
        with self._lock:
            if success:
                self._counts["completed"] += 1
            else:
                self._counts["rejected"] += 1
            if self._tracked or self._claims:
                on_complete = self._tracked.pop(mid, None)
                if on_complete is None and self._claims:
                    self._unclaimed[mid] = success
            self._lock.notify_all()
        if on_complete is not None:
            self._complete(on_complete, success)

    def _on_message(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        # Messages the fast path leaves to paho (QoS 2, PUBLISH with properties, fallback).
        generation = client.generation if isinstance(client, PahoClient) else 0
        token = (generation << TOKEN_SHIFT) | message.mid if message.qos == 1 else 0
        self._deliver(
            tuple.__new__(
                InboundMessage,
                (message.topic, bytes(message.payload), token, bool(message.retain)),
            )
        )

    def _notify(self, event: ConnectionEvent) -> None:
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("MQTT connection listener failed")
