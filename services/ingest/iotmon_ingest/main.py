"""What ``iotmon-ingest run`` does: one service, or a supervisor of worker processes."""

from __future__ import annotations

import threading

from iotmon_ingest.config import IngestSettings
from iotmon_ingest.registry import load_registry
from iotmon_ingest.service import IngestService, tune_gc
from iotmon_ingest.workers import IngestSupervisor
from iotmon_runtime.workers import install_stop_signals


def run_ingest(settings: IngestSettings) -> int:
    """Run until SIGINT/SIGTERM (or a fatal failure); returns the exit code."""
    if settings.device_registry:
        load_registry(settings.device_registry)  # fail here, not in every worker
    stop_event = threading.Event()
    install_stop_signals(stop_event)
    if settings.workers > 1:
        return IngestSupervisor(settings, stop_event).run()
    tune_gc()
    return IngestService(settings, stop_event).run()
