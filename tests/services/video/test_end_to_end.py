"""The video service against real mosquitto, ingest and influxd, with the real detector.

One service, four cameras: a person walks across a counting line into a yard zone,
stays, and walks back (intrusion, line crossings with counts, loitering); an empty
scene (no events); a corrupt file (a clear fault, the others go on); a parked bus's
cabin with a person in it (occupancy, after the bus's run_end).
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from iotmon_contract import RunEndEvent, event_filter, event_topic, status_filter
from iotmon_storage import StoreSettings, open_store
from iotmon_tools.localstack import InfluxdProcess, MosquittoProcess
from iotmon_video.cameras import VideoConfig
from iotmon_video.config import VideoSettings
from iotmon_video.service import VideoService, load_detector
from tests.services.ingest.support import (
    Collector,
    Publisher,
    ingest_settings,
    stored_values,
    wait_until,
)
from tests.services.video.support import (
    background,
    compose,
    linear,
    person,
    walk,
    weights,
    write_clip,
)

pytestmark = pytest.mark.integration
TENANT = "acme"


def events_of(collector: Collector, camera: str) -> list[dict[str, Any]]:
    topic = event_topic(TENANT, camera)
    with collector._lock:
        return [json.loads(p) for t, p in collector.messages if t == topic]


def footage(tmp_path: Path) -> dict[str, Path]:
    figure = person(200)
    # In (left to right across x=0.5), stay in the yard 3 s, back out (right to left).
    xs = [40] * 3 + linear(40, 470, 16) + [470] * 15 + linear(470, 40, 14) + [40] * 2
    gate = write_clip(tmp_path / "gate.avi", walk(xs, figure))
    empty = write_clip(tmp_path / "empty.avi", walk(range(30), None, seed=2))
    rng = np.random.default_rng(3)
    still = background(4)
    seated = person(260)
    cabin = write_clip(
        tmp_path / "cabin.avi", [compose(still, seated, 300, rng) for _ in range(10)]
    )
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI not really a video" * 50)
    return {"gate": gate, "empty": empty, "cabin": cabin, "broken": broken}


def cameras(files: dict[str, Path]) -> VideoConfig:
    yard = [[0.55, 0.0], [1.0, 0.0], [1.0, 1.0], [0.55, 1.0]]
    return VideoConfig.model_validate(
        {
            "tenant": TENANT,
            "detector": {"type": "onnx", "model": str(weights()), "threads": 1},
            "cameras": [
                {
                    "id": "gate",
                    "source": {"type": "file", "path": str(files["gate"]), "realtime": False},
                    "lines": [{"name": "door", "start": [0.5, 1.0], "end": [0.5, 0.0]}],
                    "zones": [{"name": "yard", "polygon": yard, "intrusion": {}, "loiter_s": 1.5}],
                },
                {
                    "id": "empty",
                    "source": {"type": "file", "path": str(files["empty"]), "realtime": False},
                    "lines": [{"name": "door", "start": [0.5, 1.0], "end": [0.5, 0.0]}],
                    "zones": [{"name": "yard", "polygon": yard, "intrusion": {}}],
                },
                {
                    "id": "broken",
                    "source": {"type": "file", "path": str(files["broken"])},
                    "reconnect_min_s": 0.5,
                    "reconnect_max_s": 1.0,
                },
                {
                    "id": "cabin-12",
                    "source": {"type": "file", "path": str(files["cabin"]), "loop": True},
                    "cabin": {"vehicle": "bus-12", "idle_interval_s": 0.5},
                },
            ],
        }
    )


def test_events_snapshots_and_metrics_end_to_end(
    fresh_mosquitto: MosquittoProcess, influxd: InfluxdProcess, tmp_path: Path
) -> None:
    from iotmon_ingest import IngestService

    database = f"video_{uuid.uuid4().hex[:10]}"
    ingest = IngestService(ingest_settings(fresh_mosquitto, influxd.url, database, tmp_path))
    ingest.start()
    events = Collector(fresh_mosquitto, event_filter(TENANT))
    statuses = Collector(fresh_mosquitto, status_filter(TENANT))
    config = cameras(footage(tmp_path))
    settings = VideoSettings(
        environment="test",
        instance_id="video-test",
        mqtt={"host": fresh_mosquitto.host, "port": fresh_mosquitto.port},
        media_dir=tmp_path / "media",
        http_port=0,
        metrics={"port": 0},
        metrics_interval_s=1.0,
    )
    service = VideoService(settings, config, detector=load_detector(config))
    service.start()
    store = open_store(StoreSettings(url=influxd.url, database=database))
    try:
        assert ingest.wait_connected(10)
        # The cabin camera reports only once its bus is parked.
        publisher = Publisher(fresh_mosquitto)
        run_end = RunEndEvent(type="run_end", ts=datetime.now(UTC), seq=1)
        publisher.publish(event_topic(TENANT, "bus-12"), run_end.model_dump_json().encode())
        publisher.close()

        def gate_done() -> bool:
            crossing = [e for e in events_of(events, "gate") if e["type"] == "line_cross"]
            return len(crossing) >= 2

        assert wait_until(gate_done, timeout=240), events_of(events, "gate")
        assert wait_until(
            lambda: any(e["type"] == "occupancy" for e in events_of(events, "cabin-12")), 60
        ), events_of(events, "cabin-12")

        gate = events_of(events, "gate")
        kinds = [e["type"] for e in gate]
        crossings = [e for e in gate if e["type"] == "line_cross"]
        assert [(c["direction"], c["count_in"], c["count_out"]) for c in crossings] == [
            ("in", 1, 0),
            ("out", 1, 1),
        ]
        assert {c["track_id"] for c in crossings} == {crossings[0]["track_id"]}
        intrusions = [e for e in gate if e["type"] == "intrusion"]
        assert [(e["zone"], e["label"]) for e in intrusions] == [("yard", "person")]
        loitering = [e for e in gate if e["type"] == "loitering"]
        assert len(loitering) == 1
        assert loitering[0]["dwell_s"] > 1.5
        assert "detection" in kinds
        for event in intrusions + loitering + crossings:
            assert event["snapshot_url"].endswith(".jpg")
            assert event["clip_url"].endswith(".avi")
            assert 0 < event["box"][2] < 0.5
            assert event["confidence"] >= 0.4
        with urllib.request.urlopen(intrusions[0]["snapshot_url"], timeout=10) as response:  # noqa: S310
            assert response.headers["Content-Type"] == "image/jpeg"
            snapshot = cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR)
        assert snapshot is not None
        assert snapshot.shape == (360, 640, 3)
        # The intrusion's clip (2 s before, 3 s after, extended by the loitering) is a
        # video OpenCV reads back.
        with urllib.request.urlopen(intrusions[0]["clip_url"], timeout=10) as response:  # noqa: S310
            (tmp_path / "clip.avi").write_bytes(response.read())
        clip = cv2.VideoCapture(str(tmp_path / "clip.avi"))
        frames = 0
        while clip.read()[0]:
            frames += 1
        clip.release()
        assert frames >= 20, frames

        assert events_of(events, "empty") == []

        cabin = [e for e in events_of(events, "cabin-12") if e["type"] == "occupancy"]
        assert cabin[0]["vehicle"] == "bus-12"
        assert cabin[0]["people"] >= 1
        assert cabin[0]["snapshot_url"].endswith(".jpg")

        broken = events_of(events, "broken")
        assert broken
        assert broken[0]["type"] == "fault"
        assert broken[0]["code"] == "source_unavailable"
        assert "broken.avi" in broken[0]["detail"]
        assert (
            "cannot be opened" in broken[0]["detail"] or "no frame decodes" in broken[0]["detail"]
        )
        broken_status = [
            json.loads(p) for t, p in statuses.messages if t.endswith("/broken/status")
        ]
        assert broken_status
        assert broken_status[-1]["state"] == "offline"

        def metrics_stored() -> bool:
            stored = stored_values(store, TENANT, "video_processed_fps")
            return {"gate", "empty"} <= {device for device, _ in stored}

        assert wait_until(metrics_stored, timeout=30)
        motion = stored_values(store, TENANT, "video_motion_ratio")
        assert any(value > 0 for (device, _), value in motion.items() if device == "gate")
        assert all(service.pipelines[c].errors == 0 for c in ("gate", "empty", "cabin-12"))
    finally:
        service.stop()
        events.close()
        statuses.close()
        ingest.stop()
        store.close()
