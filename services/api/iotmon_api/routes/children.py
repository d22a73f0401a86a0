"""Children from the registry: a guardian sees their own, an operator their tenant's."""

from __future__ import annotations

from fastapi import APIRouter, status

from iotmon_api import crud
from iotmon_api.deps import ChildPath, RegistryDep, ScopeDep, TenantPath, TenantQuery
from iotmon_api.problems import NotFound
from iotmon_api.schemas import ChildPublic, ChildrenPublic

router = APIRouter(prefix="/children", tags=["children"])


@router.get("", summary="Children within the token's scope, with their tag ids")
def list_children(
    registry: RegistryDep, scope: ScopeDep, tenant: TenantQuery = None
) -> ChildrenPublic:
    return crud.list_children(registry, scope.children(tenant))


@router.get(
    "/{tenant}/{child}",
    summary="One child",
    responses={status.HTTP_404_NOT_FOUND: {"description": "No such child in the tenant."}},
)
def read_child(
    registry: RegistryDep, scope: ScopeDep, tenant: TenantPath, child: ChildPath
) -> ChildPublic:
    scope.child(tenant, child)
    found = crud.read_child(registry, tenant, child)
    if found is None:
        raise NotFound(f"child {tenant}/{child} is not registered")
    return found
