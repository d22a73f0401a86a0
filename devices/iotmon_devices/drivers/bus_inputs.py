"""A school bus's GPIO inputs: the ignition sense and the driver's walk-through check button.

Both sample their pin in their own thread (a few ms of CPU a second) rather than
rely on edge interrupts, so a change is judged on how long it held: the ignition
line chatters while the engine cranks, a button bounces. The event's time is when
the new state was first seen, not when the debounce confirmed it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory

from iotmon_devices.drivers.gpio import open_input
from iotmon_devices.drivers.gpio_config import IgnitionConfig, WalkthroughButtonConfig
from iotmon_devices.drivers.session import Clock, SessionDriver, utc_now


class _Debouncer:
    """Reports a level once it has held for ``hold_s``, stamped with when it began."""

    def __init__(self, hold_s: float, monotonic: Callable[[], float], clock: Clock) -> None:
        self._hold_s = hold_s
        self._monotonic = monotonic
        self._clock = clock
        self.level: bool | None = None
        self._candidate: bool | None = None
        self._since = 0.0
        self._since_ts: datetime | None = None

    def sample(self, level: bool) -> datetime | None:
        """Feed a sample; the time the level began when it has just been confirmed."""
        if level == self.level:
            self._candidate = None
            return None
        if level != self._candidate:
            self._candidate, self._since, self._since_ts = level, self._monotonic(), self._clock()
        if self._monotonic() - self._since < self._hold_s:
            return None
        self.level, self._candidate = level, None
        return self._since_ts


class IgnitionDriver(SessionDriver):
    """``ignition`` events: the state when the agent starts, then every confirmed change."""

    def __init__(
        self,
        config: IgnitionConfig,
        *,
        pin_factory: Factory | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config.device_id, "ignition", config.retry, clock)
        self._config = config
        self._factory = pin_factory
        self._input: DigitalInputDevice | None = None
        self._debounce = _Debouncer(config.debounce_s, monotonic, clock)

    def _open(self) -> None:
        config = self._config
        self._input = open_input(
            config.pin,
            pull_up=config.pull_up,
            factory=self._factory,
            where=f"ignition input GPIO{config.pin}",
        )

    def _session(self) -> None:
        assert self._input is not None
        self._working()
        while not self._stopping.is_set():
            began = self._debounce.sample(bool(self._input.is_active))
            if began is not None:
                self._emit("ignition", began, on=self._debounce.level)
            self._stopping.wait(self._config.poll_s)

    def _close(self) -> None:
        device, self._input = self._input, None
        if device is not None:
            device.close()


class WalkthroughButtonDriver(SessionDriver):
    """A ``walkthrough_check`` event per press of the child-check button."""

    def __init__(
        self,
        config: WalkthroughButtonConfig,
        *,
        pin_factory: Factory | None = None,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config.device_id, "walkthrough_button", config.retry, clock)
        self._config = config
        self._factory = pin_factory
        self._monotonic = monotonic
        self._input: DigitalInputDevice | None = None
        self._debounce = _Debouncer(config.debounce_s, monotonic, clock)
        self._last_press: float | None = None
        self.presses = 0
        """Confirmed presses, including those merged into an earlier one."""

    def _open(self) -> None:
        config = self._config
        self._input = open_input(
            config.pin,
            pull_up=config.pull_up,
            factory=self._factory,
            where=f"walk-through button GPIO{config.pin}",
        )

    def _session(self) -> None:
        assert self._input is not None
        self._working()
        # A button held while the agent starts is not a press: start from its level.
        self._debounce.level = bool(self._input.is_active)
        while not self._stopping.is_set():
            began = self._debounce.sample(bool(self._input.is_active))
            if began is not None and self._debounce.level:
                self._pressed(began)
            self._stopping.wait(self._config.poll_s)

    def _pressed(self, at: datetime) -> None:
        self.presses += 1
        now = self._monotonic()
        last = self._last_press
        self._last_press = now
        if last is not None and now - last < self._config.min_interval_s:
            return
        self._emit("walkthrough_check", at)

    def _close(self) -> None:
        device, self._input = self._input, None
        if device is not None:
            device.close()
