"""Helpers for the drivers' tests: collecting what drivers send, waiting for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import TypeAdapter

from iotmon_contract import DeviceEvent, parse_event
from iotmon_devices import AvailabilityChange, DriverEvent, DriverOutput
from iotmon_devices.faults import RetryPolicy

FAST_RETRY = RetryPolicy(initial_s=0.05, max_s=0.2, multiplier=2)
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


class Sink:
    """An ``EventSink`` that keeps what it is sent; thread-safe."""

    def __init__(self) -> None:
        self.items: list[DriverOutput] = []
        self._changed = threading.Condition()

    def __call__(self, item: DriverOutput, /) -> None:
        with self._changed:
            self.items.append(item)
            self._changed.notify_all()

    def events(self, event_type: str | None = None) -> list[DriverEvent]:
        with self._changed:
            return [
                item
                for item in self.items
                if isinstance(item, DriverEvent) and event_type in (None, item.type)
            ]

    def faults(self) -> list[DriverEvent]:
        return self.events("fault")

    def availability(self) -> list[bool]:
        with self._changed:
            return [item.online for item in self.items if isinstance(item, AvailabilityChange)]

    def wait_for(self, condition: Callable[[Sink], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # The lock is re-entrant for the condition's own reads: release it while waiting.
                self._changed.wait(min(remaining, 0.05))
            return True


def fault_codes(sink: Sink) -> list[tuple[str, bool]]:
    """(code, cleared) of each fault event, in order."""
    return [(e.data["code"], bool(e.data.get("cleared", False))) for e in sink.faults()]


_EVENTS: TypeAdapter[DeviceEvent] = TypeAdapter(DeviceEvent)


def assert_contract_valid(event: DriverEvent, seq: int = 0) -> None:
    """The event, numbered, is what the contract accepts, from Python (strict: enums as
    the contract's enums, as the agent validates it) and on the wire."""
    model = _EVENTS.validate_python({**event.fields(), "seq": seq})
    assert parse_event(model.model_dump_json()) == model
