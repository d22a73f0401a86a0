"""Topics added in contract 1.1: events, commands, service alerts/notices/availability, ACLs.

Filters are checked with paho's own matcher (``topic_matches_sub``), the MQTT rules a
broker applies, rather than with string comparisons.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from iotmon_contract import (
    CONTRACT_VERSION,
    MessageKind,
    ServiceMessageKind,
    TopicError,
    TopicInfo,
    alert_filter,
    alert_topic,
    device_acl,
    device_acl_pattern,
    event_filter,
    event_topic,
    notice_filter,
    notice_topic,
    parse_service_topic,
    parse_topic,
    reply_topic,
    request_filter,
    request_topic,
    response_filter,
    response_topic,
    service_status_filter,
    service_status_topic,
    status_filter,
    status_topic,
    telemetry_filter,
    telemetry_topic,
    topic_rule,
)
from iotmon_contract.topics import DEAD_LETTER_RULE, RESERVED_SERVICE_NAMES, SERVICE_STATUS_RULE

identifiers = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")
services = identifiers.filter(lambda s: s not in RESERVED_SERVICE_NAMES)


def test_version_is_1_2_and_the_topic_root_stays_v1() -> None:
    assert CONTRACT_VERSION == "1.2.0"
    assert telemetry_topic("acme", "env-1") == "iotmon/v1/acme/env-1/telemetry"


def test_topic_strings() -> None:
    assert event_topic("acme", "bus-12") == "iotmon/v1/acme/bus-12/event"
    assert request_topic("acme", "reader-1", "sweep") == "iotmon/v1/acme/reader-1/request/sweep"
    assert response_topic("acme", "reader-1", "sweep") == ("iotmon/v1/acme/reader-1/response/sweep")
    assert alert_topic("acme", "alerts") == "iotmon/v1/acme/_service/alerts/alert"
    assert notice_topic("acme", "bus-rules") == "iotmon/v1/acme/_service/bus-rules/notice"
    assert service_status_topic("ingest", "ingest-0") == "iotmon/v1/_sys/status/ingest/ingest-0"


def test_filter_strings() -> None:
    assert event_filter() == "iotmon/v1/+/+/event"
    assert event_filter("acme") == "iotmon/v1/acme/+/event"
    assert request_filter() == "iotmon/v1/+/+/request/+"
    assert request_filter("acme", "reader-1") == "iotmon/v1/acme/reader-1/request/+"
    assert response_filter() == "iotmon/v1/+/+/response/+"
    assert response_filter("acme") == "iotmon/v1/acme/+/response/+"
    assert alert_filter() == "iotmon/v1/+/_service/+/alert"
    assert alert_filter("acme", "alerts") == "iotmon/v1/acme/_service/alerts/alert"
    assert notice_filter("acme") == "iotmon/v1/acme/_service/+/notice"
    assert service_status_filter() == "iotmon/v1/_sys/status/+/+"
    assert service_status_filter("ingest") == "iotmon/v1/_sys/status/ingest/+"


@pytest.mark.parametrize("bad", ["#", "a+", "+a", "Acme", "", "_sys", "a/b"])
def test_filters_refuse_segments_that_would_widen_or_break_them(bad: str) -> None:
    builds: list[Callable[[], str]] = [
        lambda: event_filter(bad),
        lambda: request_filter("acme", bad),
        lambda: response_filter(bad),
        lambda: alert_filter(bad),
        lambda: notice_filter("acme", bad),
        lambda: service_status_filter(bad),
    ]
    for build in builds:
        with pytest.raises(TopicError):
            build()


RULES: dict[MessageKind | ServiceMessageKind, tuple[int, bool]] = {
    # kind: (qos, retain) as the brief and the AsyncAPI description promise them
    MessageKind.TELEMETRY: (1, False),
    MessageKind.STATUS: (1, True),
    MessageKind.EVENT: (1, False),
    MessageKind.REQUEST: (1, False),
    MessageKind.RESPONSE: (1, False),
    ServiceMessageKind.ALERT: (1, False),
    ServiceMessageKind.NOTICE: (1, False),
}


def test_qos_and_retain_of_every_kind() -> None:
    assert set(RULES) == set(MessageKind) | set(ServiceMessageKind)
    for kind, (qos, retain) in RULES.items():
        rule = topic_rule(kind)
        assert (rule.qos, rule.retain) == (qos, retain), kind
    assert (SERVICE_STATUS_RULE.qos, SERVICE_STATUS_RULE.retain) == (1, True)
    assert (DEAD_LETTER_RULE.qos, DEAD_LETTER_RULE.retain) == (1, False)


@given(identifiers, identifiers, identifiers)
def test_device_topics_round_trip(tenant: str, device: str, action: str) -> None:
    assert parse_topic(event_topic(tenant, device)) == TopicInfo(tenant, device, MessageKind.EVENT)
    request = parse_topic(request_topic(tenant, device, action))
    assert request == TopicInfo(tenant, device, MessageKind.REQUEST, action)
    response = parse_topic(response_topic(tenant, device, action))
    assert response == TopicInfo(tenant, device, MessageKind.RESPONSE, action)
    assert reply_topic(request_topic(tenant, device, action)) == response_topic(
        tenant, device, action
    )


@given(identifiers, services)
def test_service_topics_round_trip(tenant: str, service: str) -> None:
    alert = parse_service_topic(alert_topic(tenant, service))
    assert (alert.tenant, alert.service, alert.kind) == (tenant, service, ServiceMessageKind.ALERT)
    assert parse_service_topic(notice_topic(tenant, service)).kind is ServiceMessageKind.NOTICE


def test_existing_callers_of_topic_info_keep_working() -> None:
    info = parse_topic("iotmon/v1/acme/env-1/telemetry")
    assert info == TopicInfo("acme", "env-1", MessageKind.TELEMETRY)
    assert info.action is None


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("iotmon/v1/acme/env-1/request", "lacks its /<action>"),
        ("iotmon/v1/acme/env-1/response", "lacks its /<action>"),
        ("iotmon/v1/acme/env-1/telemetry/x", "takes no segment"),
        ("iotmon/v1/acme/env-1/event/x", "takes no segment"),
        ("iotmon/v1/acme/env-1/request/", "action"),
        ("iotmon/v1/acme/env-1/request/Sweep", "action"),
        ("iotmon/v1/acme/env-1/request/+", "action"),
        ("iotmon/v1/acme/env-1/request/a/b", "is not"),
        ("iotmon/v1/acme/env-1/command/sweep", "unknown kind"),
        ("iotmon/v2/acme/env-1/request/sweep", "is not"),
        ("iotmon/v1/acme/_service/alerts/alert", "unknown kind"),
        ("iotmon/v1/acme/_service/event", "device"),
    ],
)
def test_bad_device_topics_are_refused_saying_why(topic: str, says: str) -> None:
    with pytest.raises(TopicError, match=says.replace("+", r"\+")):
        parse_topic(topic)


@pytest.mark.parametrize(
    ("topic", "says"),
    [
        ("iotmon/v1/acme/_service/alerts/event", "unknown service kind"),
        ("iotmon/v1/acme/_service/request/alert", "reserved"),
        ("iotmon/v1/acme/_service/response/notice", "reserved"),
        ("iotmon/v1/acme/_service/Alerts/alert", "service"),
        ("iotmon/v1/Acme/_service/alerts/alert", "tenant"),
        ("iotmon/v1/acme/alerts/alerts/alert", "is not"),
        ("iotmon/v1/acme/_service/alerts", "is not"),
        ("iotmon/v1/_sys/status/ingest/ingest-0", "is not"),
    ],
)
def test_bad_service_topics_are_refused_saying_why(topic: str, says: str) -> None:
    with pytest.raises(TopicError, match=says):
        parse_service_topic(topic)


def test_reserved_service_names_and_non_request_replies_are_refused() -> None:
    for name in ("request", "response"):
        with pytest.raises(TopicError, match="reserved"):
            alert_topic("acme", name)
    with pytest.raises(TopicError, match="not a request topic"):
        reply_topic(response_topic("acme", "reader-1", "sweep"))
    with pytest.raises(TopicError, match="action"):
        request_topic("acme", "reader-1", "Sweep now")


DEVICE_FILTERS = [telemetry_filter(), status_filter(), event_filter()]
DEVICE_FILTERS += [request_filter(), response_filter()]
SERVICE_FILTERS = [alert_filter(), notice_filter(), service_status_filter()]


@given(identifiers, identifiers, services, identifiers)
def test_device_and_service_topics_never_match_each_others_filters(
    tenant: str, device: str, service: str, action: str
) -> None:
    device_topics = [
        telemetry_topic(tenant, device),
        status_topic(tenant, device),
        event_topic(tenant, device),
        request_topic(tenant, device, action),
        response_topic(tenant, device, action),
    ]
    service_topics = [
        alert_topic(tenant, service),
        notice_topic(tenant, service),
        service_status_topic(service, device),
    ]
    every_filter = DEVICE_FILTERS + SERVICE_FILTERS
    for topic, own_filter in zip(device_topics + service_topics, every_filter, strict=True):
        matching = [f for f in every_filter if topic_matches_sub(f, topic)]
        assert matching == [own_filter], topic


def test_a_device_acl_covers_its_own_topics_only() -> None:
    acl = device_acl("acme", "gw-1", ["env-1", "gw-1", "env-1"])
    assert acl.publish == (
        "iotmon/v1/acme/gw-1/telemetry",
        "iotmon/v1/acme/gw-1/status",
        "iotmon/v1/acme/gw-1/event",
        "iotmon/v1/acme/gw-1/response/+",
        "iotmon/v1/acme/env-1/telemetry",
        "iotmon/v1/acme/env-1/status",
        "iotmon/v1/acme/env-1/event",
        "iotmon/v1/acme/env-1/response/+",
    )
    assert acl.subscribe == (
        "iotmon/v1/acme/gw-1/request/+",
        "iotmon/v1/acme/env-1/request/+",
    )


@given(identifiers, identifiers, identifiers, identifiers)
def test_acl_filters_match_exactly_the_devices_own_topics(
    tenant: str, device: str, other: str, action: str
) -> None:
    acl = device_acl(tenant, device)

    def may_publish(topic: str) -> bool:
        return any(topic_matches_sub(f, topic) for f in acl.publish)

    def may_subscribe(topic: str) -> bool:
        return any(topic_matches_sub(f, topic) for f in acl.subscribe)

    for name, allowed in ((device, True), (other, other == device)):
        assert may_publish(telemetry_topic(tenant, name)) is allowed
        assert may_publish(status_topic(tenant, name)) is allowed
        assert may_publish(event_topic(tenant, name)) is allowed
        assert may_publish(response_topic(tenant, name, action)) is allowed
        assert may_subscribe(request_topic(tenant, name, action)) is allowed
        assert not may_publish(request_topic(tenant, name, action))
        assert not may_subscribe(response_topic(tenant, name, action))
    assert not may_publish(alert_topic(tenant, "alerts"))
    assert not may_publish(service_status_topic("ingest", device))
    assert not may_publish(telemetry_topic(f"{tenant}x", device))


@pytest.mark.parametrize(
    ("tenant", "device", "child"),
    [("+", "gw-1", "a"), ("acme", "+", "a"), ("acme", "gw-1", "#"), ("acme", "gw-1", "+")],
)
def test_acls_refuse_wildcards_for_ids(tenant: str, device: str, child: str) -> None:
    with pytest.raises(TopicError):
        device_acl(tenant, device, [child])


def test_the_pattern_acl_is_the_device_acl_with_the_username_for_tenant_and_device() -> None:
    acl = device_acl_pattern()
    assert acl.publish == (
        "iotmon/v1/%u/telemetry",
        "iotmon/v1/%u/status",
        "iotmon/v1/%u/event",
        "iotmon/v1/%u/response/+",
    )
    assert acl.subscribe == ("iotmon/v1/%u/request/+",)
    expanded = device_acl_pattern("acme/env-1")
    assert expanded == device_acl("acme", "env-1")
