"""The video dashboard's panel queries on a real influxd filled through the real path:
the video service's Outputs publish each camera's metrics as telemetry to a real
mosquitto, and ingest stores them. Each panel must show exactly what was sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from iotmon_contract.events import DetectionEvent
from iotmon_ingest import IngestService
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_storage.influx import InfluxStore
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from iotmon_video.outputs import Outputs
from iotmon_video.pipeline import MetricsWindow
from tests.dashboards.grafana import (
    ALL,
    TimeRange,
    dashboard_files,
    interpolate,
    load,
    panels,
    resolve,
)
from tests.services.ingest.support import ingest_settings, unique, wait_until

MINUTES = 8
CAMERAS = ("cam-a", "cam-b")
DETECTIONS = {"cam-a": (1, 2, 2, 5), "cam-b": (6,)}
"""The minutes at which each camera reports a person (cam-a twice at minute 2)."""
Series = list[dict[str, Any]]


def window(camera: str, minute: int) -> MetricsWindow:
    """The known figures: cam-b falls behind (drops frames) and goes down at the end."""
    behind = camera == "cam-b"
    return MetricsWindow(
        input_fps=5.0,
        processed_fps=5.0 - (minute * 0.25 if behind else 0.0),
        detect_fps=0.5 + minute / 10,
        inference_ms=80.0 + minute if minute % 2 == 0 else None,
        dropped_frames=minute * 15 if behind else 0,
        motion_ratio=0.01 * minute,
        tracked_objects=minute % 3,
        source_up=not (behind and minute == MINUTES - 1),
    )


@dataclass(frozen=True)
class Sent:
    tenant: str
    store: InfluxStore
    t0: datetime

    def at(self, minute: int) -> datetime:
        return self.t0 + timedelta(minutes=minute)

    def values(self, camera: str, metric: str) -> list[tuple[datetime, float]]:
        found = []
        for minute in range(MINUTES):
            readings = window(camera, minute).as_readings()
            if metric in readings:
                found.append((self.at(minute), readings[metric]))
        return found


def detection(outputs: Outputs, camera: str, t0: datetime, minute: int) -> DetectionEvent:
    return DetectionEvent(
        type="detection",
        # Two at the same time stay two points: the store spreads events by their seq.
        ts=t0 + timedelta(minutes=minute),
        seq=outputs.next_seq(camera),
        label="person",
        confidence=0.9,
        box=[0.4, 0.2, 0.1, 0.5],
    )


@pytest.fixture(scope="module")
def sent(
    mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sent]:
    tenant = unique("vid")
    database = f"dashvideo_{uuid.uuid4().hex[:10]}"
    service = IngestService(
        ingest_settings(mosquitto, influxd.url, database, tmp_path_factory.mktemp("spool"))
    )
    service.start()
    assert service.wait_connected(10)
    client = MqttClient(
        MqttSettings(host=mosquitto.host, port=mosquitto.port), client_id=unique("v")
    )
    client.start()
    assert client.wait_connected(10)
    store = InfluxStore(influxd.url, database)
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=20)
    try:
        mine, other = Outputs(client, tenant), Outputs(client, unique("other"))
        expected = 0
        for minute in range(MINUTES):
            at = t0 + timedelta(minutes=minute)
            for camera in CAMERAS:
                readings = window(camera, minute).as_readings()
                assert mine.metrics(camera, readings, at)
                expected += len(readings)
            # Another tenant's camera of the same name must never show up.
            assert other.metrics("cam-a", {"video_processed_fps": 99.0}, at)
            expected += 1
        events = 0
        for camera, minutes in DETECTIONS.items():
            for outputs in (mine, other):
                for minute in minutes:
                    assert outputs.event(camera, detection(outputs, camera, t0, minute))
                    events += 1
        assert wait_until(
            lambda: (
                service.counters.readings_written == expected
                and service.counters.events_written == events
            ),
            30,
        ), service.counters
        yield Sent(tenant, store, t0)
    finally:
        client.stop()
        service.stop()
        store.close()


def by_device(series: Series) -> dict[str, list[tuple[datetime, float]]]:
    return {
        s["tags"]["device"]: [
            (datetime.fromtimestamp(ts / 1e9, UTC), v) for ts, v, *_ in s["values"] if v is not None
        ]
        for s in series
    }


def means(ref: str, metric: str) -> Callable[[Sent, dict[str, Series], set[str]], None]:
    def check(sent: Sent, results: dict[str, Series], cameras: set[str]) -> None:
        expected = {c: sent.values(c, metric) for c in cameras if sent.values(c, metric)}
        assert by_device(results[ref]) == expected

    return check


def fps(sent: Sent, results: dict[str, Series], cameras: set[str]) -> None:
    means("A", "video_input_fps")(sent, results, cameras)
    means("B", "video_processed_fps")(sent, results, cameras)


def dropped(sent: Sent, results: dict[str, Series], cameras: set[str]) -> None:
    found = {d: sum(v for _, v in rows) for d, rows in by_device(results["A"]).items()}
    assert found == {c: sum(window(c, m).dropped_frames for m in range(MINUTES)) for c in cameras}


def events_per_camera(sent: Sent, results: dict[str, Series], cameras: set[str]) -> None:
    found: dict[str, int] = {}
    for series in results["A"]:
        assert series["tags"]["type"] == "detection"
        device = series["tags"]["device"]
        found[device] = found.get(device, 0) + sum(int(v) for _, v, *_ in series["values"] if v)
    assert found == {c: len(DETECTIONS[c]) for c in cameras}


def cameras_up(sent: Sent, results: dict[str, Series], cameras: set[str]) -> None:
    found = {d: rows[0][1] for d, rows in by_device(results["A"]).items()}
    assert found == {c: 0.0 if c == "cam-b" else 1.0 for c in cameras}


EXPECTATIONS: dict[tuple[str, str], Callable[[Sent, dict[str, Series], set[str]], None]] = {
    ("iotmon-video", "Cameras up"): cameras_up,
    ("iotmon-video", "Input and processed fps"): fps,
    ("iotmon-video", "Dropped frames"): dropped,
    ("iotmon-video", "Inference latency"): means("A", "video_inference_ms"),
    ("iotmon-video", "Motion ratio"): means("A", "video_motion_ratio"),
    ("iotmon-video", "Detections / s"): means("A", "video_detect_fps"),
    ("iotmon-video", "Events per camera"): events_per_camera,
}

VIDEO = [load(path) for path in dashboard_files() if load(path)["uid"] == "iotmon-video"]
PANELS = [pytest.param(d, p, id=p["title"]) for d in VIDEO for p in panels(d) if p.get("targets")]


def test_every_video_panel_has_an_expectation() -> None:
    assert VIDEO, "no video dashboard"
    titles = {(d["uid"], p["title"]) for d in VIDEO for p in panels(d) if p.get("targets")}
    assert titles == set(EXPECTATIONS)


@pytest.mark.integration
@pytest.mark.parametrize("one", [False, True], ids=["all-cameras", "one-camera"])
@pytest.mark.parametrize(("dashboard", "panel"), PANELS)
def test_video_panel_shows_what_the_cameras_reported(
    sent: Sent, dashboard: dict[str, Any], panel: dict[str, Any], one: bool
) -> None:
    selected = ["cam-b"] if one else ALL
    resolved = resolve(dashboard, sent.store, {"tenant": [sent.tenant], "camera": selected})
    assert resolved.formatted["camera"] == (".*" if not one else r"cam\-b")
    variables = resolved.formatted
    span = TimeRange(sent.t0 - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=1), 60)
    results = {
        target["refId"]: sent.store.query(interpolate(target["query"], variables, span))
        for target in panel["targets"]
    }
    EXPECTATIONS[(dashboard["uid"], panel["title"])](
        sent, results, {"cam-b"} if one else set(CAMERAS)
    )
