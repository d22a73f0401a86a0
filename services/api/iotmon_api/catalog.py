"""Which metrics each device has: asked of the store on a miss, remembered a while.

A series request names metrics (or means all of them); a metric the device never
reported is 404, like a device with no readings. Asking the store's index each
time would add a round trip to every request, so the answer is kept: a request
for metrics already known needs no store call, and a miss (a new metric, or an
entry older than ``ttl_s``) asks again, so a new metric is found at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from iotmon_api.problems import NotFound
from iotmon_storage import TimeSeriesStore


@dataclass(frozen=True, slots=True)
class _Known:
    metrics: frozenset[str]
    ordered: tuple[str, ...]
    at: float


class MetricCatalog:
    """Resolve the metrics a request asks for, or 404 naming what is unknown."""

    def __init__(
        self,
        store: TimeSeriesStore,
        *,
        ttl_s: float = 10.0,
        max_devices: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._ttl_s = ttl_s
        self._max_devices = max_devices
        self._clock = clock
        self._known: OrderedDict[tuple[str, str], _Known] = OrderedDict()
        self._lock = threading.Lock()

    def _lookup(self, tenant: str, device: str) -> _Known | None:
        with self._lock:
            return self._known.get((tenant, device))

    def _refresh(self, tenant: str, device: str) -> _Known:
        metrics = self._store.metrics(tenant, device)
        known = _Known(frozenset(metrics), tuple(metrics), self._clock())
        with self._lock:
            self._known[(tenant, device)] = known
            self._known.move_to_end((tenant, device))
            while len(self._known) > self._max_devices:
                self._known.popitem(last=False)
        return known

    def resolve(self, tenant: str, device: str, wanted: Sequence[str] | None) -> list[str]:
        """``wanted`` (or every metric of the device, sorted) if the device has them all."""
        known = self._lookup(tenant, device)
        if (
            known is None
            or (wanted is None and self._clock() - known.at >= self._ttl_s)
            or (wanted is not None and not known.metrics.issuperset(wanted))
        ):
            known = self._refresh(tenant, device)
        if not known.metrics:
            raise NotFound(f"device {tenant}/{device} has no readings")
        if wanted is None:
            return list(known.ordered)
        missing = [metric for metric in wanted if metric not in known.metrics]
        if missing:
            names = ", ".join(repr(metric) for metric in missing)
            raise NotFound(f"device {tenant}/{device} has no metric {names}")
        return list(wanted)
