"""Webhook subscriptions (a tenant's, a facility's, a guardian's) and their deliveries.

Who creates a subscription decides its scope: an operator's sees the tenant, a
facility's its sites, a guardian's what is addressed to that guardian. The
signing secret is returned once, on creation. Deliveries that exhausted their
retries are ``dead``: list them and replay one (the same webhook-id).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status

from iotmon_alerts.adapters.database import AlertsDatabase, DeliveryState
from iotmon_alerts.routing import Owner, Subscription
from iotmon_api import alerts_crud
from iotmon_api.deps import AlertsDep, ClockDep, CurrentPrincipal, LimitQuery, ScopeDep, TenantQuery
from iotmon_api.problems import Conflict, NotFound
from iotmon_api.schemas import (
    DeliveriesPublic,
    DeliveryPublic,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionsPublic,
)
from iotmon_api.scope import Scope
from iotmon_registry import Principal, PrincipalKind

router = APIRouter(tags=["subscriptions"])

SubscriptionIdPath = Annotated[str, Path(pattern=r"^sub_[0-9a-f]{20}$")]
DeliveryIdPath = Annotated[str, Path(pattern=r"^msg_[0-9a-f]{32}$", description="webhook-id")]


def _mine(principal: Principal, subscription: Subscription) -> bool:
    """Whether ``principal`` may see (and manage) ``subscription``."""
    kind = principal.kind
    if kind is PrincipalKind.SERVICE:
        return True
    if subscription.tenant != principal.tenant:
        return False
    if kind is PrincipalKind.OPERATOR:
        return True
    if kind is PrincipalKind.FACILITY:
        return subscription.owner is Owner.FACILITY and subscription.sites <= principal.sites
    return subscription.owner is Owner.GUARDIAN and subscription.guardian == principal.guardian


def _visible(alerts: AlertsDatabase, scope: Scope, tenant: str | None) -> list[Subscription]:
    visible = scope.alerts(tenant)
    return [s for s in alerts.subscriptions(visible.tenant) if _mine(scope.principal, s)]


@router.get("/subscriptions", summary="Webhook subscriptions the token may manage")
def list_subscriptions(
    alerts: AlertsDep, scope: ScopeDep, tenant: TenantQuery = None
) -> SubscriptionsPublic:
    data = [alerts_crud.subscription_public(s) for s in _visible(alerts, scope, tenant)]
    return SubscriptionsPublic(data=data, count=len(data))


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL; its scope is the token's (tenant, sites or guardian)",
)
def create_subscription(
    alerts: AlertsDep,
    scope: ScopeDep,
    principal: CurrentPrincipal,
    clock: ClockDep,
    body: SubscriptionCreate,
) -> SubscriptionCreated:
    scope.writer(body.tenant, "create subscriptions")
    owner = {
        PrincipalKind.OPERATOR: Owner.TENANT,
        PrincipalKind.FACILITY: Owner.FACILITY,
        PrincipalKind.GUARDIAN: Owner.GUARDIAN,
    }[principal.kind]
    created = alerts.add_subscription(
        body.tenant,
        owner,
        body.url,
        sites=principal.sites if owner is Owner.FACILITY else frozenset(),
        guardian=principal.guardian if owner is Owner.GUARDIAN else None,
        filter=body.filter,
        description=body.description,
        created_by=f"{principal.kind.value}:{principal.name or principal.token_id or '?'}",
        now=clock(),
    )
    public = alerts_crud.subscription_public(created)
    return SubscriptionCreated(**public.model_dump(), secret=created.secret)


def _own_subscription(
    alerts: AlertsDatabase, principal: Principal, subscription_id: str
) -> Subscription:
    found = alerts.subscription(subscription_id)
    if found is None or not _mine(principal, found):
        raise NotFound(f"no subscription {subscription_id} in this token's scope")
    return found


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a subscription (its undelivered webhooks with it)",
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such subscription in scope."}},
)
def delete_subscription(
    alerts: AlertsDep,
    scope: ScopeDep,
    principal: CurrentPrincipal,
    subscription_id: SubscriptionIdPath,
) -> None:
    found = _own_subscription(alerts, principal, subscription_id)
    scope.writer(found.tenant, "delete subscriptions")
    alerts.delete_subscription(subscription_id)


@router.get("/deliveries", summary="Webhook deliveries of the token's subscriptions")
def list_deliveries(
    alerts: AlertsDep,
    scope: ScopeDep,
    state: Annotated[
        Literal["pending", "delivered", "dead"] | None,
        Query(description="Only in this state: dead = out of retries, waiting for a replay."),
    ] = None,
    tenant: TenantQuery = None,
    limit: LimitQuery = 100,
) -> DeliveriesPublic:
    mine = [s.id for s in _visible(alerts, scope, tenant)]
    found = alerts.outbox(
        state=DeliveryState(state) if state else None, subscription_ids=mine, limit=limit
    )
    data = [alerts_crud.delivery_public(item) for item in found]
    return DeliveriesPublic(data=data, count=len(data))


@router.post(
    "/deliveries/{delivery_id}/replay",
    summary="Send a dead delivery again (same webhook-id, retries from the start)",
    responses={
        status.HTTP_404_NOT_FOUND: {"description": "No such delivery in scope."},
        status.HTTP_409_CONFLICT: {"description": "The delivery is not dead."},
    },
)
def replay_delivery(
    alerts: AlertsDep,
    scope: ScopeDep,
    principal: CurrentPrincipal,
    clock: ClockDep,
    delivery_id: DeliveryIdPath,
) -> DeliveryPublic:
    item = alerts.outbox_item(delivery_id)
    if item is None:
        raise NotFound(f"no delivery {delivery_id}")
    _own_subscription(alerts, principal, item.subscription_id)
    scope.writer(item.tenant, "replay deliveries")
    if item.state is not DeliveryState.DEAD:
        raise Conflict(
            f"delivery {delivery_id} is {item.state.value}: only dead deliveries are replayed"
        )
    replayed = alerts.replay(delivery_id, clock())
    assert replayed is not None
    return alerts_crud.delivery_public(replayed)
