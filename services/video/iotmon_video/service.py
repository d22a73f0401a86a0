"""The video service: every camera's pipeline, the shared detector, MQTT, media.

``VideoService(settings, config, stop_event)`` is a worker (``start``/``stop``) that
also runs to completion (``run``). A detector that cannot load (weights missing)
is said once, loudly, and the cameras run motion-only; a camera whose source fails
reports it and retries without touching the others.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.metrics_core import Metric
from pydantic import ValidationError

from iotmon_contract import (
    IgnitionEvent,
    RunEndEvent,
    RunStartEvent,
    event_topic,
    parse_event,
)
from iotmon_runtime.availability import ServiceAvailability
from iotmon_runtime.metrics import (
    MetricsServer,
    SnapshotCollector,
    mqtt_client_families,
    service_registry,
)
from iotmon_runtime.mqtt import (
    ConnectionEvent,
    Handler,
    InboundMessage,
    MqttClient,
)
from iotmon_runtime.workers import Supervisor
from iotmon_video.cameras import CameraConfig, FileSource, VideoConfig
from iotmon_video.config import SERVICE_NAME, VideoSettings
from iotmon_video.detect_queue import DetectorPool
from iotmon_video.detectors import Detector, DetectorUnavailable, create_detector
from iotmon_video.media import MediaStore, sweep
from iotmon_video.media_server import MediaServer
from iotmon_video.metrics import video_families
from iotmon_video.outputs import Outputs
from iotmon_video.pipeline import CameraPipeline

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 60.0


def with_paths_from(config: VideoConfig, base: Path) -> VideoConfig:
    """Relative file paths in the cameras file are relative to that file's folder."""
    cameras = []
    for camera in config.cameras:
        source = camera.source
        if isinstance(source, FileSource) and not source.path.is_absolute():
            source = source.model_copy(update={"path": base / source.path})
        cameras.append(camera.model_copy(update={"source": source}))
    detector = config.detector
    model = getattr(detector, "model", None)
    if isinstance(model, Path) and not model.is_absolute():
        detector = detector.model_copy(update={"model": base / model})
    return config.model_copy(update={"cameras": cameras, "detector": detector})


def load_detector(config: VideoConfig) -> Detector | None:
    try:
        detector = create_detector(config.detector)
    except DetectorUnavailable as exc:
        logger.error("no detector, running motion-only: %s", exc)
        return None
    if detector is None:
        logger.warning("detector.type is none: running motion-only (no object events)")
    return detector


class VideoService:
    def __init__(
        self,
        settings: VideoSettings,
        config: VideoConfig,
        stop_event: threading.Event | None = None,
        detector: Detector | None = None,
    ) -> None:
        self._settings = settings
        self._config = config
        self._stop_event = stop_event or threading.Event()
        self._detector = detector
        self._client: MqttClient | None = None
        self._server: MediaServer | None = None
        self._pipelines: dict[str, CameraPipeline] = {}
        self._pool: DetectorPool | None = None
        self._availability: ServiceAvailability | None = None
        self._housekeeping: threading.Thread | None = None
        self._halt = threading.Event()
        self._metrics: MetricsServer | None = None
        self.failure: str | None = None

    @property
    def pipelines(self) -> dict[str, CameraPipeline]:
        return self._pipelines

    @property
    def media_port(self) -> int:
        assert self._server is not None
        return self._server.port

    @property
    def stop_event(self) -> threading.Event:
        return self._stop_event

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics answers while running (None when disabled or stopped)."""
        server = self._metrics
        return server.url if server is not None and server.running else None

    def start(self) -> None:
        """Start; MetricsServerError when the metrics port is taken (before anything else)."""
        settings = self._settings
        if settings.metrics.enabled:
            registry = service_registry(SERVICE_NAME, "iotmon-video")
            registry.register(SnapshotCollector(self._metric_families))
            server = MetricsServer(
                registry, settings.metrics, setting=VideoSettings.variable("metrics", "port")
            )
            server.start()
            self._metrics = server
        availability = ServiceAvailability.of(SERVICE_NAME, settings.instance_id, "iotmon-video")
        self._availability = availability
        self._server = MediaServer(settings.http_host, settings.http_port, settings.media_dir)
        self._server.start()
        base_url = settings.public_url or f"http://{settings.http_host}:{self._server.port}"
        media = MediaStore(settings.media_dir, base_url)
        client = MqttClient(
            settings.mqtt,
            client_id=settings.client_id,
            will=availability.will,
            online=availability.online,
            name=f"video-{settings.instance_id}",
        )
        self._client = client
        client.add_listener(self._on_connection)
        outputs = Outputs(client, self._config.tenant)
        if self._detector is not None:
            batch = getattr(self._config.detector, "batch", 1)
            self._pool = DetectorPool(self._detector, self._config.detector_workers, batch)
            self._pool.start()
        for camera in self._config.cameras:
            self._pipelines[camera.id] = CameraPipeline(
                camera, self._detector, outputs, media, self._stop_event, self._pool
            )
            if camera.cabin is not None:
                client.subscribe(
                    event_topic(self._config.tenant, camera.cabin.vehicle),
                    self._vehicle_handler(camera),
                )
        client.start()
        for pipeline in self._pipelines.values():
            pipeline.start()
        self._housekeeping = threading.Thread(
            target=self._housekeep, args=(outputs,), name="video-housekeeping", daemon=True
        )
        self._housekeeping.start()
        logger.info(
            "video service up: %d camera(s), detector %s, media at %s",
            len(self._pipelines),
            self._detector.name if self._detector else "none",
            base_url,
        )

    def stop(self) -> None:
        self._halt.set()
        for pipeline in self._pipelines.values():
            try:
                pipeline.stop()
            except Exception:
                logger.exception("camera %s did not stop cleanly", pipeline.camera.id)
        if self._pool is not None:
            self._pool.stop()
        if self._housekeeping is not None:
            self._housekeeping.join(timeout=5)
        if self._client is not None:
            offline = self._availability.offline() if self._availability else None
            self._client.stop(offline=offline)
        if self._server is not None:
            self._server.stop()
        if self._detector is not None:
            self._detector.close()
        if self._metrics is not None:
            self._metrics.stop()
            self._metrics = None

    def _metric_families(self) -> list[Metric]:
        """Read on a scrape, on the metrics server's thread: the cameras' totals."""
        client = self._client
        totals = {camera: p.totals() for camera, p in list(self._pipelines.items())}
        return [
            *video_families(totals),
            *mqtt_client_families([client] if client is not None else []),
        ]

    def run(self) -> int:
        return Supervisor([("video", self)], self._stop_event).run()

    def _on_connection(self, event: ConnectionEvent) -> None:
        # Network thread: only record and signal. Bad credentials do not heal by
        # retrying: the service stops and says why (exit code 1).
        if event is ConnectionEvent.FAILED and self._client is not None:
            self.failure = self._client.failure or "MQTT broker refused the login"
            logger.error("video service stopping: %s", self.failure)
            self._stop_event.set()

    def _vehicle_handler(self, camera: CameraConfig) -> Handler:
        pipeline_of = self._pipelines

        def on_vehicle_event(message: InboundMessage) -> None:
            try:
                event = parse_event(message.payload)
            except ValidationError:
                logger.warning(
                    "camera %s: unreadable vehicle event on %s", camera.id, message.topic
                )
                return
            pipeline = pipeline_of[camera.id]
            if isinstance(event, RunEndEvent):
                pipeline.analytics.set_parked(True)
                logger.info("camera %s: vehicle parked (run end)", camera.id)
            elif isinstance(event, RunStartEvent) or (
                isinstance(event, IgnitionEvent) and event.on
            ):
                pipeline.analytics.set_parked(False)
                logger.info("camera %s: vehicle moving", camera.id)

        return on_vehicle_event

    def _housekeep(self, outputs: Outputs) -> None:
        interval = self._settings.metrics_interval_s
        since_sweep = SWEEP_INTERVAL_S
        while not self._halt.wait(interval):
            now = datetime.now(UTC)
            for camera_id, pipeline in self._pipelines.items():
                try:
                    outputs.metrics(camera_id, pipeline.metrics().as_readings(), now)
                except Exception:
                    logger.exception("camera %s: metrics not published", camera_id)
            since_sweep += interval
            if since_sweep >= SWEEP_INTERVAL_S:
                since_sweep = 0.0
                try:
                    sweep(
                        self._settings.media_dir,
                        self._settings.media_retention_s,
                        self._settings.media_max_bytes,
                    )
                except OSError:
                    logger.exception("media retention sweep failed")
