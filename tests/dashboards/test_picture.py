"""A dashboard picture from known data: the environment dashboard's panel queries run on a
real influxd, drawn by the Grafana stand-in (``tests.dashboards.render``, Grafana cannot
run here) and photographed in real headless Chromium. The demo day's pictures are taken in
``test_queries_demo``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess
from tests.dashboards.grafana import ALL, DASHBOARDS, load
from tests.dashboards.picture import draw, photograph
from tests.dashboards.test_queries import DEVICES, fill, time_range
from tests.screenshots import publish


@pytest.fixture(scope="module")
def store(influxd: InfluxdProcess) -> Iterator[InfluxStore]:
    opened = InfluxStore(influxd.url, f"picture_{uuid.uuid4().hex[:12]}")
    opened.ensure_schema()
    fill(opened)
    yield opened
    opened.close()


@pytest.mark.integration
def test_environment_dashboard_picture(store: InfluxStore) -> None:
    dashboard = load(DASHBOARDS / "json" / "environment.json")
    selection = {"tenant": ["acme"], "device": ALL, "metric": ALL}
    shown, picture = draw(dashboard, store, selection, time_range())
    # Every panel the dashboard has is drawn from data, none is empty.
    titles = [p.title for p in picture.panels]
    assert len(titles) == len(shown["panels"])
    empty = [p.title for p in picture.panels if p.drawn_points == 0]
    assert not empty, f"panels drawn without data: {empty}"
    # The other tenant's device never reaches acme's picture.
    assert "env-9" not in picture.html
    assert all(device in picture.html for device in DEVICES)
    image, laid_out = photograph(picture, "dashboard-environment")
    # What the browser laid out: one box per panel, each with its title.
    assert laid_out == titles
    assert image.stat().st_size > 10_000
    publish(image, "dashboard-environment.png")
