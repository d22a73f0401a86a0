"""A dashboard as Grafana would show it, drawn by the stand-in renderer and photographed in
the system's headless Chromium (Grafana cannot run here)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from iotmon_storage.influx import InfluxStore
from tests.dashboards.grafana import TimeRange, interpolate, panel_instances, panels, resolve
from tests.dashboards.render import Picture, Series, render
from tests.screenshots import CHROMIUM, artifact

SUBTITLE = "drawn by iotmon's test stand-in for Grafana from real InfluxDB query results"


def expanded(
    dashboard: dict[str, Any],
    store: InfluxStore,
    selection: Mapping[str, Sequence[str]],
    time_range: TimeRange,
) -> tuple[dict[str, Any], dict[int, list[Series]]]:
    """The dashboard for ``selection``: a repeated panel once per value, side by side in
    its own width, each with what its queries returned."""
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
                    interpolate(target["query"], instance.variables, time_range)
                )
            ]
            shown["panels"].append(drawn)
    return shown, results


def draw(
    dashboard: dict[str, Any],
    store: InfluxStore,
    selection: Mapping[str, Sequence[str]],
    time_range: TimeRange,
) -> tuple[dict[str, Any], Picture]:
    shown, results = expanded(dashboard, store, selection, time_range)
    return shown, render(shown, results, subtitle=SUBTITLE)


def photograph(picture: Picture, name: str, *, width: int = 1560) -> tuple[Path, list[str]]:
    """The page in headless Chromium: the PNG (a test artefact) and the panel titles the
    browser laid out."""
    page_file = artifact(f"{name}.html")
    page_file.write_text(picture.html)
    image = artifact(f"{name}.png")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": 700})
            page.goto(page_file.as_uri())
            titles = page.locator(".panel h3").all_inner_texts()
            page.screenshot(path=str(image), full_page=True)
        finally:
            browser.close()
    return image, titles
