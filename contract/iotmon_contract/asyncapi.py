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
    TOPIC_ROOT,
    MessageKind,
    TopicRule,
    topic_rule,
)

MODELS: dict[str, type[BaseModel]] = {
    "SingleReading": SingleReading,
    "ReadingBatch": ReadingBatch,
    "DeviceStatus": DeviceStatus,
    "DeadLetter": DeadLetter,
}


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema (draft 2020-12) per payload model."""
    schemas = {}
    for name, model in MODELS.items():
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://iotmon.dev/contract/v{CONTRACT_VERSION}/{name}.schema.json"
        schemas[name] = schema
    return schemas


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


def asyncapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in MODELS.values()],
        ref_template="#/components/schemas/{model}",
    )
    telemetry = topic_rule(MessageKind.TELEMETRY)
    status = topic_rule(MessageKind.STATUS)
    device_params = {"tenant": _id_parameter("Tenant"), "device": _id_parameter("Device")}

    def message(name: str, title: str, summary: str) -> dict[str, Any]:
        return {
            "name": name,
            "title": title,
            "summary": summary,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "iotmon wire contract",
            "version": CONTRACT_VERSION,
            "description": (
                "Topics and payloads shared by iotmon edge agents, device simulators and "
                "cloud services. The major version is part of every topic "
                f"({TOPIC_ROOT}/...). Payloads are UTF-8 JSON of at most {MAX_PAYLOAD_BYTES} "
                f"bytes; a batch holds at most {MAX_BATCH_READINGS} readings. Consumers send "
                "what they refuse to the dead-letter channel with the reason."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "Mosquitto; MQTT v5 for shared subscriptions, 3.1.1 accepted.",
            }
        },
        "channels": {
            "telemetry": {
                "address": f"{TOPIC_ROOT}/{{tenant}}/{{device}}/telemetry",
                "description": "Readings of one device, or a gateway's batch of readings.",
                "parameters": device_params,
                "messages": {
                    "singleReading": {"$ref": "#/components/messages/SingleReading"},
                    "readingBatch": {"$ref": "#/components/messages/ReadingBatch"},
                },
            },
            "status": {
                "address": f"{TOPIC_ROOT}/{{tenant}}/{{device}}/status",
                "description": (
                    "Availability, retained. Agents set the offline form as their last will "
                    "and publish online on every connect."
                ),
                "parameters": device_params,
                "messages": {"deviceStatus": {"$ref": "#/components/messages/DeviceStatus"}},
            },
            "deadLetter": {
                "address": f"{TOPIC_ROOT}/_sys/dead-letter/{{service}}",
                "description": "Messages a service refused, with the reason.",
                "parameters": {"service": _id_parameter("Service")},
                "messages": {"deadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            },
        },
        "operations": {
            "sendTelemetry": {
                "action": "send",
                "channel": {"$ref": "#/channels/telemetry"},
                "summary": "Devices and edge agents publish readings (QoS 1).",
                "bindings": _publish_binding(telemetry),
            },
            "receiveTelemetry": {
                "action": "receive",
                "channel": {"$ref": "#/channels/telemetry"},
                "summary": "Ingest consumes readings through a shared subscription "
                "($share/<group>/iotmon/v1/+/+/telemetry) and acknowledges after storing.",
                "bindings": _subscribe_binding(telemetry),
            },
            "sendStatus": {
                "action": "send",
                "channel": {"$ref": "#/channels/status"},
                "summary": "Agents publish availability, retained; the offline form is their will.",
                "bindings": _publish_binding(status),
            },
            "receiveStatus": {
                "action": "receive",
                "channel": {"$ref": "#/channels/status"},
                "summary": "Consumers get the retained availability of every device.",
                "bindings": _subscribe_binding(status),
            },
            "sendDeadLetter": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetter"},
                "summary": "A consumer republishes a message it refused, with the reason.",
                "bindings": _publish_binding(DEAD_LETTER_RULE),
            },
        },
        "components": {
            "messages": {
                "SingleReading": message(
                    "SingleReading", "One reading", "What a tiny sensor sends."
                ),
                "ReadingBatch": message(
                    "ReadingBatch", "Batch of readings", "What a gateway sends."
                ),
                "DeviceStatus": message("DeviceStatus", "Availability", "online or offline."),
                "DeadLetter": message("DeadLetter", "Refused message", "Why it was refused."),
            },
            "schemas": definitions["$defs"],
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
