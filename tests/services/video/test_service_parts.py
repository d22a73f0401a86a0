"""The video service's CLI, its motion-only fallback, media (blur, retention, serving)
and the benchmark command's smoke run."""

from __future__ import annotations

import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from iotmon_video.cameras import CameraConfig, VideoConfig
from iotmon_video.cli import main
from iotmon_video.media import blur_people, sweep
from iotmon_video.media_server import MediaServer
from iotmon_video.service import load_detector
from iotmon_video.tracking import TrackedObject
from tests.services.video.support import photo, weights

GOOD = """\
tenant: acme
detector: {type: onnx, model: %s}
cameras:
  - id: gate
    source: {type: stream, url: "rtsp://camera.example/1"}
    zones:
      - {name: yard, polygon: [[0, 0], [1, 0], [1, 1]], intrusion: {}}
"""


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("IOTMON_VIDEO_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_config_check_accepts_a_good_file_and_names_a_bad_key_with_its_line(
    environment: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "video.yaml"
    good.write_text(GOOD % weights())
    environment.setenv("IOTMON_VIDEO_CAMERAS_FILE", str(good))
    assert main(["config", "check"]) == 0
    assert "1 camera(s)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (GOOD % weights()).replace("[[0, 0], [1, 0], [1, 1]]", "[[0, 0], [2, 0], [1, 1]]")
    )
    environment.setenv("IOTMON_VIDEO_CAMERAS_FILE", str(bad))
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: cameras.0.zones.0.polygon.1.0: Input should be less than or equal to 1" in err
    assert "(line 7)" in err


def test_missing_weights_run_motion_only_and_say_so(
    environment: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cameras = tmp_path / "video.yaml"
    cameras.write_text(GOOD % "missing/yolo.onnx")
    environment.setenv("IOTMON_VIDEO_CAMERAS_FILE", str(cameras))
    assert main(["config", "check"]) == 0
    assert f"weights {tmp_path / 'missing/yolo.onnx'} not found" in capsys.readouterr().out
    from iotmon_video.config import VideoSettings
    from iotmon_video.main import load_config

    config = load_config(VideoSettings(cameras_file=cameras))
    with caplog.at_level(logging.ERROR):
        assert load_detector(config) is None
    assert "running motion-only: weights not found" in caplog.text
    assert str(tmp_path / "missing" / "yolo.onnx") in caplog.text


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert "iotmon-video" in capsys.readouterr().out


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def test_people_are_blurred_and_only_people_and_by_default_in_cabins() -> None:
    image = photo("bus.jpg")
    height, width = image.shape[:2]
    box = (221 / width, 408 / height, 343 / width, 856 / height)
    people = [TrackedObject(1, "person", 0.9, box, 0.0, True)]
    blurred = blur_people(image, people)
    x1, y1, x2, y2 = 221, 408, 343, 856
    assert _sharpness(blurred[y1:y2, x1:x2]) < 0.1 * _sharpness(image[y1:y2, x1:x2])
    assert np.array_equal(blurred[:400, :200], image[:400, :200])  # the rest untouched
    bus = [TrackedObject(2, "bus", 0.9, box, 0.0, True)]
    assert np.array_equal(blur_people(image, bus), image)
    source = {"type": "file", "path": "x.avi"}
    assert CameraConfig.model_validate(
        {"id": "c", "source": source, "cabin": {"vehicle": "bus-1"}}
    ).blur_people
    assert not CameraConfig.model_validate({"id": "c", "source": source}).blur_people


def test_retention_removes_old_files_then_the_oldest_over_the_size_cap(tmp_path: Path) -> None:
    folder = tmp_path / "gate"
    folder.mkdir()
    now = time.time()
    names = [f"20261125T0000{i:02d}Z-{i}.jpg" for i in range(5)]
    for age, name in zip([100, 50, 40, 30, 20], names, strict=True):
        path = folder / name
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
    (folder / "notes.txt").write_text("not media: never touched")
    assert sweep(tmp_path, max_age_s=60, max_bytes=10_000, now=now) == 1
    assert sweep(tmp_path, max_age_s=60, max_bytes=2_500, now=now) == 2
    assert sorted(p.name for p in folder.iterdir()) == sorted([names[3], names[4], "notes.txt"])


def test_the_media_server_serves_media_names_only(tmp_path: Path) -> None:
    (tmp_path / "gate").mkdir()
    (tmp_path / "gate" / "20261125T074210Z-7.jpg").write_bytes(b"\xff\xd8jpeg")
    (tmp_path / "secret.txt").write_text("no")
    server = MediaServer("127.0.0.1", 0, tmp_path)
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        with urllib.request.urlopen(f"{base}/media/gate/20261125T074210Z-7.jpg", timeout=5) as r:  # noqa: S310
            assert r.read() == b"\xff\xd8jpeg"
            assert r.headers["Content-Type"] == "image/jpeg"
        for path in (
            "/media/gate/../secret.txt",
            "/media/../secret.txt",
            "/media/gate/x.txt",
            "/secret.txt",
            "/media/Gate/20261125T074210Z-7.jpg",
        ):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(base + path, timeout=5)  # noqa: S310
            assert refused.value.code == 404, path
    finally:
        server.stop()


def test_the_benchmark_command_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A smoke run (not a measurement): one camera, one second a mode."""
    code = main(
        [
            "bench",
            "--weights",
            str(weights()),
            "--seconds",
            "1",
            "--warmup",
            "0.5",
            "--max-cameras",
            "1",
            "--cycle",
            "2",
            "--json",
            str(tmp_path / "out.json"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "naive" in out
    assert "gated" in out
    assert (tmp_path / "out.json").read_text().count('"cameras": 1') == 2


def test_video_config_refuses_duplicate_cameras() -> None:
    camera = {"id": "a", "source": {"type": "usb"}}
    with pytest.raises(ValueError, match="camera ids must be unique"):
        VideoConfig.model_validate({"tenant": "t", "cameras": [camera, camera]})


def test_a_refused_login_stops_the_service_with_the_reason(tmp_path: Path) -> None:
    from iotmon_tools.localstack import BrokerSecurity, MosquittoProcess
    from iotmon_video.config import VideoSettings
    from iotmon_video.service import VideoService

    broker = MosquittoProcess(tmp_path / "broker", security=BrokerSecurity())
    broker.start()
    try:
        settings = VideoSettings(
            environment="test",
            instance_id="video-t",
            mqtt={
                "host": broker.host,
                "port": broker.port,
                "username": "nobody",
                "password": "wrong-password",
            },
            media_dir=tmp_path / "media",
            http_port=0,
            metrics={"port": 0},
        )
        service = VideoService(settings, VideoConfig(tenant="acme"))
        assert service.run() == 1
        assert service.failure is not None
        assert "password" in service.failure.lower() or "authori" in service.failure.lower()
    finally:
        broker.stop()
