"""The README's dashboard picture: the environment dashboard's panel queries run on a real
influxd, drawn by the Grafana stand-in (``tests.dashboards.render``, Grafana cannot run
here) and photographed in real headless Chromium.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import sync_playwright

from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess
from tests.dashboards.grafana import (
    ALL,
    DASHBOARDS,
    interpolate,
    load,
    panel_instances,
    panels,
    resolve,
)
from tests.dashboards.render import Series, render
from tests.dashboards.test_queries import DEVICES, fill, time_range
from tests.screenshots import CHROMIUM, artifact, publish


@pytest.fixture(scope="module")
def store(influxd: InfluxdProcess) -> Iterator[InfluxStore]:
    opened = InfluxStore(influxd.url, f"picture_{uuid.uuid4().hex[:12]}")
    opened.ensure_schema()
    fill(opened)
    yield opened
    opened.close()


def expanded(
    dashboard: dict[str, Any], store: InfluxStore, selection: dict[str, Any]
) -> tuple[dict[str, Any], dict[int, list[Series]]]:
    """The dashboard as Grafana would show it for ``selection``: a repeated panel once per
    value, side by side in its own width, each with what its queries returned."""
    resolved = resolve(dashboard, store, selection)
    shown = copy.deepcopy(dashboard)
    shown["panels"] = []
    results: dict[int, list[Series]] = {}
    next_id = 1000
    for panel in panels(dashboard):
        instances = panel_instances(panel, resolved)
        grid = panel.get("gridPos", {})
        width = max(1, int(grid.get("w", 24)) // len(instances))
        for index, instance in enumerate(instances):
            drawn = {key: value for key, value in panel.items() if key != "panels"}
            next_id += 1
            drawn["id"] = next_id
            # Titles show the values themselves, not the regexes the queries get.
            shown_values = {name: ", ".join(values) for name, values in resolved.picked.items()}
            if instance.repeat_value is not None:
                shown_values[panel["repeat"]] = instance.repeat_value
            drawn["title"] = interpolate(str(panel.get("title", "")), shown_values, None)
            drawn["gridPos"] = {**grid, "x": int(grid.get("x", 0)) + index * width, "w": width}
            results[next_id] = [
                series
                for target in panel.get("targets", [])
                for series in store.query(
                    interpolate(target["query"], instance.variables, time_range())
                )
            ]
            shown["panels"].append(drawn)
    return shown, results


@pytest.mark.integration
def test_environment_dashboard_picture(store: InfluxStore) -> None:
    dashboard = load(DASHBOARDS / "json" / "environment.json")
    selection = {"tenant": ["acme"], "device": ALL, "metric": ALL}
    shown, results = expanded(dashboard, store, selection)
    picture = render(
        shown,
        results,
        subtitle="drawn by iotmon's test stand-in for Grafana from real InfluxDB query results",
    )
    # Every panel the dashboard has is drawn from data, none is empty.
    titles = [p.title for p in picture.panels]
    assert len(titles) == len(shown["panels"])
    empty = [p.title for p in picture.panels if p.drawn_points == 0]
    assert not empty, f"panels drawn without data: {empty}"
    # The other tenant's device never reaches acme's picture.
    assert "env-9" not in picture.html
    assert all(device in picture.html for device in DEVICES)

    page_file = artifact("dashboard-environment.html")
    page_file.write_text(picture.html)
    image = artifact("dashboard-environment.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": 1560, "height": 700})
            page.goto(page_file.as_uri())
            # What the browser laid out: one box per panel, each with its title.
            boxes = page.locator(".panel h3").all_inner_texts()
            assert boxes == titles
            lines = page.locator("polyline").count()
            assert lines >= 1
            page.screenshot(path=str(image), full_page=True)
        finally:
            browser.close()
    assert image.stat().st_size > 10_000
    publish(image, "dashboard.png")
