"""Connects an agent's drivers: their events go to the agent and to each other driver."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from iotmon_devices.base import Driver, DriverEvent, DriverOutput, EventSink

logger = logging.getLogger(__name__)


class EventHub:
    """The sink every driver of one agent is attached to.

    Each item goes to ``forward`` (the agent, which numbers and publishes it);
    each event is also offered to every driver's ``observe``, so a cabin scanner
    can sweep when the ignition driver reports the ignition off. A driver whose
    ``observe`` fails is logged and the others still see the event.
    """

    def __init__(self, drivers: Sequence[Driver], forward: EventSink) -> None:
        self._drivers = list(drivers)
        self._forward = forward

    def attach(self) -> None:
        """Attach every driver to this hub (before the drivers start)."""
        for driver in self._drivers:
            driver.attach(self)

    def __call__(self, item: DriverOutput, /) -> None:
        self._forward(item)
        if not isinstance(item, DriverEvent):
            return
        for driver in self._drivers:
            try:
                driver.observe(item)
            except Exception:  # one driver's bug must not keep the event from the others
                logger.exception(
                    "%s failed to observe a %s event", type(driver).__name__, item.type
                )
