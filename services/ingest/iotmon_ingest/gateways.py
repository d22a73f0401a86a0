"""Which gateway may speak for which child: the registry's map, held in memory for the hot path.

A gateway batch names child devices; ingest validates ~200k readings/s, so the
check is a dict lookup, never a query. The map is reloaded when the registry's
revision moves: polled every ``refresh_interval_s`` on a thread of its own, and
at once (at most every ``miss_refresh_interval_s``) when a batch names a child
the map does not give to its gateway, so a just-registered child is accepted
within about that long. A registry that cannot be reached later keeps the last
map (logged); one that cannot be reached at start stops ingest from starting.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from iotmon_registry import Registry, RegistryError

logger = logging.getLogger(__name__)


class GatewayChildren:
    """``owns_device(tenant, gateway, device)`` from an in-memory copy of the registry."""

    def __init__(
        self,
        registry: Registry,
        *,
        refresh_interval_s: float,
        miss_refresh_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry = registry
        self._refresh_interval = refresh_interval_s
        self._miss_interval = miss_refresh_interval_s
        self._clock = clock
        self._gateways: dict[tuple[str, str], str] = {}
        self._revision: int | None = None
        self._lock = threading.Lock()
        self._last_miss_refresh: float | None = None
        self._failing = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reloads = 0
        """How many times the map was (re)loaded: for tests and logs."""

    @property
    def revision(self) -> int | None:
        """The registry revision the map was read at (None before the first load)."""
        return self._revision

    def start(self) -> None:
        """Load the map (RegistryError if the registry cannot be read), then poll for changes."""
        self._load(self._registry.revision())
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="ingest-registry", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def owns_device(self, tenant: str, gateway: str, device: str) -> bool:
        """Whether ``gateway`` is ``device``'s registered gateway (the validator's hook)."""
        if self._gateways.get((tenant, device)) == gateway:
            return True
        now = self._clock()
        last = self._last_miss_refresh
        if last is not None and now - last < self._miss_interval:
            return False
        self._last_miss_refresh = now
        # A miss is rare in a healthy fleet and costs one small query when nothing
        # changed; rate-limited so a misbehaving gateway cannot make it a query a reading.
        if not self.refresh():
            return False
        return self._gateways.get((tenant, device)) == gateway

    def refresh(self) -> bool:
        """Reload the map if the registry's revision moved; True if it did."""
        with self._lock:
            try:
                revision = self._registry.revision()
                if revision == self._revision:
                    self._recovered()
                    return False
                self._load(revision)
            except RegistryError as exc:
                if not self._failing:
                    logger.warning(
                        "registry unreadable, keeping the gateway map of revision %s: %s",
                        self._revision,
                        exc,
                    )
                    self._failing = True
                return False
            self._recovered()
            return True

    def _load(self, revision: int) -> None:
        snapshot = self._registry.gateway_map()
        # One reference swap: the decoder thread reads either map whole, never a mix.
        self._gateways = snapshot.gateways
        self._revision = snapshot.revision
        self.reloads += 1
        logger.info(
            "gateway map loaded: %d children (registry revision %d)",
            len(snapshot.gateways),
            snapshot.revision,
        )

    def _recovered(self) -> None:
        if self._failing:
            logger.info("registry readable again (revision %s)", self._revision)
            self._failing = False

    def _poll(self) -> None:
        while not self._stop.wait(self._refresh_interval):
            self.refresh()
