"""Roles and identities: exactly the topics each kind of client may publish and read."""

from __future__ import annotations

import pytest

from iotmon_tools.broker.identities import (
    IdentityError,
    IdentityKind,
    admin_identity,
    device_identity,
    gateway_identity,
    health_identity,
    kind_of_role,
    role_name,
    service_identity,
)
from iotmon_tools.broker.roles import DEFAULT_ACCESS, Acl, AclType, Role, devices_of


def grants(role: Role, kind: AclType) -> set[str]:
    return {acl.topic for acl in role.acls if acl.type is kind and acl.allow}


def test_default_access_refuses_publish_subscribe_and_receive() -> None:
    assert DEFAULT_ACCESS == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }


def test_a_device_publishes_its_own_topics_and_reads_its_own_requests() -> None:
    identity = device_identity("acme", "env-1")
    assert identity.username == "acme/env-1"
    assert identity.role.name == "iotmon-device:acme/env-1"
    assert grants(identity.role, AclType.PUBLISH) == {
        "iotmon/v1/acme/env-1/telemetry",
        "iotmon/v1/acme/env-1/status",
        "iotmon/v1/acme/env-1/event",
        "iotmon/v1/acme/env-1/response/+",
    }
    requests = {"iotmon/v1/acme/env-1/request/+"}
    assert grants(identity.role, AclType.SUBSCRIBE_PATTERN) == requests
    assert grants(identity.role, AclType.RECEIVE) == requests
    assert grants(identity.role, AclType.SUBSCRIBE_LITERAL) == set()


def test_a_gateway_speaks_for_itself_and_its_children_only() -> None:
    identity = gateway_identity("demo", "gw-1", ["env-1", "env-2"])
    assert identity.username == "demo/gw-1"
    assert identity.kind is IdentityKind.GATEWAY
    published = grants(identity.role, AclType.PUBLISH)
    for device in ("gw-1", "env-1", "env-2"):
        assert f"iotmon/v1/demo/{device}/telemetry" in published
        assert f"iotmon/v1/demo/{device}/status" in published
        assert f"iotmon/v1/demo/{device}/request/+" in grants(identity.role, AclType.RECEIVE)
    assert len(published) == 3 * 4
    assert not any("+/telemetry" in topic or "#" in topic for topic in published)
    assert devices_of(identity.role.acls) == ["gw-1", "env-1", "env-2"]


@pytest.mark.parametrize(
    ("children", "message"),
    [
        (["gw-1"], "its own child"),
        (["env-1", "env-1"], "listed twice"),
        (["Env-1"], "child device 'Env-1' must match"),
        (["+"], "must match"),
        (["a/b"], "must match"),
    ],
)
def test_bad_children_are_refused(children: list[str], message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        gateway_identity("demo", "gw-1", children)


@pytest.mark.parametrize(
    ("tenant", "device"), [("_sys", "x"), ("acme", "_service"), ("acme", "#"), ("", "x")]
)
def test_ids_that_could_reach_other_topics_are_refused(tenant: str, device: str) -> None:
    with pytest.raises(IdentityError):
        device_identity(tenant, device)


def test_a_service_reads_in_its_own_share_group_and_writes_under_sys_and_its_service() -> None:
    role = service_identity("ingest").role
    assert service_identity("ingest").username == "iotmon-ingest"
    patterns = grants(role, AclType.SUBSCRIBE_PATTERN)
    for kind in ("telemetry", "status", "event"):
        assert f"iotmon/v1/+/+/{kind}" in patterns
        assert f"$share/iotmon-ingest/iotmon/v1/+/+/{kind}" in patterns
        assert f"iotmon/v1/+/+/{kind}" in grants(role, AclType.RECEIVE)
    assert not any(p.startswith("$share/+") or "#" in p for p in patterns)
    assert grants(role, AclType.PUBLISH) == {
        "iotmon/v1/_sys/dead-letter/ingest",
        "iotmon/v1/_sys/status/ingest/+",
        "iotmon/v1/+/_service/ingest/alert",
        "iotmon/v1/+/_service/ingest/notice",
    }
    with pytest.raises(IdentityError, match="request"):
        service_identity("request")  # would collide with the device command filters
    commanding = service_identity("api", share_group="api-1", commands=True).role
    assert "iotmon/v1/+/+/request/+" in grants(commanding, AclType.PUBLISH)
    assert "$share/api-1/iotmon/v1/+/+/response/+" in grants(commanding, AclType.SUBSCRIBE_PATTERN)


def test_the_home_assistant_bridge_writes_its_discovery_prefix_and_nothing_more() -> None:
    plain = service_identity("homeassistant").role
    bridge = service_identity("homeassistant", discovery_prefix="homeassistant").role
    assert grants(bridge, AclType.PUBLISH) - grants(plain, AclType.PUBLISH) == {"homeassistant/#"}
    assert grants(bridge, AclType.SUBSCRIBE_PATTERN) - grants(plain, AclType.SUBSCRIBE_PATTERN) == {
        "homeassistant/sensor/+/+/config"
    }
    assert "homeassistant/sensor/+/+/config" in grants(bridge, AclType.RECEIVE)
    for bad in ("#", "homeassistant/+", "", "a//b"):
        with pytest.raises(IdentityError, match="discovery prefix"):
            service_identity("homeassistant", discovery_prefix=bad)


def test_health_and_admin_roles_are_narrow_and_shared() -> None:
    health = health_identity()
    assert health.username == "iotmon-health"
    assert health.role.acls == (
        Acl(AclType.SUBSCRIBE_LITERAL, "$SYS/broker/uptime"),
        Acl(AclType.RECEIVE, "$SYS/broker/uptime"),
    )
    assert health_identity("probe").role == health.role
    admin = admin_identity()
    assert grants(admin.role, AclType.PUBLISH) == {"$CONTROL/dynamic-security/v1"}
    assert grants(admin.role, AclType.RECEIVE) == {"$CONTROL/dynamic-security/v1/response"}


@pytest.mark.parametrize("kind", list(IdentityKind))
def test_role_names_record_the_kind(kind: IdentityKind) -> None:
    assert kind_of_role(role_name(kind, "acme/env-1")) is kind
    assert kind_of_role(role_name(kind)) is kind


def test_foreign_role_names_have_no_kind() -> None:
    assert kind_of_role("admin") is None
    assert kind_of_role("iotmon-wizard:x") is None
