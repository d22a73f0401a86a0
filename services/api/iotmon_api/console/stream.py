"""The live alert stream: alert changes from the alert service's database as server-sent
events (``text/event-stream``).

The alert service writes every alert transition to its database before it publishes it
(MQTT, webhooks), so the database is the one place that has them all, in order, across
service restarts; the stream follows its transition ids. A client that reconnects with
``Last-Event-ID`` (or ``after``) gets what it missed, each alert once as it is now.

Events: ``snapshot`` (once, without a cursor: the newest alerts in scope), ``alert`` (one
changed alert, ``id`` its transition), ``unavailable`` (the database is unreachable; the
stream keeps trying). Comment lines keep idle connections open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from iotmon_alerts.adapters.database import AlertsDatabase, DatabaseUnavailable
from iotmon_api import alerts_crud
from iotmon_api.console.settings import ConsoleSettings
from iotmon_api.scope import AlertScope

logger = logging.getLogger(__name__)

SNAPSHOT_SIZE = 200
PAGE = 500
"""Transitions read per poll; a longer backlog is sent over the next polls."""


@dataclass(frozen=True, slots=True)
class StreamStart:
    cursor: int
    snapshot: bool


def sse(event: str, data: str, event_id: int | None = None) -> str:
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    # data never holds a newline: it is compact JSON
    lines.append(f"data: {data}")
    return "\n".join(lines) + "\n\n"


async def alert_stream(
    request: Request,
    database: AlertsDatabase,
    visible: AlertScope,
    start: StreamStart,
    settings: ConsoleSettings,
) -> AsyncIterator[str]:
    query = alerts_crud.query(visible, limit=PAGE)
    cursor = start.cursor
    if start.snapshot:
        newest = await run_in_threadpool(
            database.alerts, alerts_crud.query(visible, limit=SNAPSHOT_SIZE)
        )
        alerts = [alerts_crud.alert_public(s, visible).model_dump(mode="json") for s in newest]
        yield sse("snapshot", json.dumps({"data": alerts, "cursor": cursor}), cursor)
    quiet_since = time.monotonic()
    while not await request.is_disconnected():
        try:
            changes = await run_in_threadpool(database.alert_changes, cursor, query)
        except DatabaseUnavailable as exc:
            logger.warning("console stream: alert database unavailable: %s", exc)
            yield sse("unavailable", json.dumps({"detail": str(exc)}))
            changes = []
        for change in changes:
            body = alerts_crud.alert_public(change.stored, visible).model_dump(mode="json")
            yield sse("alert", json.dumps(body), change.change)
            cursor = max(cursor, change.change)
        if changes:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settings.stream_keepalive_s:
            quiet_since = time.monotonic()
            yield ": keep-alive\n\n"
        # A full page may have more behind it: read on at once.
        if len(changes) < PAGE:
            await asyncio.sleep(settings.stream_poll_s)
