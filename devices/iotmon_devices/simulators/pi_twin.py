"""A simulated Raspberry Pi: a thermal zone file and a ``vcgencmd`` that prints its flags.

The ``vcgencmd`` is a real executable script (the driver runs it as a process), whose
answer, exit status and delay the test sets.
"""

from __future__ import annotations

import sys
from pathlib import Path

_SCRIPT = """#!{python}
import sys, time
from pathlib import Path
state = Path({state!r})
delay, code, text = state.read_text().split("\\n", 2)
time.sleep(float(delay))
if sys.argv[1:] != ["get_throttled"]:
    sys.exit("usage: vcgencmd get_throttled")
sys.stdout.write(text)
sys.exit(int(code))
"""


class PiTwin:
    """``thermal_zone`` and ``vcgencmd`` under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.thermal_zone = root / "thermal_zone0" / "temp"
        self.thermal_zone.parent.mkdir(exist_ok=True)
        self.vcgencmd = root / "vcgencmd"
        self._state = root / "vcgencmd.state"
        self.vcgencmd.write_text(_SCRIPT.format(python=sys.executable, state=str(self._state)))
        self.vcgencmd.chmod(0o755)
        self.set_temperature(48.3)
        self.set_throttled(0)

    def set_temperature(self, celsius: float) -> None:
        self.thermal_zone.write_text(f"{round(celsius * 1000)}\n")

    def set_throttled(self, mask: int, *, exit_code: int = 0, delay_s: float = 0.0) -> None:
        self.set_answer(f"throttled={mask:#x}\n", exit_code=exit_code, delay_s=delay_s)

    def set_answer(self, text: str, *, exit_code: int = 0, delay_s: float = 0.0) -> None:
        self._state.write_text(f"{delay_s}\n{exit_code}\n{text}")

    def remove_thermal_zone(self) -> None:
        self.thermal_zone.unlink(missing_ok=True)
