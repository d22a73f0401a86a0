"""Workers with ``start()``/``stop()`` and the supervisor that runs a process's workers.

A worker's constructor only stores what it was given; ``start`` begins its
threads, ``stop`` ends them (idempotent). A worker that fails for good sets the
shared stop event and says why in ``failure``: the supervisor then stops them all.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType
from typing import Protocol, runtime_checkable

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_CONFIG = 2


@runtime_checkable
class Worker(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


def failure_of(worker: Worker) -> str | None:
    """A worker's ``failure`` when it has one (not every worker can fail for good)."""
    failure = getattr(worker, "failure", None)
    return failure if isinstance(failure, str) else None


def install_stop_signals(stop_event: threading.Event) -> None:
    """SIGINT and SIGTERM set ``stop_event`` (call from the main thread)."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, shutting down", signal.Signals(signum).name)
        stop_event.set()

    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


class Supervisor:
    """Starts named workers in order and stops them in reverse, each stop on its own.

    Every service's ``run`` is one: a worker whose ``start`` raises has the workers
    started before it stopped, and the exception goes on to the caller, which knows
    what it means (a registry that cannot be read, a metrics port taken…).
    """

    def __init__(
        self,
        workers: Sequence[tuple[str, Worker]],
        stop_event: threading.Event,
        *,
        failed_exit: int = EXIT_FAILED,
    ) -> None:
        self._workers = list(workers)
        self._stop_event = stop_event
        self._failed_exit = failed_exit
        self._started: list[tuple[str, Worker]] = []

    @property
    def stop_event(self) -> threading.Event:
        return self._stop_event

    def start(self) -> None:
        for name, worker in self._workers:
            worker.start()
            self._started.append((name, worker))
            logger.debug("started %s", name)

    def stop(self) -> None:
        while self._started:
            name, worker = self._started.pop()
            try:
                worker.stop()
            except Exception:
                # One part failing to stop must not keep the others running.
                logger.exception("%s did not stop cleanly", name)

    def failures(self) -> list[str]:
        return [f"{name}: {f}" for name, w in self._workers if (f := failure_of(w)) is not None]

    def run(self) -> int:
        """Start, wait for the stop event (a signal or a worker's failure), stop all."""
        try:
            self.start()
            while not self._stop_event.wait(0.5):
                pass
        finally:
            self.stop()
        failures = self.failures()
        for failure in failures:
            logger.error("stopped on a failure: %s", failure)
        return self._failed_exit if failures else EXIT_OK
