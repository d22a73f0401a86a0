"""systemd notifications (``sd_notify``) over ``$NOTIFY_SOCKET``: readiness and watchdog pings.

The protocol is one datagram of ``KEY=VALUE`` lines to a Unix socket, so it is
written here in a few lines rather than pulled in as a dependency. With
``Type=notify`` and ``WatchdogSec=`` in the unit, systemd restarts the agent when
the pings stop, which they do when the agent's loop or its outbox hangs.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Protocol

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    @property
    def ping_interval_s(self) -> float | None:
        """How often to ping the watchdog; None when no watchdog is armed."""
        ...

    def notify(self, state: str) -> bool: ...


class SystemdNotifier:
    """Sends sd_notify datagrams to one socket (a path, or ``@name`` in the abstract namespace)."""

    def __init__(self, address: str, watchdog_usec: int | None = None) -> None:
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._watchdog_usec = watchdog_usec

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, pid: int | None = None
    ) -> SystemdNotifier | None:
        """The notifier systemd asked for, or None when not started by it with notify."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        if not address:
            return None
        usec: int | None = None
        try:
            usec = int(env.get("WATCHDOG_USEC", "")) or None
        except ValueError:
            usec = None
        watchdog_pid = env.get("WATCHDOG_PID")
        if watchdog_pid and watchdog_pid != str(pid if pid is not None else os.getpid()):
            usec = None  # the watchdog is armed for another process
        return cls(address, usec)

    @property
    def ping_interval_s(self) -> float | None:
        """Half the watchdog timeout, as sd_watchdog_enabled(3) advises."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2_000_000

    def notify(self, state: str) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(state.encode())
        except OSError as exc:
            logger.warning("sd_notify %s failed: %s", state.split("=", 1)[0], exc)
            return False
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")
