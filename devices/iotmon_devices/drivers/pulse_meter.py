"""Water, gas and electricity meters with a pulse output, counted on a GPIO (gpiozero).

Each closing of the meter's reed contact (or S0 output) is ``units_per_pulse`` of
the medium. The count is kept in a small state file so that a restart of the
agent does not restart the register at the installation reading; without one,
the meter accounting sees a new baseline (``meter_reset``) and publishes no
interval across the restart rather than a negative one.

An input held active for ``tamper_active_s`` is reported as a ``tamper`` fault: a
magnet held against a reed contact keeps it closed and the meter stops counting.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from gpiozero import DigitalInputDevice
from gpiozero.pins import Factory
from gpiozero.pins.mock import MockFactory

from iotmon_contract import FaultSeverity
from iotmon_devices.base import DeviceReading, EventSink
from iotmon_devices.drivers.gpio import open_input
from iotmon_devices.drivers.gpio_config import PulseMeterConfig
from iotmon_devices.faults import DriverFault, FaultCode, FaultTracker
from iotmon_devices.meters.account import MeterAccount
from iotmon_devices.meters.accounting import CumulativeRegister
from iotmon_devices.simulators.pulse_twin import PulseTwin
from iotmon_devices.supervision import PolledDevice

logger = logging.getLogger(__name__)

STATE_VERSION = 1


def load_pulse_count(path: Path, initial_total: float, units_per_pulse: float) -> int:
    """The pulse count saved in ``path``; 0 when there is none or it belongs to another
    meter setup (a different initial reading or pulse weight restarts the count)."""
    try:
        state: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        logger.warning("%s unreadable (%s); the pulse count restarts", path, exc)
        return 0
    if (
        not isinstance(state, dict)
        or state.get("version") != STATE_VERSION
        or state.get("initial_total") != initial_total
        or state.get("units_per_pulse") != units_per_pulse
        or not isinstance(state.get("pulses"), int)
        or state["pulses"] < 0
    ):
        logger.warning("%s is for another meter setup; the pulse count restarts", path)
        return 0
    pulses: int = state["pulses"]
    return pulses


def save_pulse_count(path: Path, pulses: int, initial_total: float, units_per_pulse: float) -> None:
    """Write atomically (temp file, fsync, rename): a power cut leaves the old or the new."""
    state = {
        "version": STATE_VERSION,
        "pulses": pulses,
        "initial_total": initial_total,
        "units_per_pulse": units_per_pulse,
    }
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as file:
        json.dump(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


class PulseMeterDriver(PolledDevice):
    def __init__(
        self,
        config: PulseMeterConfig,
        *,
        pin_factory: Factory | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._monotonic = monotonic
        self._twin: PulseTwin | None = None
        if config.simulate is not None and pin_factory is None:
            pin_factory = MockFactory()
            self._twin = PulseTwin(
                pin_factory.pin(config.pin),
                config.simulate,
                device=config.device_id,
                units_per_pulse=config.units_per_pulse,
                pull_up=config.pull_up,
            )
        self._factory = pin_factory
        # The twin's pulses are clean and come in bursts of a read: no bounce to ignore.
        self._debounce_s = 0.0 if self._twin is not None else config.debounce_s
        self._input: DigitalInputDevice | None = None
        self._lock = threading.Lock()
        self._pulses = 0
        self._saved = -1
        self._last_edge: float | None = None
        self._active_since: float | None = None
        self._account = MeterAccount(
            config.device_id,
            config.medium,
            CumulativeRegister(
                max_rate_per_h=config.max_rate_per_h, resolution=config.units_per_pulse / 2
            ),
        )
        self._tamper = FaultTracker(config.device_id, "pulse_input", None)

    @property
    def device_ids(self) -> Sequence[str]:
        return [self._config.device_id]

    @property
    def pulses(self) -> int:
        with self._lock:
            return self._pulses

    @property
    def twin(self) -> PulseTwin | None:
        return self._twin

    def attach(self, sink: EventSink) -> None:
        self._account.attach(sink)
        self._tamper.attach(sink)

    def start(self) -> None:
        config = self._config
        if config.state_file is not None:
            self._pulses = self._saved = load_pulse_count(
                config.state_file, config.initial_total, config.units_per_pulse
            )

    def connect(self) -> None:
        config = self._config
        device = self._input = open_input(
            config.pin,
            pull_up=config.pull_up,
            factory=self._factory,
            where=f"pulse input GPIO{config.pin}",
        )
        device.when_activated = self._on_active
        device.when_deactivated = self._on_inactive
        if device.is_active:
            self._active_since = self._monotonic()

    def disconnect(self) -> None:
        device, self._input = self._input, None
        if device is not None:
            device.close()

    def read(self, now: datetime) -> list[DeviceReading]:
        if self._twin is not None:
            self._twin.advance(now)
        config = self._config
        with self._lock:
            pulses = self._pulses
            active_since = self._active_since
        held = 0.0 if active_since is None else self._monotonic() - active_since
        if config.tamper_active_s and held >= config.tamper_active_s:
            self._tamper.failed(
                DriverFault(
                    FaultCode.TAMPER,
                    f"pulse input GPIO{config.pin} held active for {held:.0f}s "
                    "(a magnet on the meter?)",
                    FaultSeverity.WARNING,
                ),
                now,
            )
        elif active_since is None:
            self._tamper.recovered(now)
        if config.state_file is not None and pulses != self._saved:
            try:
                save_pulse_count(
                    config.state_file, pulses, config.initial_total, config.units_per_pulse
                )
                self._saved = pulses
            except OSError as exc:
                logger.warning("cannot save the pulse count to %s: %s", config.state_file, exc)
        total = config.initial_total + pulses * config.units_per_pulse
        return self._account.readings(total, now)

    # gpiozero calls these on its own thread.
    def _on_active(self) -> None:
        at = self._monotonic()
        with self._lock:
            self._active_since = at
            last = self._last_edge
            if last is not None and at - last < self._debounce_s:
                return
            self._last_edge = at
            self._pulses += 1

    def _on_inactive(self) -> None:
        with self._lock:
            self._active_since = None
