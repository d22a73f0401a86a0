"""Serial ports for twins: pseudo-terminals a driver opens like a USB serial adapter.

``PtyPort`` is one pty: the driver opens its ``path`` (optionally through a stable
symlink, as udev's ``/dev/serial/by-id/...``), the twin reads and writes the other
side. Unplugging closes it, so the driver's next read fails as on a pulled USB
adapter; plugging in again makes a new pty behind the same symlink.

``NullModem`` joins two ptys back to back (what socat or tty0tty do) so that two
programs that each open a serial port, a Modbus RTU client and server, talk; bytes
pass through a hook that can damage or swallow them.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import threading
import tty
from collections.abc import Callable
from pathlib import Path


class PtyPort:
    """One pseudo-terminal; ``path`` is what the driver opens."""

    def __init__(self, link: Path | None = None) -> None:
        self._link = link
        self._master = -1
        self._slave = -1
        self._device = ""
        self._lock = threading.Lock()

    @property
    def path(self) -> str:
        """The symlink when one was asked for, else the pty device itself."""
        return str(self._link) if self._link is not None else self._device

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    @property
    def master_fd(self) -> int:
        return self._master

    def plug(self) -> None:
        """Create the pty (a new one each time) and point the symlink at it."""
        with self._lock:
            if self._master >= 0:
                return
            master, slave = os.openpty()
            # Raw from the start: a cooked pty echoes what the twin writes back to it.
            tty.setraw(slave)
            self._master, self._slave, self._device = master, slave, os.ttyname(slave)
            if self._link is not None:
                temporary = self._link.with_name(f".{self._link.name}.new")
                with contextlib.suppress(FileNotFoundError):
                    temporary.unlink()
                temporary.symlink_to(self._device)
                os.replace(temporary, self._link)

    def unplug(self) -> None:
        """Close the pty: the driver's reads fail and the device node goes away."""
        with self._lock:
            master, slave = self._master, self._slave
            self._master = self._slave = -1
            if self._link is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._link.unlink()
        for fd in (slave, master):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def write(self, data: bytes) -> None:
        """Send bytes to the driver; dropped while unplugged (nobody hears them)."""
        master = self._master
        if master < 0:
            return
        with contextlib.suppress(OSError):
            os.write(master, data)

    def __enter__(self) -> PtyPort:
        self.plug()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.unplug()


ByteHook = Callable[[str, bytes], bytes]
"""Called with the direction ("a->b" or "b->a") and the bytes; returns what passes."""


class NullModem:
    """Two ptys back to back: what is written to ``a.path`` is read from ``b.path``."""

    def __init__(self, hook: ByteHook | None = None) -> None:
        self.a = PtyPort()
        self.b = PtyPort()
        self.hook = hook
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.a.plug()
        self.b.plug()
        self._thread = threading.Thread(target=self._pump, name="null-modem", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.a.unplug()
        self.b.unplug()

    def _pump(self) -> None:
        pairs = {self.a.master_fd: (self.b, "a->b"), self.b.master_fd: (self.a, "b->a")}
        with selectors.DefaultSelector() as selector:
            for fd in pairs:
                selector.register(fd, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(timeout=0.05):
                    try:
                        data = os.read(key.fd, 4096)
                    except OSError:
                        continue  # nobody has the other side open yet
                    target, direction = pairs[key.fd]
                    hook = self.hook
                    if hook is not None:
                        data = hook(direction, data)
                    if data:
                        target.write(data)

    def __enter__(self) -> NullModem:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
