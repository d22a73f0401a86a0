"""GPIO inputs through gpiozero, for the drivers that read them."""

from __future__ import annotations

from gpiozero import DigitalInputDevice, GPIOZeroError
from gpiozero.pins import Factory

from iotmon_devices.faults import DriverFault, FaultCode


def open_input(
    pin: int, *, pull_up: bool, factory: Factory | None, where: str
) -> DigitalInputDevice:
    """A gpiozero input on ``pin``; a pin that cannot be had is a bus error."""
    try:
        return DigitalInputDevice(pin, pull_up=pull_up, pin_factory=factory)
    except GPIOZeroError as exc:
        raise DriverFault(FaultCode.BUS_ERROR, f"{where}: {type(exc).__name__}: {exc}") from exc
