"""The AsyncAPI document follows the AsyncAPI 3.0.0 structure and the MQTT bindings 0.2.0.

Checked offline, from the specifications' field tables, rather than against the official
JSON Schema (npm ``@asyncapi/specs``, about 390 KB bundled; no small, kept-up PyPI
package ships it): that schema leaves ``channels.*.bindings.mqtt`` open (``{}``), so it
would not catch QoS put on a channel, which is what this test is for. The document was
checked once by hand against ``@asyncapi/specs`` 6.11.1 ``schemas/3.0.0.json``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from iotmon_contract import MessageKind, ServiceMessageKind, topic_rule
from iotmon_contract.asyncapi import asyncapi_document
from iotmon_contract.topics import DEAD_LETTER_RULE, SERVICE_STATUS_RULE, TopicRule

# Fixed fields of each AsyncAPI 3.0.0 object; ``x-`` extensions are allowed everywhere.
DOCUMENT_FIELDS = {
    "asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
    "components",
}  # fmt: skip
INFO_FIELDS = {
    "title", "version", "description", "termsOfService", "contact", "license", "tags",
    "externalDocs",
}  # fmt: skip
SERVER_FIELDS = {
    "host", "protocol", "protocolVersion", "pathname", "description", "title", "summary",
    "variables", "security", "tags", "externalDocs", "bindings",
}  # fmt: skip
CHANNEL_FIELDS = {
    "address", "messages", "title", "summary", "description", "servers", "parameters",
    "tags", "externalDocs", "bindings",
}  # fmt: skip
PARAMETER_FIELDS = {"enum", "default", "description", "examples", "location"}
OPERATION_FIELDS = {
    "action", "channel", "title", "summary", "description", "security", "tags",
    "externalDocs", "bindings", "traits", "messages", "reply",
}  # fmt: skip
MESSAGE_FIELDS = {
    "headers", "payload", "correlationId", "contentType", "name", "title", "summary",
    "description", "tags", "externalDocs", "bindings", "examples", "traits",
}  # fmt: skip
COMPONENT_FIELDS = {
    "schemas", "servers", "channels", "operations", "messages", "securitySchemes",
    "serverVariables", "parameters", "correlationIds", "replies", "replyAddresses",
    "externalDocs", "tags", "operationTraits", "messageTraits", "serverBindings",
    "channelBindings", "operationBindings", "messageBindings",
}  # fmt: skip
MESSAGE_EXAMPLE_FIELDS = {"headers", "payload", "name", "summary"}
REPLY_FIELDS = {"address", "channel", "messages"}
SECURITY_SCHEME_FIELDS = {
    "type", "description", "name", "in", "scheme", "bearerFormat", "flows",
    "openIdConnectUrl", "scopes",
}  # fmt: skip
SECURITY_SCHEME_TYPES = {
    "userPassword", "apiKey", "X509", "symmetricEncryption", "asymmetricEncryption",
    "httpApiKey", "http", "oauth2", "openIdConnect", "plain", "scramSha256", "scramSha512",
    "gssapi",
}  # fmt: skip
# The AsyncAPI Schema Object: JSON Schema draft 07 plus discriminator (a property name),
# externalDocs and deprecated. 2020-12-only keywords (prefixItems, $defs, dependentRequired,
# unevaluated*) would be unknown there.
SCHEMA_KEYWORDS = {
    "$ref", "title", "description", "default", "examples", "readOnly", "writeOnly",
    "type", "enum", "const", "multipleOf", "maximum", "exclusiveMaximum", "minimum",
    "exclusiveMinimum", "maxLength", "minLength", "pattern", "items", "additionalItems",
    "maxItems", "minItems", "uniqueItems", "contains", "maxProperties", "minProperties",
    "required", "properties", "patternProperties", "additionalProperties", "dependencies",
    "propertyNames", "if", "then", "else", "allOf", "anyOf", "oneOf", "not", "format",
    "contentEncoding", "contentMediaType", "discriminator", "externalDocs", "deprecated",
}  # fmt: skip
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")

# MQTT bindings 0.2.0: the channel binding is reserved and must be empty; QoS and retain
# are operation fields; message fields are MQTT 5 message properties.
MQTT_BINDING_VERSION = "0.2.0"
MQTT_OPERATION_FIELDS = {"qos", "retain", "messageExpiryInterval", "bindingVersion"}
MQTT_MESSAGE_FIELDS = {
    "payloadFormatIndicator", "correlationData", "contentType", "responseTopic",
    "bindingVersion",
}  # fmt: skip
MQTT_SERVER_FIELDS = {
    "clientId", "cleanSession", "lastWill", "keepAlive", "sessionExpiryInterval",
    "maximumPacketSize", "bindingVersion",
}  # fmt: skip

DOCUMENT = asyncapi_document()


def fields(node: dict[str, Any]) -> set[str]:
    return {key for key in node if not key.startswith("x-")}


def resolve(ref: str) -> Any:
    assert ref.startswith("#/"), f"only local references are used: {ref}"
    target: Any = DOCUMENT
    for part in ref[2:].split("/"):
        assert isinstance(target, dict), f"dangling $ref {ref}"
        assert part in target, f"dangling $ref {ref}"
        target = target[part]
    return target


def test_document_info_and_servers() -> None:
    assert DOCUMENT["asyncapi"] == "3.0.0"
    assert fields(DOCUMENT) <= DOCUMENT_FIELDS
    info = DOCUMENT["info"]
    assert fields(info) <= INFO_FIELDS
    assert isinstance(info["title"], str)
    assert info["title"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["version"])
    for server in DOCUMENT["servers"].values():
        assert fields(server) <= SERVER_FIELDS
        assert {"host", "protocol"} <= set(server)
        assert "://" not in server["host"], "3.0 splits the 2.x url into host and protocol"
        assert server["protocol"] in {"mqtt", "mqtts", "secure-mqtt", "ws", "wss"}
        assert fields(server.get("bindings", {}).get("mqtt", {})) <= MQTT_SERVER_FIELDS


@pytest.mark.parametrize("name", sorted(DOCUMENT["channels"]))
def test_channels_have_an_address_parameters_and_messages(name: str) -> None:
    channel = DOCUMENT["channels"][name]
    assert COMPONENT_KEY.match(name)
    assert fields(channel) <= CHANNEL_FIELDS
    address = channel["address"]
    assert isinstance(address, str)
    assert not set(address) & {"+", "#"}, "an address is a topic, not a filter"
    # Every {placeholder} is a declared parameter and every parameter is used.
    assert set(re.findall(r"\{([^}]+)\}", address)) == set(channel.get("parameters", {}))
    for parameter in channel.get("parameters", {}).values():
        assert fields(parameter) <= PARAMETER_FIELDS
    assert channel["messages"], "a channel without messages carries nothing"
    for key, message in channel["messages"].items():
        assert COMPONENT_KEY.match(key)
        assert set(message) == {"$ref"}
        assert message["$ref"].startswith("#/components/messages/")
        resolve(message["$ref"])
    # MQTT channel bindings are reserved: no qos or retain here.
    assert channel.get("bindings", {}).get("mqtt", {}) == {}


EXPECTED_RULES: dict[str, TopicRule] = {
    "telemetry": topic_rule(MessageKind.TELEMETRY),
    "status": topic_rule(MessageKind.STATUS),
    "event": topic_rule(MessageKind.EVENT),
    "request": topic_rule(MessageKind.REQUEST),
    "response": topic_rule(MessageKind.RESPONSE),
    "alert": topic_rule(ServiceMessageKind.ALERT),
    "notice": topic_rule(ServiceMessageKind.NOTICE),
    "serviceStatus": SERVICE_STATUS_RULE,
    "deadLetter": DEAD_LETTER_RULE,
}


@pytest.mark.parametrize("name", sorted(DOCUMENT["operations"]))
def test_operations_point_at_channels_and_carry_the_mqtt_bindings(name: str) -> None:
    operation = DOCUMENT["operations"][name]
    assert COMPONENT_KEY.match(name)
    assert fields(operation) <= OPERATION_FIELDS
    assert operation["action"] in {"send", "receive"}
    ref = operation["channel"]["$ref"]
    assert set(operation["channel"]) == {"$ref"}
    assert re.fullmatch(r"#/channels/[^/]+", ref), "an operation names a channel, by $ref"
    channel_name = ref.removeprefix("#/channels/")
    resolve(ref)
    for message in operation.get("messages", []):
        # 3.0: an operation's messages are a subset of its channel's.
        assert message["$ref"].startswith(f"{ref}/messages/")
        resolve(message["$ref"])
    if "reply" in operation:
        reply = operation["reply"]
        assert fields(reply) <= REPLY_FIELDS
        assert set(reply["channel"]) == {"$ref"}
        assert re.fullmatch(r"#/channels/[^/]+", reply["channel"]["$ref"])
        resolve(reply["channel"]["$ref"])

    mqtt = operation["bindings"]["mqtt"]
    assert fields(mqtt) <= MQTT_OPERATION_FIELDS
    assert mqtt["bindingVersion"] == MQTT_BINDING_VERSION
    assert type(mqtt["qos"]) is int
    assert mqtt["qos"] in (0, 1, 2)
    rule = EXPECTED_RULES[channel_name]
    assert mqtt["qos"] == rule.qos
    if operation["action"] == "send":
        assert mqtt["retain"] is rule.retain


def test_every_channel_is_used_by_an_operation() -> None:
    operations = DOCUMENT["operations"].values()
    used = {op["channel"]["$ref"].removeprefix("#/channels/") for op in operations}
    assert used == set(DOCUMENT["channels"])
    sent = {op["channel"]["$ref"] for op in operations if op["action"] == "send"}
    assert sent == {f"#/channels/{name}" for name in DOCUMENT["channels"]}


def test_components() -> None:
    components = DOCUMENT["components"]
    assert fields(components) <= COMPONENT_FIELDS
    for group in components.values():
        assert all(COMPONENT_KEY.match(key) for key in group)
    for message in components["messages"].values():
        assert fields(message) <= MESSAGE_FIELDS
        assert message["contentType"] == "application/json"
        resolve(message["payload"]["$ref"])
        mqtt = message.get("bindings", {}).get("mqtt")
        if mqtt is not None:
            assert fields(mqtt) <= MQTT_MESSAGE_FIELDS
            assert mqtt["bindingVersion"] == MQTT_BINDING_VERSION
        assert message["examples"], f"{message['name']} has no example"
        for example in message["examples"]:
            assert fields(example) <= MESSAGE_EXAMPLE_FIELDS
            assert isinstance(example["payload"], dict)


def test_security_schemes_are_declared_and_used_by_the_servers() -> None:
    schemes = DOCUMENT["components"]["securitySchemes"]
    for scheme in schemes.values():
        assert fields(scheme) <= SECURITY_SCHEME_FIELDS
        assert scheme["type"] in SECURITY_SCHEME_TYPES
    used: set[str] = set()
    for server in DOCUMENT["servers"].values():
        assert server["security"], "every server says how clients authenticate"
        for requirement in server["security"]:
            assert set(requirement) == {"$ref"}
            assert requirement["$ref"].startswith("#/components/securitySchemes/")
            used.add(resolve(requirement["$ref"])["type"])
    assert used == {"userPassword", "X509"}
    tls = [s for s in DOCUMENT["servers"].values() if s["protocol"] != "mqtt"]
    assert all(s["protocol"] == "secure-mqtt" for s in tls)
    for server in DOCUMENT["servers"].values():
        types = {resolve(r["$ref"])["type"] for r in server["security"]}
        assert "X509" not in types or server["protocol"] == "secure-mqtt", "X509 needs TLS"


def _schema_nodes(schema: object) -> list[dict[str, Any]]:
    """Every subschema: the node and those under keywords that hold schemas."""
    if not isinstance(schema, dict):
        return []
    found = [schema]
    for key, value in schema.items():
        if key in {"properties", "patternProperties", "$defs", "definitions", "dependencies"}:
            found += [n for sub in value.values() for n in _schema_nodes(sub)]
        elif key in {"allOf", "anyOf", "oneOf"} or (key == "items" and isinstance(value, list)):
            found += [n for sub in value for n in _schema_nodes(sub)]
        elif key in {"items", "additionalProperties", "not", "if", "then", "else", "contains"}:
            found += _schema_nodes(value)
    return found


@pytest.mark.parametrize("name", sorted(DOCUMENT["components"]["schemas"]))
def test_schemas_use_the_asyncapi_schema_format(name: str) -> None:
    for node in _schema_nodes(DOCUMENT["components"]["schemas"][name]):
        assert set(node) <= SCHEMA_KEYWORDS, f"{name}: {set(node) - SCHEMA_KEYWORDS}"
        if "discriminator" in node:
            assert isinstance(node["discriminator"], str), "AsyncAPI's is a property name"
            for option in node["oneOf"]:
                target = resolve(option["$ref"])
                assert node["discriminator"] in target["required"]


def test_qos_is_declared_on_operations_only() -> None:
    """Not on channels (the old placement), servers or messages either."""

    def walk(node: object, path: str) -> list[str]:
        if isinstance(node, dict):
            found = [path] if "qos" in node and not path.startswith("operations.") else []
            return found + [p for k, v in node.items() for p in walk(v, f"{path}.{k}".strip("."))]
        return []

    assert walk(DOCUMENT, "") == []
