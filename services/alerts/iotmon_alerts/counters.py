"""The alert service's counters: what it took, refused (and why), decided and sent."""

from __future__ import annotations

import threading
from collections import Counter


class AlertsCounters:
    """Thread-safe named counts, plus refusals by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()

    def add(self, **increments: int) -> None:
        with self._lock:
            self._counts.update(increments)

    def refused(self, reason: str, count: int = 1) -> None:
        """A message, rule file or action refused, by reason (``not_json``, ``rule_file``…)."""
        with self._lock:
            self._refused[reason] += count

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {**dict(self._counts), "refused": dict(self._refused)}

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def refused_count(self, reason: str | None = None) -> int:
        with self._lock:
            return self._refused[reason] if reason is not None else sum(self._refused.values())
