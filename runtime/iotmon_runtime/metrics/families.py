"""Building blocks: metric families from snapshot values, and a histogram kept by its owner.

A service's collector is a function from its snapshots to metric families, wrapped
in ``SnapshotCollector``; prometheus-client calls it on each scrape, from the
metrics server's thread, never from the service's hot path.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of latency histograms: a loopback write takes about a
millisecond, a hung store up to its timeout (5 s by default for ingest)."""


def counter(
    name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None
) -> CounterMetricFamily:
    """One counter sample. ``name`` without ``_total``: the exposition adds it."""
    if labels:
        family = CounterMetricFamily(name, documentation, labels=list(labels))
        family.add_metric(list(labels.values()), value)
        return family
    return CounterMetricFamily(name, documentation, value=value)


def labelled_counter(
    name: str, documentation: str, label: str, values: Mapping[str, float]
) -> CounterMetricFamily:
    """A counter with one label, a sample per key (e.g. dead letters by ``reason``)."""
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key in sorted(values):
        family.add_metric([key], values[key])
    return family


def gauge(
    name: str, documentation: str, value: float, labels: Mapping[str, str] | None = None
) -> GaugeMetricFamily:
    if labels:
        family = GaugeMetricFamily(name, documentation, labels=list(labels))
        family.add_metric(list(labels.values()), value)
        return family
    return GaugeMetricFamily(name, documentation, value=value)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Observations per bucket (not cumulative; the last counts those above every bound)."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    total: float

    @property
    def count(self) -> int:
        return sum(self.counts)

    @classmethod
    def empty(cls, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> HistogramSnapshot:
        return cls(tuple(bounds), (0,) * (len(bounds) + 1), 0.0)

    def observe(self, value: float) -> HistogramSnapshot:
        """A new snapshot with ``value`` counted: for owners that replace a frozen record
        under their own lock (ingest's counters, once per batch)."""
        index = bisect.bisect_left(self.bounds, value)
        counts = list(self.counts)
        counts[index] += 1
        return HistogramSnapshot(self.bounds, tuple(counts), self.total + value)


class Histogram:
    """A mutable histogram for an owner that already serialises its updates (not locked)."""

    def __init__(self, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> None:
        self._bounds = tuple(bounds)
        self._counts = [0] * (len(self._bounds) + 1)
        self._total = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._total += value

    def snapshot(self) -> HistogramSnapshot:
        return HistogramSnapshot(self._bounds, tuple(self._counts), self._total)


def histogram(name: str, documentation: str, snapshot: HistogramSnapshot) -> HistogramMetricFamily:
    """A histogram family: cumulative buckets, ``+Inf`` last, as the exposition wants."""
    cumulative = 0
    buckets: list[tuple[str, float]] = []
    for bound, count in zip((*snapshot.bounds, float("inf")), snapshot.counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=snapshot.total)


class SnapshotCollector(Collector):
    """Calls ``families()`` on each scrape; what it returns is what Prometheus gets."""

    def __init__(self, families: Callable[[], Iterable[Metric]]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return list(self._families())
