"""Alert data for the routes: query the alert database, map records to public schemas."""

from __future__ import annotations

from datetime import datetime

from iotmon_alerts.adapters.database import (
    Action,
    AlertQuery,
    AlertsDatabase,
    OutboxItem,
    StoredAlert,
    StoredNotice,
)
from iotmon_alerts.domain.lifecycle import Silence
from iotmon_alerts.domain.model import Subject
from iotmon_alerts.routing import Subscription, redact_for_guardian, visible_targets
from iotmon_api.schemas import (
    ActionPublic,
    AlertPublic,
    DeliveryPublic,
    NoticePublic,
    RecipientPublic,
    SilencePublic,
    SubjectPublic,
    SubscriptionPublic,
)
from iotmon_api.scope import AlertScope


def _subject(subject: Subject) -> SubjectPublic:
    return SubjectPublic(
        device=subject.device, site=subject.site, bus=subject.bus, child=subject.child
    )


def alert_public(stored: StoredAlert, scope: AlertScope) -> AlertPublic:
    alert = stored.alert
    details = dict(alert.details)
    if scope.guardian is not None:
        details = redact_for_guardian(details, scope.guardian)
    return AlertPublic(
        id=stored.id,
        tenant=alert.tenant,
        fingerprint=alert.fingerprint,
        rule=alert.rule,
        state=alert.state,
        active=alert.active,
        severity=alert.severity,
        subject=_subject(alert.subject),
        summary=alert.summary,
        details=details,
        recipients=[
            RecipientPublic(role=t.role.value, id=t.id)
            for t in visible_targets(alert.targets, scope.guardian)
        ],
        starts_at=alert.starts_at,
        ts=alert.ts,
        acknowledged_by=alert.acknowledged_by,
        ack_reason=alert.ack_reason,
    )


def in_scope(database: AlertsDatabase, stored: StoredAlert, scope: AlertScope) -> bool:
    alert = stored.alert
    if scope.tenant is not None and alert.tenant != scope.tenant:
        return False
    if scope.sites is not None and alert.subject.site not in scope.sites:
        return False
    return scope.guardian is None or scope.guardian in database.alert_guardians(stored.id)


def query(scope: AlertScope, **filters: object) -> AlertQuery:
    return AlertQuery(
        tenant=scope.tenant,
        guardian=scope.guardian,
        sites=scope.sites,
        **filters,  # type: ignore[arg-type]
    )


def notice_public(stored: StoredNotice, scope: AlertScope) -> NoticePublic:
    notice = stored.notice
    data = dict(notice.data)
    if scope.guardian is not None:
        data = redact_for_guardian(data, scope.guardian)
    return NoticePublic(
        id=stored.id,
        tenant=notice.tenant,
        kind=notice.kind,
        ts=notice.ts,
        subject=_subject(notice.subject),
        summary=notice.summary,
        data=data,
        recipients=[
            RecipientPublic(role=t.role.value, id=t.id)
            for t in visible_targets(notice.targets, scope.guardian)
        ],
    )


def action_public(action: Action) -> ActionPublic:
    return ActionPublic(
        id=action.id,
        tenant=action.tenant,
        kind=action.kind,
        fingerprint=action.fingerprint,
        by=action.by,
        reason=action.reason,
        state=action.state.value,
        result=action.result,
        created_at=action.created_at,
    )


def silence_public(silence: Silence, now: datetime) -> SilencePublic:
    return SilencePublic(
        id=silence.id,
        tenant=silence.tenant,
        matchers=dict(silence.matchers),
        starts_at=silence.starts_at,
        ends_at=silence.ends_at,
        created_by=silence.created_by,
        comment=silence.comment,
        active=silence.active(now),
    )


def subscription_public(subscription: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic(
        id=subscription.id,
        tenant=subscription.tenant,
        owner=subscription.owner.value,
        sites=sorted(subscription.sites),
        guardian=subscription.guardian,
        url=subscription.url,
        filter=subscription.filter,
        description=subscription.description,
        enabled=subscription.enabled,
    )


def delivery_public(item: OutboxItem) -> DeliveryPublic:
    return DeliveryPublic(
        id=item.id,
        subscription=item.subscription_id,
        tenant=item.tenant,
        event_type=item.event_type,
        state=item.state.value,
        attempts=item.attempts,
        next_attempt_at=item.next_attempt_at,
        last_error=item.last_error,
        last_status=item.last_status,
        created_at=item.created_at,
        delivered_at=item.delivered_at,
    )
