"""Read a /metrics endpoint as Prometheus would: prometheus-client's own text parser."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    """Every family of one scrape, by name (counters without their ``_total``)."""

    families: dict[str, Metric]

    def family(self, name: str) -> Metric:
        assert name in self.families, f"{name} not exposed; have {sorted(self.families)}"
        return self.families[name]

    def value(self, sample: str, labels: Mapping[str, str] | None = None) -> float:
        """The one sample named ``sample`` whose labels include ``labels``."""
        wanted = dict(labels or {})
        found = [
            s.value
            for family in self.families.values()
            for s in family.samples
            if s.name == sample and wanted.items() <= s.labels.items()
        ]
        assert len(found) == 1, f"{sample}{wanted}: {len(found)} samples"
        return float(found[0])

    def by_label(self, sample: str, label: str) -> dict[str, float]:
        return {
            s.labels[label]: float(s.value)
            for family in self.families.values()
            for s in family.samples
            if s.name == sample
        }

    def sample_names(self) -> set[str]:
        return {s.name for family in self.families.values() for s in family.samples}


def parse(text: str) -> Scrape:
    families: dict[str, Metric] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"{family.name} exposed twice"
        families[family.name] = family
    return Scrape(families)


def scrape(url: str, headers: Mapping[str, str] | None = None) -> Scrape:
    request = urllib.request.Request(url, headers=dict(headers or {}))  # noqa: S310
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        assert response.status == 200
        content_type = response.headers.get("Content-Type", "")
        assert content_type.startswith("text/plain"), content_type
        return parse(response.read().decode())
