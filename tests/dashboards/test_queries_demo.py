"""The layer dashboards (overview, meters, buses, alerts) on the demo's own pipeline: the day
scenario runs at 600x on a real mosquitto and influxd (edge agents, bus agents, alert
service, video service, ingest), and every panel query of those dashboards, with its
variables resolved from the same store as Grafana would, must return data."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console

from iotmon_storage.influx import InfluxStore
from iotmon_tools.demo import DemoOptions, DemoStack
from iotmon_tools.localstack import free_port
from tests.dashboards.grafana import ALL, TimeRange, dashboard_files, interpolate, load, panels
from tests.dashboards.grafana import resolve as resolve_variables
from tests.dashboards.picture import draw, photograph
from tests.screenshots import publish

LAYERS = {"iotmon-overview", "iotmon-meters", "iotmon-buses", "iotmon-alerts"}
DATA_WITHIN_S = 90.0
"""From the demo's start: at 600x that is fifteen simulated hours, a whole school day."""

DASHBOARDS = [d for d in map(load, dashboard_files()) if d["uid"] in LAYERS]
PANELS = [
    pytest.param(d, p, id=f"{d['uid']}:{p['title']}")
    for d in DASHBOARDS
    for p in panels(d)
    if p.get("targets")
]


@dataclass(frozen=True)
class Demo:
    store: InfluxStore
    epoch: datetime
    started: float


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    options = DemoOptions(
        state_dir=tmp_path_factory.mktemp("demo"),
        speed=600,
        interval=0.5,
        devices=6,
        api_port=free_port(),
        mqtt_port=free_port(),
        influx_port=free_port(),
        receiver_port=free_port(),
    )
    stack = DemoStack(options, Console(file=io.StringIO(), width=120))
    try:
        stack.start()
        started = time.monotonic()
        assert stack.clock is not None
        store = InfluxStore(stack.endpoints.store.url, stack.endpoints.store.database)
        try:
            yield Demo(store, stack.clock.epoch, started)
        finally:
            store.close()
    finally:
        stack.stop()


def test_the_layer_dashboards_exist() -> None:
    assert {d["uid"] for d in DASHBOARDS} == LAYERS


def _results(demo: Demo, dashboard: dict[str, Any], panel: dict[str, Any]) -> list[Any]:
    selection = {"tenant": ["demo"]} | {
        v["name"]: ALL for v in dashboard["templating"]["list"] if v.get("includeAll")
    }
    variables = resolve_variables(dashboard, demo.store, selection).formatted
    span = TimeRange(demo.epoch - timedelta(hours=1), datetime.now(UTC) + timedelta(minutes=1), 60)
    return [
        demo.store.query(interpolate(target["query"], variables, span))
        for target in panel["targets"]
    ]


def _has_data(series: list[dict[str, Any]]) -> bool:
    return any(any(v is not None for v in row[1:]) for s in series for row in s["values"])


@pytest.mark.integration
@pytest.mark.parametrize(("dashboard", "panel"), PANELS)
def test_panel_shows_the_demo_day(
    demo: Demo, dashboard: dict[str, Any], panel: dict[str, Any]
) -> None:
    deadline = demo.started + DATA_WITHIN_S
    while True:
        try:
            results = _results(demo, dashboard, panel)
        except AssertionError:  # a variable with no values yet (no alert with a site…)
            results = []
        if results and all(_has_data(series) for series in results):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{panel['title']}: no data from every query: {results}")
        time.sleep(1)


def test_demo_writes_tenant_demo_only(demo: Demo) -> None:
    tenants = demo.store.query('SHOW TAG VALUES FROM "_device_seen" WITH KEY = "tenant"')
    assert {row[-1] for s in tenants for row in s["values"]} == {"demo"}


@pytest.mark.integration
@pytest.mark.parametrize("uid", ["iotmon-buses", "iotmon-overview"])
def test_layer_dashboard_picture(demo: Demo, uid: str) -> None:
    """The README's dashboard picture: the demo day's buses (and the overview), drawn from
    the same queries by the Grafana stand-in and photographed in headless Chromium."""
    dashboard = next(d for d in DASHBOARDS if d["uid"] == uid)
    selection = {"tenant": ["demo"]} | {
        v["name"]: ALL for v in dashboard["templating"]["list"] if v.get("includeAll")
    }
    # The buses: the simulated day so far (it lies in the past), from its start to where
    # its clock is. The overview also counts what is stamped on the wall clock (devices
    # seen, cameras), so it spans up to now, as the panel checks above do.
    elapsed = timedelta(seconds=(time.monotonic() - demo.started) * 600)
    end = demo.epoch + elapsed if uid == "iotmon-buses" else datetime.now(UTC)
    span = TimeRange(demo.epoch - timedelta(minutes=10), end, 60)
    shown, picture = draw(dashboard, demo.store, selection, span)
    assert len(picture.panels) == len(shown["panels"])
    empty = [p.title for p in picture.panels if p.drawn_points == 0]
    assert not empty, f"panels drawn without data: {empty}"
    image, laid_out = photograph(picture, f"dashboard-{uid.removeprefix('iotmon-')}")
    assert laid_out == [p.title for p in picture.panels]
    assert image.stat().st_size > 10_000
    publish(image, f"dashboard-{uid.removeprefix('iotmon-')}.png")
