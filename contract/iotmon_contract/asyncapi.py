"""Generate the contract's AsyncAPI 3.0 document and JSON Schemas from the models.

The committed files under contract/ are this module's output; a test fails when
they drift from the models, so the models stay the one source of truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from iotmon_contract.alerts import AlertMessage, Notice
from iotmon_contract.commands import CommandRequest, CommandResponse
from iotmon_contract.events import EVENT_TYPES, event_json_schema
from iotmon_contract.payloads import (
    MAX_BATCH_READINGS,
    MAX_PAYLOAD_BYTES,
    DeadLetter,
    DeviceStatus,
    ReadingBatch,
    SingleReading,
)
from iotmon_contract.topics import (
    CONTRACT_VERSION,
    DEAD_LETTER_RULE,
    IDENTIFIER_PATTERN,
    SERVICE_SEGMENT,
    SERVICE_STATUS_RULE,
    SYSTEM_SEGMENT,
    TOPIC_ROOT,
    MessageKind,
    ServiceMessageKind,
    TopicRule,
    topic_rule,
)

MODELS: dict[str, type[BaseModel]] = {
    "SingleReading": SingleReading,
    "ReadingBatch": ReadingBatch,
    "DeviceStatus": DeviceStatus,
    "DeadLetter": DeadLetter,
    "CommandRequest": CommandRequest,
    "CommandResponse": CommandResponse,
    "AlertMessage": AlertMessage,
    "Notice": Notice,
}
"""Payload models with a published schema of their own."""

EVENT_SCHEMA_NAME = "DeviceEvent"
_EVENT_DESCRIPTION = (
    "A device event: the envelope (type, ts, seq, device) and the fields of its type, "
    "selected by type."
)
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _schema_id(name: str) -> str:
    return f"https://iotmon.dev/contract/v{CONTRACT_VERSION}/{name}.schema.json"


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (draft 2020-12) per payload: each model and DeviceEvent."""
    schemas = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = _DRAFT
        schema["$id"] = _schema_id(name)
        schemas[name] = schema
    event = event_json_schema()
    schemas[EVENT_SCHEMA_NAME] = {
        "$schema": _DRAFT,
        "$id": _schema_id(EVENT_SCHEMA_NAME),
        "title": EVENT_SCHEMA_NAME,
        "description": _EVENT_DESCRIPTION,
        **event,
    }
    return schemas


def examples(name: str) -> list[dict[str, Any]]:
    """The examples a payload's schema carries (every event type's, for DeviceEvent)."""
    if name == EVENT_SCHEMA_NAME:
        return [ex for model in EVENT_TYPES.values() for ex in _model_examples(model)]
    return _model_examples(MODELS[name])


def _model_examples(model: type[BaseModel]) -> list[dict[str, Any]]:
    found = model.model_json_schema(mode="validation").get("examples", [])
    assert isinstance(found, list)
    return found


MQTT_BINDING_VERSION = "0.2.0"


def _publish_binding(rule: TopicRule) -> dict[str, Any]:
    """MQTT operation binding of a send: how the message is published.

    QoS and retain belong on operations: the MQTT bindings reserve the channel binding
    (it must stay empty), and message bindings carry MQTT 5 message properties, which
    iotmon's producers do not set.
    """
    return {
        "mqtt": {"qos": rule.qos, "retain": rule.retain, "bindingVersion": MQTT_BINDING_VERSION}
    }


def _subscribe_binding(rule: TopicRule) -> dict[str, Any]:
    """MQTT operation binding of a receive: the QoS consumers subscribe with."""
    return {"mqtt": {"qos": rule.qos, "bindingVersion": MQTT_BINDING_VERSION}}


def _id_parameter(what: str) -> dict[str, Any]:
    return {"description": f"{what} id, matching {IDENTIFIER_PATTERN}"}


def _channel(address: str, description: str, messages: dict[str, str]) -> dict[str, Any]:
    """A channel whose parameters are the address's placeholders, all ids."""
    names = {
        "tenant": "Tenant",
        "device": "Device",
        "action": "Action",
        "service": "Service",
        "instance": "Service instance",
    }
    parameters = {
        key: _id_parameter(what) for key, what in names.items() if f"{{{key}}}" in address
    }
    return {
        "address": address,
        "description": description,
        "parameters": parameters,
        "messages": {
            key: {"$ref": f"#/components/messages/{component}"}
            for key, component in messages.items()
        },
    }


def _operation(
    action: str, channel: str, summary: str, rule: TopicRule, **extra: Any
) -> dict[str, Any]:
    binding = _publish_binding(rule) if action == "send" else _subscribe_binding(rule)
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{channel}"},
        "summary": summary,
        **extra,
        "bindings": binding,
    }


def _message(name: str, title: str, summary: str, payload: str | None = None) -> dict[str, Any]:
    schema = payload or name
    return {
        "name": name,
        "title": title,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{schema}"},
        "examples": [
            {"name": f"{name}-{number}", "payload": example}
            for number, example in enumerate(examples(schema), start=1)
        ],
    }


def _schema_definitions() -> dict[str, Any]:
    """components.schemas: every model's schema and the DeviceEvent union over the events."""
    ref_template = "#/components/schemas/{model}"
    _, definitions = models_json_schema(
        [(model, "validation") for model in [*MODELS.values(), *EVENT_TYPES.values()]],
        ref_template=ref_template,
    )
    schemas: dict[str, Any] = definitions["$defs"]
    event = event_json_schema(ref_template)
    for name, definition in event.pop("$defs").items():
        assert schemas[name] == definition, f"two schemas named {name}"
    # The AsyncAPI schema format's discriminator is the property's name (a string), not
    # OpenAPI's {propertyName, mapping} object that pydantic writes.
    event["discriminator"] = event["discriminator"]["propertyName"]
    schemas[EVENT_SCHEMA_NAME] = {
        "title": EVENT_SCHEMA_NAME,
        "description": _EVENT_DESCRIPTION,
        **event,
    }
    return schemas


def asyncapi_document() -> dict[str, Any]:
    root = TOPIC_ROOT
    telemetry = topic_rule(MessageKind.TELEMETRY)
    status = topic_rule(MessageKind.STATUS)
    event = topic_rule(MessageKind.EVENT)
    request = topic_rule(MessageKind.REQUEST)
    response = topic_rule(MessageKind.RESPONSE)
    alert = topic_rule(ServiceMessageKind.ALERT)
    notice = topic_rule(ServiceMessageKind.NOTICE)
    reply = {"channel": {"$ref": "#/channels/response"}}
    event_types = ", ".join(EVENT_TYPES)

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "iotmon wire contract",
            "version": CONTRACT_VERSION,
            "description": (
                "Topics and payloads shared by iotmon edge agents, device simulators and "
                "cloud services. The major version is part of every topic "
                f"({root}/...). Payloads are UTF-8 JSON of at most {MAX_PAYLOAD_BYTES} "
                f"bytes ({MAX_PAYLOAD_BYTES // 1024} KiB, room for a full batch of "
                f"{MAX_BATCH_READINGS} typical readings); a batch holds at most "
                f"{MAX_BATCH_READINGS} readings. Free-form text (units, event details, "
                "summaries) is restricted to printable characters: no control, "
                "bidirectional or zero-width characters. Consumers send what they refuse "
                "to the dead-letter channel with the reason."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "Mosquitto; MQTT v5 for shared subscriptions, 3.1.1 accepted.",
                "security": [{"$ref": "#/components/securitySchemes/userPassword"}],
            },
            "tls": {
                "host": "localhost:8883",
                "protocol": "secure-mqtt",
                "protocolVersion": "5",
                "description": (
                    "Mosquitto's TLS listener, for devices outside the deployment's network "
                    "(commented out in broker/mosquitto.conf until certificates are mounted)."
                ),
                "security": [
                    {"$ref": "#/components/securitySchemes/userPassword"},
                    {"$ref": "#/components/securitySchemes/clientCertificate"},
                ],
            },
        },
        "channels": {
            "telemetry": _channel(
                f"{root}/{{tenant}}/{{device}}/telemetry",
                "Readings of one device, or a gateway's batch of readings.",
                {"singleReading": "SingleReading", "readingBatch": "ReadingBatch"},
            ),
            "status": _channel(
                f"{root}/{{tenant}}/{{device}}/status",
                "Availability, retained. Agents set the offline form as their last will "
                "and publish online on every connect.",
                {"deviceStatus": "DeviceStatus"},
            ),
            "event": _channel(
                f"{root}/{{tenant}}/{{device}}/event",
                f"Events of one device or of a gateway's children, one per message: {event_types}.",
                {"deviceEvent": "DeviceEvent"},
            ),
            "request": _channel(
                f"{root}/{{tenant}}/{{device}}/request/{{action}}",
                "A command to a device; answered on the response channel of the same action.",
                {"commandRequest": "CommandRequest"},
            ),
            "response": _channel(
                f"{root}/{{tenant}}/{{device}}/response/{{action}}",
                "A device's answer to a request, carrying the request's transaction.",
                {"commandResponse": "CommandResponse"},
            ),
            "alert": _channel(
                f"{root}/{{tenant}}/{SERVICE_SEGMENT}/{{service}}/alert",
                "Alert state changes a service publishes for a tenant.",
                {"alertMessage": "AlertMessage"},
            ),
            "notice": _channel(
                f"{root}/{{tenant}}/{SERVICE_SEGMENT}/{{service}}/notice",
                "Notices (one-off news, e.g. a run summary) a service publishes for a tenant.",
                {"notice": "Notice"},
            ),
            "serviceStatus": _channel(
                f"{root}/{SYSTEM_SEGMENT}/status/{{service}}/{{instance}}",
                "Availability of one service instance, retained; the offline form is its "
                "last will.",
                {"serviceStatus": "ServiceStatus"},
            ),
            "deadLetter": _channel(
                f"{root}/{SYSTEM_SEGMENT}/dead-letter/{{service}}",
                "Messages a service refused, with the reason.",
                {"deadLetter": "DeadLetter"},
            ),
        },
        "operations": {
            "sendTelemetry": _operation(
                "send", "telemetry", "Devices and edge agents publish readings (QoS 1).", telemetry
            ),
            "receiveTelemetry": _operation(
                "receive",
                "telemetry",
                "Ingest consumes readings through its persistent session's subscription "
                "(iotmon/v1/+/+/telemetry; $share/<group>/... when several sessions split the "
                "stream) and acknowledges after storing.",
                telemetry,
            ),
            "sendStatus": _operation(
                "send",
                "status",
                "Agents publish availability, retained; the offline form is their will.",
                status,
            ),
            "receiveStatus": _operation(
                "receive",
                "status",
                "Consumers get the retained availability of every device.",
                status,
            ),
            "sendEvent": _operation(
                "send", "event", "Devices and edge agents publish events (QoS 1).", event
            ),
            "receiveEvent": _operation(
                "receive", "event", "Services consume events (bus rules, alerts, storage).", event
            ),
            "sendRequest": _operation(
                "send", "request", "A service asks a device to act.", request, reply=reply
            ),
            "receiveRequest": _operation(
                "receive",
                "request",
                "A device (or its agent) takes requests addressed to it and answers each.",
                request,
                reply=reply,
            ),
            "sendResponse": _operation(
                "send",
                "response",
                "A device answers a request: ok with data, or error with a message.",
                response,
            ),
            "receiveResponse": _operation(
                "receive", "response", "The requester matches answers by transaction.", response
            ),
            "sendAlert": _operation(
                "send", "alert", "A service raises or updates an alert.", alert
            ),
            "receiveAlert": _operation(
                "receive", "alert", "Notifiers and dashboards follow alerts.", alert
            ),
            "sendNotice": _operation("send", "notice", "A service publishes a notice.", notice),
            "receiveNotice": _operation(
                "receive", "notice", "Notifiers and dashboards follow notices.", notice
            ),
            "sendServiceStatus": _operation(
                "send",
                "serviceStatus",
                "A service instance publishes online on connect; offline is its will.",
                SERVICE_STATUS_RULE,
            ),
            "receiveServiceStatus": _operation(
                "receive",
                "serviceStatus",
                "Operators and health checks see which service instances are up.",
                SERVICE_STATUS_RULE,
            ),
            "sendDeadLetter": _operation(
                "send",
                "deadLetter",
                "A consumer republishes a message it refused, with the reason.",
                DEAD_LETTER_RULE,
            ),
        },
        "components": {
            "messages": {
                "SingleReading": _message(
                    "SingleReading", "One reading", "What a tiny sensor sends."
                ),
                "ReadingBatch": _message(
                    "ReadingBatch", "Batch of readings", "What a gateway sends."
                ),
                "DeviceStatus": _message("DeviceStatus", "Availability", "online or offline."),
                "DeviceEvent": _message(
                    "DeviceEvent", "Device event", "Something that happened on a device."
                ),
                "CommandRequest": _message(
                    "CommandRequest", "Command request", "Transaction and arguments."
                ),
                "CommandResponse": _message(
                    "CommandResponse", "Command response", "ok with data, or error."
                ),
                "AlertMessage": _message("AlertMessage", "Alert", "An alert's state change."),
                "Notice": _message("Notice", "Notice", "One-off news for a tenant."),
                "ServiceStatus": _message(
                    "ServiceStatus",
                    "Service availability",
                    "online or offline, as a device's.",
                    payload="DeviceStatus",
                ),
                "DeadLetter": _message("DeadLetter", "Refused message", "Why it was refused."),
            },
            "schemas": _schema_definitions(),
            "securitySchemes": {
                "userPassword": {
                    "type": "userPassword",
                    "description": "MQTT username and password, one identity per device, "
                    "gateway and service (mosquitto's dynamic security plugin); its role "
                    "says what it may publish and subscribe to, refused at subscribe time.",
                },
                "clientCertificate": {
                    "type": "X509",
                    "description": "TLS client certificate on the TLS listener; its identity "
                    "stands for the username.",
                },
            },
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=False) + "\n"


def expected_files() -> dict[str, str]:
    """Relative path under contract/ → file text."""
    files = {"asyncapi.json": render(asyncapi_document())}
    for name, schema in json_schemas().items():
        files[f"schemas/{name}.schema.json"] = render(schema)
    return files


def write(contract_dir: Path) -> list[Path]:
    written = []
    for relative, text in expected_files().items():
        path = contract_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def main() -> None:
    for path in write(Path(__file__).resolve().parent.parent):
        print(path)  # noqa: T201


if __name__ == "__main__":
    main()
