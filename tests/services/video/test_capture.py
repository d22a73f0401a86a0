"""Capture: newest frame wins (drops counted), stream loss and reconnect against a real
HTTP MJPEG server on loopback, and a camera's availability and faults on MQTT."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from iotmon_contract import event_topic, status_topic
from iotmon_runtime.mqtt import MqttClient, MqttSettings
from iotmon_tools.localstack import MosquittoProcess, free_port
from iotmon_video.cameras import CameraConfig
from iotmon_video.capture import Frame, LatestFrame
from iotmon_video.detectors import create_detector
from iotmon_video.detectors.config import OnnxDetectorConfig
from iotmon_video.media import MediaStore
from iotmon_video.outputs import Outputs
from iotmon_video.pipeline import CameraPipeline
from tests.services.ingest.support import Collector, wait_until
from tests.services.video.support import walk, weights

TENANT = "acme"


def test_the_newest_frame_wins_and_each_replaced_frame_is_counted() -> None:
    mailbox = LatestFrame()
    image = np.zeros((2, 2, 3), np.uint8)
    for index in range(5):
        mailbox.put(Frame(image, index, float(index), datetime.now(UTC)))
    taken = mailbox.take(0.1)
    assert taken is not None
    assert taken.index == 4
    assert mailbox.dropped == 4
    assert mailbox.take(0.01) is None


class _Mjpeg(BaseHTTPRequestHandler):
    server: _MjpegServer

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        index = 0
        try:
            while not self.server.halt.is_set():
                data = self.server.jpegs[index % len(self.server.jpegs)]
                self.wfile.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(data)}\r\n\r\n".encode()
                    + data
                    + b"\r\n"
                )
                index += 1
                time.sleep(0.1)
        except OSError:
            return

    def log_message(self, format: str, *args: Any) -> None:
        return


class _MjpegServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, jpegs: list[bytes]) -> None:
        super().__init__(("127.0.0.1", port), _Mjpeg)
        self.jpegs = jpegs
        self.halt = threading.Event()


def _serve(port: int, jpegs: list[bytes]) -> _MjpegServer:
    server = _MjpegServer(port, jpegs)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _kill(server: _MjpegServer) -> None:
    server.halt.set()
    server.shutdown()
    server.server_close()


def test_stream_loss_is_reported_and_the_camera_reconnects(
    fresh_mosquitto: MosquittoProcess, tmp_path: Path
) -> None:
    jpegs = [cv2.imencode(".jpg", frame)[1].tobytes() for frame in walk(range(0, 300, 30), None)]
    port = free_port("127.0.0.1")
    server = _serve(port, jpegs)
    collector = Collector(fresh_mosquitto, f"iotmon/v1/{TENANT}/#")
    client = MqttClient(
        MqttSettings(host=fresh_mosquitto.host, port=fresh_mosquitto.port), client_id="video-t"
    )
    client.start()
    camera = CameraConfig.model_validate(
        {
            "id": "door-cam",
            "source": {
                "type": "stream",
                "url": f"http://127.0.0.1:{port}/stream.mjpg",
                "open_timeout_s": 2,
                "read_timeout_s": 2,
            },
            "fps": 5,
            "reconnect_min_s": 0.3,
            "reconnect_max_s": 1.0,
        }
    )
    pipeline = CameraPipeline(
        camera, None, Outputs(client, TENANT), MediaStore(tmp_path, "http://127.0.0.1:1")
    )
    pipeline.start()
    try:
        assert wait_until(lambda: pipeline.frames_processed >= 5, 30), "no frames from the stream"
        _kill(server)
        assert wait_until(lambda: not pipeline.source_up, 30), "loss not noticed"
        assert "stream lost" in (pipeline.last_error or "") or "cannot be opened" in (
            pipeline.last_error or ""
        )
        time.sleep(1.5)  # a few failed reconnects (connection refused) with backoff
        assert not pipeline.source_up
        server = _serve(port, jpegs)
        before = pipeline.frames_processed
        assert wait_until(lambda: pipeline.source_up, 30), pipeline.last_error
        assert wait_until(lambda: pipeline.frames_processed >= before + 5, 30)
        assert pipeline.capture.reconnects >= 1
        states = [
            json.loads(p)["state"]
            for t, p in collector.messages
            if t == status_topic(TENANT, "door-cam")
        ]
        assert states[:1] == ["online"]
        assert "offline" in states
        assert states[-1] == "online"
        faults = [
            json.loads(p) for t, p in collector.messages if t == event_topic(TENANT, "door-cam")
        ]
        assert [f.get("cleared", False) for f in faults][:1] == [False]
        assert faults[-1]["cleared"] is True
        assert all(f["code"] == "source_unavailable" for f in faults)
    finally:
        pipeline.stop()
        _kill(server)
        client.stop()
        collector.close()


def test_an_unreachable_stream_says_why(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from iotmon_video.cameras import StreamSource
    from iotmon_video.capture import OpenCvSource, SourceError

    source = OpenCvSource(
        StreamSource(type="stream", url=f"http://user:secret@127.0.0.1:{port}/x", open_timeout_s=2)
    )
    with pytest.raises(SourceError, match=r"stream http://user:\*\*\*@127\.0\.0\.1:\d+/x") as error:
        source.open()
    assert "secret" not in str(error.value)


class _Sink:
    """Counts what a pipeline reports (the MQTT path has its own tests)."""

    def __init__(self) -> None:
        self.states: list[bool] = []

    def next_seq(self, camera: str) -> int:
        return 1

    def event(self, camera: str, event: Any) -> bool:
        return True

    def camera_state(self, camera: str, up: bool) -> None:
        self.states.append(up)

    def fault(self, camera: str, code: str, detail: str | None, cleared: bool = False) -> None:
        return None


def test_a_pipeline_that_cannot_keep_up_drops_the_older_frames_and_says_so(
    tmp_path: Path,
) -> None:
    # The real detector on every frame (motion gate off, no shared queue) takes tens of
    # milliseconds; the file delivers a frame every 4 ms: processing must fall behind.
    frames = walk(range(0, 600, 5), None)
    clip = tmp_path / "fast.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 240, (640, 360))
    for frame in frames:
        writer.write(frame)
    writer.release()
    camera = CameraConfig.model_validate(
        {
            "id": "fast",
            "source": {"type": "file", "path": str(clip), "fps": 240},
            "fps": 240,
            "motion": {"enabled": False},
        }
    )
    detector = create_detector(OnnxDetectorConfig(type="onnx", model=weights(), threads=1))
    sink = _Sink()
    pipeline = CameraPipeline(camera, detector, sink, MediaStore(tmp_path, "http://127.0.0.1:1"))
    pipeline.start()
    try:
        assert wait_until(lambda: pipeline.capture.finished, 60)
        # Every frame is accounted for: processed, or dropped for a newer one.
        assert wait_until(
            lambda: pipeline.frames_processed + pipeline.dropped_frames == len(frames), 30
        ), (pipeline.frames_processed, pipeline.dropped_frames, len(frames))
        window = pipeline.metrics()
    finally:
        pipeline.stop()
    assert window.dropped_frames > len(frames) // 2
    assert window.input_fps > window.processed_fps
    assert sink.states == [True, False]
