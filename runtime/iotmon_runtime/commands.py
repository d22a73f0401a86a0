"""Commands and replies: ``…/request/<action>`` answered on ``…/response/<action>``.

A device (or agent) registers one handler per action on its ``CommandServer``.
Every request gets exactly one reply with the request's ``transaction``: the
handler's data, or an error saying why — a request that cannot be read, an
unknown action, or a handler that raised. A failing handler never stops the
server. Handlers run on the MQTT client's dispatcher thread, one at a time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from iotmon_contract import (
    CommandRequest,
    CommandResponse,
    MessageKind,
    TopicError,
    error_response,
    ok_response,
    parse_topic,
    reply_topic,
    request_filter,
    topic_rule,
)
from iotmon_runtime.mqtt import InboundMessage, MqttClient

logger = logging.getLogger(__name__)

CommandHandler = Callable[[Mapping[str, Any]], Mapping[str, Any] | None]
"""Takes the request's ``data``, returns the reply's ``data`` (or None for none)."""


class CommandServer:
    """Answers the requests addressed to one device."""

    def __init__(self, client: MqttClient, tenant: str, device: str) -> None:
        self._client = client
        self._tenant = tenant
        self._device = device
        self._handlers: dict[str, CommandHandler] = {}
        self.answered = 0
        self.failed = 0

    def register(self, action: str, handler: CommandHandler) -> None:
        self._handlers[action] = handler

    def start(self) -> None:
        """Subscribe (restored on every reconnect); call before or after the client starts."""
        self._client.subscribe(request_filter(self._tenant, self._device), self._on_request)

    def stop(self) -> None:
        """Nothing of its own to stop: the client's lifecycle belongs to its owner."""

    def _on_request(self, message: InboundMessage) -> None:
        try:
            info = parse_topic(message.topic)
        except TopicError:
            logger.warning("request on a topic that is not one: %s", message.topic[:200])
            return
        reply = self._answer(info.action or "", message.payload)
        if reply.status.value == "error":
            self.failed += 1
        self.answered += 1
        rule = topic_rule(MessageKind.RESPONSE)
        self._client.publish(
            reply_topic(message.topic),
            reply.model_dump_json(exclude_none=True).encode(),
            rule.qos,
            rule.retain,
        )

    def _answer(self, action: str, payload: bytes) -> CommandResponse:
        try:
            request = CommandRequest.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"]) or "request"
            return error_response(None, f"unreadable request: {where}: {first['msg']}")
        handler = self._handlers.get(action)
        if handler is None:
            known = ", ".join(sorted(self._handlers)) or "none"
            return error_response(request, f"unknown action {action!r}; known: {known}")
        try:
            data = handler(request.data)
        except Exception as exc:
            logger.exception("command %s failed", action)
            return error_response(request, f"{action} failed: {exc}")
        try:
            # JSON has no NaN or infinity (they would go out as null) and no Python objects.
            json.dumps(data, allow_nan=False)
            return ok_response(request, data)
        except (TypeError, ValueError) as exc:
            return error_response(request, f"{action} answered data that cannot be sent: {exc}")
