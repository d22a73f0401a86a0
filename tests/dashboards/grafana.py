"""What Grafana does to an InfluxQL panel query before sending it, redone for tests.

Grafana cannot run here, so tests interpolate template variables and macros the
way its InfluxDB (InfluxQL) datasource does and run the result on a real influxd.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from iotmon_storage.influx import InfluxStore

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"
DATASOURCE_UID = "iotmon-influxdb"
PROMETHEUS_UID = "iotmon-prometheus"

ALL = ("$__all",)
"""Selecting "All" of a variable."""

_REGEX_SPECIAL = re.compile(r"([\\/^$.|?*+()\[\]{}-])")


def dashboard_files() -> list[Path]:
    return sorted((DASHBOARDS / "json").glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def regex_escape(value: str) -> str:
    """Grafana's influxSpecialRegexEscape: values land inside /^...$/ regexes."""
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def format_variable(
    variable: Mapping[str, Any], values: Sequence[str], *, all_selected: bool = False
) -> str:
    """The text Grafana puts in an InfluxQL query for the selected values: "All" with a
    custom ``allValue`` is that value as it is (Grafana's CustomAllValue skips the
    regex escaping); otherwise each value escaped, several as (a|b)."""
    if all_selected and variable.get("allValue"):
        return str(variable["allValue"])
    escaped = [regex_escape(v) for v in values]
    if (variable.get("multi") or variable.get("includeAll")) and len(escaped) != 1:
        return "(" + "|".join(escaped) + ")"
    return escaped[0]


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    interval_s: int

    def time_filter(self) -> str:
        start_ms = int(self.start.timestamp() * 1000)
        end_ms = int(self.end.timestamp() * 1000)
        return f"time >= {start_ms}ms and time <= {end_ms}ms"


def interpolate(query: str, variables: Mapping[str, str], time_range: TimeRange | None) -> str:
    """Replace macros and ``$var`` / ``${var}`` / ``[[var]]`` as Grafana does."""
    if time_range is not None:
        query = query.replace("$timeFilter", time_range.time_filter())
        query = query.replace("$__interval_ms", str(time_range.interval_s * 1000))
        query = query.replace("$__interval", f"{time_range.interval_s}s")
    for name, value in variables.items():
        pattern = rf"\$\{{{name}\}}|\$\b{name}\b|\[\[{name}\]\]"
        query = re.sub(pattern, value.replace("\\", "\\\\"), query)
    leftover = re.search(r"\$\{?\w+|\[\[\w+\]\]", query)
    if leftover:
        raise AssertionError(f"{leftover.group(0)} left uninterpolated in: {query}")
    return query


@dataclass(frozen=True)
class Resolved:
    """The dashboard's variables after selection: as they go into queries, and the values
    picked (what a repeated panel iterates over)."""

    formatted: dict[str, str]
    picked: dict[str, list[str]]


def resolve(
    dashboard: Mapping[str, Any], store: InfluxStore, selection: Mapping[str, Sequence[str]]
) -> Resolved:
    """Run each query variable's own query (in order) and format the selected values.

    ``selection[name]`` is the values picked, or ``ALL``; unnamed variables take their
    first value, as Grafana does on first load. A datasource variable must offer the
    InfluxDB datasource the queries run on.
    """
    formatted: dict[str, str] = {}
    picked: dict[str, list[str]] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            uids = {"influxdb": DATASOURCE_UID, "prometheus": PROMETHEUS_UID}
            picked[variable["name"]] = [uids[variable["query"]]]
            continue
        if variable.get("type") != "query":
            raise AssertionError(f"variable {variable['name']}: only query variables are tested")
        query = interpolate(variable["query"], formatted, None)
        values = [row[-1] for s in store.query(query) for row in s["values"]]
        assert values, f"variable {variable['name']} has no values: {query}"
        chosen = list(selection.get(variable["name"], values[:1]))
        all_selected = tuple(chosen) == ALL
        if all_selected:
            assert variable.get("includeAll"), f"{variable['name']} cannot select All"
            chosen = values
        missing = set(chosen) - set(values)
        assert not missing, f"variable {variable['name']} does not offer {missing}: {values}"
        formatted[variable["name"]] = format_variable(variable, chosen, all_selected=all_selected)
        picked[variable["name"]] = chosen
    return Resolved(formatted, picked)


def resolve_variables(
    dashboard: Mapping[str, Any], store: InfluxStore, selection: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    return resolve(dashboard, store, selection).formatted


@dataclass(frozen=True)
class PanelInstance:
    """One panel as Grafana draws it: a repeated panel once per picked value."""

    repeat_value: str | None
    variables: dict[str, str]


def panel_instances(panel: Mapping[str, Any], resolved: Resolved) -> list[PanelInstance]:
    """A panel with ``repeat`` is drawn once per picked value of that variable, which
    then holds that one value (escaped, as a single selection would be)."""
    name = panel.get("repeat")
    if not name:
        return [PanelInstance(None, resolved.formatted)]
    return [
        PanelInstance(value, {**resolved.formatted, name: regex_escape(value)})
        for value in resolved.picked[name]
    ]
