"""Several ingest processes on one host, each a member of the shared subscription.

One Python process tops out at about one core (the GIL); the broker splits the
telemetry between members of the share group, so N processes use N cores
with nothing shared between them but the broker and the store.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as ProcessEvent

from iotmon_ingest.config import IngestSettings
from iotmon_ingest.service import EXIT_FATAL, IngestService, tune_gc
from iotmon_registry import RegistryError
from iotmon_runtime.log import configure_logging
from iotmon_runtime.metrics import MetricsServerError

logger = logging.getLogger(__name__)

_RESTART_DELAY_S = 2.0
PROGRAM = "iotmon-ingest"


def _worker_main(settings: IngestSettings, index: int, stop: ProcessEvent) -> None:
    configure_logging(
        settings.log_level, settings.log_format, service=PROGRAM, context={"worker": f"w{index}"}
    )
    # Ctrl-C reaches the whole process group: the supervisor decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    local_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: local_stop.set())
    tune_gc()
    service = IngestService(settings, local_stop)
    try:
        service.start()
    except RegistryError as exc:
        logger.error("worker %d cannot read the registry: %s", index, exc)
        raise SystemExit(EXIT_FATAL) from None
    except MetricsServerError as exc:
        logger.error("worker %d: %s", index, exc)
        raise SystemExit(EXIT_FATAL) from None
    try:
        while not local_stop.is_set() and not stop.wait(0.5):
            pass
    finally:
        service.stop()
    raise SystemExit(EXIT_FATAL if service.failure else 0)


class IngestSupervisor:
    """Starts ``settings.workers`` processes, restarts one that dies, stops them all."""

    def __init__(self, settings: IngestSettings, stop_event: threading.Event) -> None:
        self._settings = settings
        self._stop_event = stop_event
        self._context = multiprocessing.get_context("spawn")
        self._stop_workers: ProcessEvent | None = None
        self._processes: dict[int, SpawnProcess] = {}

    def _spawn(self, index: int) -> None:
        assert self._stop_workers is not None
        process = self._context.Process(
            target=_worker_main,
            args=(self._settings.for_worker(index), index, self._stop_workers),
            name=f"ingest-w{index}",
        )
        process.start()
        self._processes[index] = process

    def start(self) -> None:
        self._stop_workers = self._context.Event()
        for index in range(self._settings.workers):
            self._spawn(index)
        logger.info("started %d ingest workers", self._settings.workers)

    def stop(self) -> None:
        if self._stop_workers is not None:
            self._stop_workers.set()
        for process in self._processes.values():
            process.join(90)
            if process.is_alive():
                logger.error("worker %s did not stop; terminating", process.name)
                process.terminate()
                process.join(10)

    def run(self) -> int:
        self.start()
        code = 0
        try:
            while not self._stop_event.wait(1.0):
                for index, process in list(self._processes.items()):
                    if process.is_alive():
                        continue
                    if process.exitcode == EXIT_FATAL:
                        logger.error("worker %s failed fatally; stopping", process.name)
                        code = EXIT_FATAL
                        self._stop_event.set()
                        break
                    logger.warning(
                        "worker %s exited with %s; restarting", process.name, process.exitcode
                    )
                    self._stop_event.wait(_RESTART_DELAY_S)
                    if not self._stop_event.is_set():
                        self._spawn(index)
        finally:
            self.stop()
        return code
