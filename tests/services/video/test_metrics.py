"""The video service's /metrics after a real run (mosquitto, a file camera, a broken one),
read through prometheus-client's own parser."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from iotmon_runtime.version import distribution_version
from iotmon_tools.localstack import MosquittoProcess
from iotmon_video.cameras import VideoConfig
from iotmon_video.config import VideoSettings
from iotmon_video.service import VideoService
from tests.services.ingest.support import wait_until
from tests.services.video.support import walk, write_clip

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_after_a_real_run(tmp_path: Path, mosquitto: MosquittoProcess) -> None:
    clip = write_clip(tmp_path / "empty.avi", walk(range(20), None, seed=2))
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI not really a video" * 50)
    config = VideoConfig.model_validate(
        {
            "tenant": "acme",
            "cameras": [
                {
                    "id": "yard",
                    "source": {"type": "file", "path": str(clip), "loop": True},
                },
                {
                    "id": "broken",
                    "source": {"type": "file", "path": str(broken)},
                    "reconnect_min_s": 0.5,
                    "reconnect_max_s": 1.0,
                },
            ],
        }
    )
    settings = VideoSettings(
        environment="test",
        instance_id="video-metrics",
        mqtt={"host": mosquitto.host, "port": mosquitto.port},
        media_dir=tmp_path / "media",
        http_port=0,
        metrics={"port": 0},
    )
    service = VideoService(settings, config)  # no detector: motion only
    service.start()
    try:
        url = service.metrics_url
        assert url is not None

        def processed() -> float:
            return scrape(url).get(
                ("iotmon_video_frames_processed_total", (("camera", "yard"),)), 0
            )

        assert wait_until(lambda: processed() >= 10, timeout=60), processed()
        samples = scrape(url)
    finally:
        service.stop()
    assert service.metrics_url is None
    yard, bad = (("camera", "yard"),), (("camera", "broken"),)
    assert (
        samples[("iotmon_video_frames_in_total", yard)]
        >= samples[("iotmon_video_frames_processed_total", yard)]
    )
    assert samples[("iotmon_video_source_up", yard)] == 1
    assert samples[("iotmon_video_source_up", bad)] == 0
    assert samples[("iotmon_video_frames_processed_total", bad)] == 0
    assert samples[("iotmon_video_detections_total", yard)] == 0  # no detector
    version = distribution_version("iotmon-video")
    assert samples[("iotmon_build_info", (("service", "video"), ("version", version)))] == 1
    client = (("client", settings.client_id),)
    assert samples[("iotmon_mqtt_connected", client)] == 1
    assert samples[("iotmon_mqtt_publishes_total", client)] >= 1
