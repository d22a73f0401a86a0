"""Dead letters: messages ingest refused, with the reason, newest first (within scope)."""

from __future__ import annotations

from fastapi import APIRouter

from iotmon_api import crud
from iotmon_api.deps import LimitQuery, ScopeDep, StoreDep
from iotmon_api.schemas import DeadLettersPublic

router = APIRouter(prefix="/dead-letters", tags=["dead-letters"])


@router.get("", summary="Recent dead letters on the topics the token may see")
def list_dead_letters(
    store: StoreDep, scope: ScopeDep, limit: LimitQuery = 100
) -> DeadLettersPublic:
    return crud.list_dead_letters(store, limit, scope.dead_letter_topics())
