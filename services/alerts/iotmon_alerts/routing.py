"""Who gets a delivery: subscriptions, their scope and filter, and the payload each one sees.

Privacy is decided here, in one pure function: a tenant (operator)
subscription sees its tenant's alerts and notices; a facility's only those
about its own sites; a guardian's only those the rules addressed to that
guardian by name (their own children; bus-level notices to guardians of
children on that bus), with other families' guardians taken out of the
recipients it is shown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from iotmon_alerts.domain.model import SEVERITY_RANK, Alert, Delivery, NoticeOut, Role, Target
from iotmon_contract import AlertMessage, AlertSeverity, AlertState, Notice
from iotmon_contract import Subject as ContractSubject
from iotmon_contract.topics import IDENTIFIER_PATTERN

PAYLOAD_VERSION = 1


class Owner(StrEnum):
    TENANT = "tenant"
    FACILITY = "facility"
    GUARDIAN = "guardian"


class EventType(StrEnum):
    ALERTS = "alerts"
    NOTICE = "notice"


class SubscriptionFilter(BaseModel):
    """What a subscription wants, within what its owner may see; unset: everything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    types: list[EventType] | None = Field(
        default=None, max_length=2, description="alerts, notice, or both (unset)."
    )
    rules: list[str] | None = Field(
        default=None,
        max_length=100,
        description="Only these rules (alerts) or kinds (notices), e.g. child_left_aboard.",
        json_schema_extra={"items": {"pattern": IDENTIFIER_PATTERN}},
    )
    min_severity: AlertSeverity | None = Field(
        default=None, description="Only alerts at least this severe (notices always pass)."
    )
    states: list[AlertState] | None = Field(
        default=None, max_length=4, description="Only alerts entering these states."
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant: str
    owner: Owner
    url: str
    secret: str
    filter: SubscriptionFilter
    sites: frozenset[str] = frozenset()
    guardian: str | None = None
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class Webhook:
    """One message to one subscription: ``id`` is its webhook-id, stable across retries."""

    id: str
    subscription: Subscription
    event_type: EventType
    payload: dict[str, Any]


def _in_scope(subscription: Subscription, item: Alert | NoticeOut) -> bool:
    if item.tenant != subscription.tenant:
        return False
    owner = subscription.owner
    if owner is Owner.TENANT:
        return True
    if owner is Owner.FACILITY:
        return item.subject.site is not None and item.subject.site in subscription.sites
    return subscription.guardian is not None and subscription.guardian in item.guardians


def _alert_passes(wanted: SubscriptionFilter, alert: Alert) -> bool:
    if wanted.types is not None and EventType.ALERTS not in wanted.types:
        return False
    if wanted.rules is not None and alert.rule not in wanted.rules:
        return False
    if wanted.min_severity is not None and (
        SEVERITY_RANK[alert.severity] < SEVERITY_RANK[wanted.min_severity]
    ):
        return False
    return wanted.states is None or alert.state in wanted.states


def _notice_passes(wanted: SubscriptionFilter, notice: NoticeOut) -> bool:
    if wanted.types is not None and EventType.NOTICE not in wanted.types:
        return False
    return wanted.rules is None or notice.kind in wanted.rules


def _visible_targets(subscription: Subscription, targets: Sequence[Target]) -> list[Target]:
    """A guardian is shown the roles and themselves, never another family's guardian."""
    if subscription.owner is not Owner.GUARDIAN:
        return list(targets)
    return [t for t in targets if t.role is not Role.GUARDIAN or t.id == subscription.guardian]


def redact_for_guardian(data: dict[str, Any], guardian: str) -> dict[str, Any]:
    """A bus notification's details as one guardian may see them: no other guardian named."""
    record = data.get("notification")
    if not isinstance(record, dict):
        return data
    recipients = [
        r
        for r in record.get("recipients", [])
        if r.get("role") != Role.GUARDIAN.value or r.get("id") == guardian
    ]
    return {**data, "notification": {**record, "recipients": recipients}}


def visible_targets(targets: Sequence[Target], guardian: str | None) -> list[Target]:
    """Every target for an operator; for a guardian, the roles and themselves only."""
    if guardian is None:
        return list(targets)
    return [t for t in targets if t.role is not Role.GUARDIAN or t.id == guardian]


def _redact(subscription: Subscription, data: dict[str, Any]) -> dict[str, Any]:
    if subscription.owner is not Owner.GUARDIAN or subscription.guardian is None:
        return data
    return redact_for_guardian(data, subscription.guardian)


def _subject(item: Alert | NoticeOut) -> ContractSubject:
    s = item.subject
    return ContractSubject(device=s.device, site=s.site, bus=s.bus, child=s.child)


def alert_message(alert: Alert) -> AlertMessage:
    details = dict(alert.details)
    if alert.acknowledged_by is not None:
        details["acknowledged_by"] = alert.acknowledged_by
        details["ack_reason"] = alert.ack_reason
    return AlertMessage(
        fingerprint=alert.fingerprint,
        rule=alert.rule,
        state=alert.state,
        severity=alert.severity,
        subject=_subject(alert),
        summary=alert.summary,
        details=details,
        starts_at=alert.starts_at,
        ts=alert.ts,
    )


def notice_message(notice: NoticeOut) -> Notice:
    return Notice(
        kind=notice.kind,
        ts=notice.ts,
        subject=_subject(notice),
        summary=notice.summary,
        data=dict(notice.data),
    )


def _targets_json(targets: Iterable[Target]) -> list[dict[str, str]]:
    return [{"role": t.role.value, "id": t.id} for t in targets]


def webhook_id(subscription_id: str, delivery_key: str) -> str:
    """The same delivery to the same subscription always has the same id (idempotent)."""
    digest = hashlib.sha256(f"{subscription_id}\x1f{delivery_key}".encode()).hexdigest()
    return f"msg_{digest[:32]}"


def route(
    delivery: Delivery, subscriptions: Iterable[Subscription], now: datetime
) -> list[Webhook]:
    """The webhooks one delivery makes: one per subscription that may and wants to see it."""
    webhooks = []
    for subscription in subscriptions:
        if not subscription.enabled or subscription.tenant != delivery.tenant:
            continue
        wanted = subscription.filter
        base: dict[str, Any] = {
            "version": PAYLOAD_VERSION,
            "tenant": delivery.tenant,
            "subscription": subscription.id,
        }
        notice = delivery.notice
        if notice is not None:
            if not (_in_scope(subscription, notice) and _notice_passes(wanted, notice)):
                continue
            message = notice_message(notice).model_dump(mode="json", exclude_none=True)
            message["data"] = _redact(subscription, message["data"])
            message["recipients"] = _targets_json(_visible_targets(subscription, notice.targets))
            event_type = EventType.NOTICE
            data = {**base, "notice": message}
        else:
            alerts = [
                a
                for a in delivery.alerts
                if _in_scope(subscription, a) and _alert_passes(wanted, a)
            ]
            if not alerts:
                continue
            messages = []
            for alert in alerts:
                message = alert_message(alert).model_dump(mode="json", exclude_none=True)
                message["details"] = _redact(subscription, message["details"])
                message["recipients"] = _targets_json(_visible_targets(subscription, alert.targets))
                messages.append(message)
            event_type = EventType.ALERTS
            data = {**base, "group": dict(delivery.group), "alerts": messages}
        webhooks.append(
            Webhook(
                id=webhook_id(subscription.id, delivery.key),
                subscription=subscription,
                event_type=event_type,
                payload={
                    "type": f"iotmon.{event_type.value}",
                    "timestamp": now.isoformat(),
                    "data": data,
                },
            )
        )
    return webhooks
