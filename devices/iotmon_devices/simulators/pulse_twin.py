"""A simulated pulse meter: drives a gpiozero mock pin as a reed contact would.

gpiozero's ``MockFactory`` pins are its own documented test tooling; the twin
closes and opens the contact once per ``units_per_pulse`` the simulated meter
registers, and holds it closed through a tamper window (a magnet on the reed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from iotmon_devices.simulators.meter_profiles import MeterSimulation, SimulatedMeter


class PulseTwin:
    """A meter's pulse output on ``pin`` (a gpiozero ``MockPin``)."""

    def __init__(
        self,
        pin: Any,
        simulation: MeterSimulation | None = None,
        *,
        device: str = "meter",
        units_per_pulse: float = 0.001,
        pull_up: bool = True,
    ) -> None:
        self.pin = pin
        self.meter = SimulatedMeter(simulation or MeterSimulation(), device)
        self.units_per_pulse = units_per_pulse
        self._active_level = not pull_up
        self.emitted = 0
        self.held = False

    def pulse(self, count: int = 1) -> None:
        """Close and open the contact ``count`` times."""
        for _ in range(count):
            self._drive(active=True)
            self._drive(active=False)
        self.emitted += count

    def hold(self, active: bool) -> None:
        """Keep the contact closed (True) or let it go (False)."""
        self.held = active
        self._drive(active=active)

    def advance(self, now: datetime) -> int:
        """Pulse what the simulated meter registered up to ``now``; returns how many."""
        meter = self.meter
        if meter.simulation.tamper.active(now):
            if not self.held:
                self.hold(True)
            return 0
        if self.held:
            self.hold(False)
        registered = meter.total(now) - meter.simulation.initial_total
        due = max(0, int(registered / self.units_per_pulse) - self.emitted)
        self.pulse(due)
        return due

    def _drive(self, *, active: bool) -> None:
        if active == self._active_level:
            self.pin.drive_high()
        else:
            self.pin.drive_low()
