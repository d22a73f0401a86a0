"""Commands to a running broker's dynamic-security plugin over ``$CONTROL/dynamic-security/v1``.

The plugin answers every admin client on one response topic, so each command
carries a correlation id of ours and only answers bearing one are taken. The
transport is the runtime's ``MqttClient``; what can go wrong is told apart:
the broker unreachable, the login refused, the user not an admin (SUBACK or
PUBACK 0x87), no answer (no plugin), or a command the plugin refused.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from iotmon_runtime.mqtt import InboundMessage, MqttClient, MqttSettings
from iotmon_tools.broker.roles import CONTROL_RESPONSE_TOPIC, CONTROL_TOPIC

_POLL_S = 0.05


class BrokerAdminError(RuntimeError):
    """Why a broker administration step failed, in words for the operator."""


class BrokerUnreachable(BrokerAdminError):
    pass


class NotAuthorised(BrokerAdminError):
    pass


class NoAnswer(BrokerAdminError):
    pass


class CommandFailed(BrokerAdminError):
    def __init__(self, command: str, error: str) -> None:
        super().__init__(f"{command}: {error}")
        self.command = command
        self.error = error


@dataclass(frozen=True, slots=True)
class CommandResult:
    command: str
    error: str | None
    data: Mapping[str, Any]


class DynsecSession:
    """One admin connection: ``open()``, any number of ``execute()``, ``close()``."""

    def __init__(self, settings: MqttSettings, *, timeout_s: float = 10.0) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._client: MqttClient | None = None
        self._pending: set[str] = set()
        self._answers: dict[str, CommandResult] = {}
        self._arrived = threading.Condition()

    @property
    def username(self) -> str | None:
        return self._settings.username

    def open(self) -> None:
        client_id = self._settings.client_id or f"iotmon-broker-admin-{uuid.uuid4().hex[:12]}"
        client = MqttClient(self._settings, client_id=client_id, name="broker-admin")
        client.subscribe(CONTROL_RESPONSE_TOPIC, self._on_response, inline=True)
        self._client = client
        client.start()
        deadline = time.monotonic() + self._timeout_s
        address = self._settings.address
        while not client.wait_subscribed(_POLL_S):
            if client.failure is not None:
                self.close()
                raise NotAuthorised(
                    f"the broker at {address} refused the login of "
                    f"{self._settings.username or 'an anonymous client'} (wrong user or password)"
                )
            if client.refused_subscriptions:
                self.close()
                raise NotAuthorised(
                    f"{self._settings.username or 'an anonymous client'} may not read "
                    f"{CONTROL_RESPONSE_TOPIC}: not an admin of the broker's dynamic security"
                )
            if time.monotonic() > deadline:
                connected = client.connected
                self.close()
                if connected:
                    raise NoAnswer(f"the broker at {address} did not confirm a subscription")
                raise BrokerUnreachable(
                    f"cannot reach the MQTT broker at {address} within {self._timeout_s:g} s"
                )

    def close(self) -> None:
        if self._client is not None:
            self._client.stop()
            self._client = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def execute(self, commands: Sequence[Mapping[str, Any]]) -> list[CommandResult]:
        """Send the commands in one message; their results in order (errors included)."""
        client = self._client
        if client is None:
            raise RuntimeError("DynsecSession.execute before open")
        tags = [uuid.uuid4().hex for _ in commands]
        payload = {
            "commands": [
                {**command, "correlationData": tag}
                for command, tag in zip(commands, tags, strict=True)
            ]
        }
        with self._arrived:
            self._pending.update(tags)
        try:
            return self._exchange(client, payload, tags)
        finally:
            with self._arrived:
                self._pending.difference_update(tags)
                for tag in tags:
                    self._answers.pop(tag, None)

    def _exchange(
        self, client: MqttClient, payload: Mapping[str, Any], tags: list[str]
    ) -> list[CommandResult]:
        rejected = client.stats().rejected
        if not client.publish(CONTROL_TOPIC, json.dumps(payload).encode(), qos=1):
            raise BrokerUnreachable(f"lost the broker at {self._settings.address}")
        deadline = time.monotonic() + self._timeout_s
        with self._arrived:
            while not all(tag in self._answers for tag in tags):
                if client.stats().rejected > rejected:
                    raise NotAuthorised(
                        f"{self._settings.username} may not publish to {CONTROL_TOPIC}: "
                        "not an admin of the broker's dynamic security"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NoAnswer(
                        f"no answer on {CONTROL_RESPONSE_TOPIC} within {self._timeout_s:g} s: "
                        "is mosquitto's dynamic security plugin loaded?"
                    )
                self._arrived.wait(min(remaining, _POLL_S))
            return [self._answers[tag] for tag in tags]

    def run(self, command: Mapping[str, Any]) -> Mapping[str, Any]:
        """One command; its data, or CommandFailed with the plugin's reason."""
        result = self.execute([command])[0]
        if result.error is not None:
            raise CommandFailed(result.command, result.error)
        return result.data

    def _on_response(self, message: InboundMessage) -> None:
        # Network thread: parse and record only. Answers to other admins are skipped.
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            return
        if not isinstance(responses, list):
            return
        with self._arrived:
            for response in responses:
                if not isinstance(response, dict):
                    continue
                tag = response.get("correlationData")
                if isinstance(tag, str) and tag in self._pending:
                    data = response.get("data")
                    self._answers[tag] = CommandResult(
                        str(response.get("command", "")),
                        str(response["error"]) if response.get("error") else None,
                        data if isinstance(data, dict) else {},
                    )
            self._arrived.notify_all()
