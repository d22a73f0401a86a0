"""Stored device events back as contract events: the bus view's and the camera list's input."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from pydantic import ValidationError

from iotmon_alerts.bus import BusEvent
from iotmon_contract.events import DeviceEvent, parse_event
from iotmon_storage import StoredEvent

logger = logging.getLogger(__name__)

BUS_EVENT_TYPES = (
    "tag_read",
    "sweep_read",
    "sweep_complete",
    "ignition",
    "position",
    "walkthrough_check",
    "run_start",
    "run_end",
    "occupancy",
)
CAMERA_EVENT_TYPES = ("detection", "occupancy", "intrusion", "line_cross", "loitering", "crowding")

_SPREAD_NS = 1_000_000
"""iotmon_storage.base.EVENT_TIME_SPREAD_NS: stored times are ts + seq % spread (ns)."""


def device_event(stored: StoredEvent) -> DeviceEvent | None:
    """The contract event a stored one was (None, logged, if it no longer parses: a store
    written by another contract version must not break the console)."""
    ts = stored.ts - timedelta(microseconds=(stored.seq % _SPREAD_NS) // 1000)
    body = {**stored.data, "type": stored.type, "seq": stored.seq, "ts": ts.isoformat()}
    try:
        return parse_event(json.dumps(body))
    except ValidationError as exc:
        logger.warning(
            "stored event %s/%s seq %s (%s) does not parse: %s",
            stored.tenant,
            stored.device,
            stored.seq,
            stored.type,
            exc.errors(include_url=False)[0]["msg"],
        )
        return None


def bus_events(stored: list[StoredEvent]) -> list[BusEvent]:
    found = []
    for item in stored:
        event = device_event(item)
        if event is not None:
            found.append(BusEvent(item.tenant, item.device, event.ts, event))
    return found
