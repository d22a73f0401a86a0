"""The video service's Prometheus metrics, read from each camera's running totals.

``video_families`` is pure: the cameras' totals in, metric families out (label
``camera``: the configured camera ids, a bounded set). The service registers it with
the shared MQTT client's families on its own registry; docs/metrics.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from iotmon_video.pipeline import CameraTotals


def video_families(totals: Mapping[str, CameraTotals]) -> list[Metric]:
    def per_camera(
        family: CounterMetricFamily | GaugeMetricFamily, value: Callable[[CameraTotals], float]
    ) -> Metric:
        for camera in sorted(totals):
            family.add_metric([camera], value(totals[camera]))
        return family

    def counter(name: str, documentation: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, documentation, labels=["camera"])

    def gauge(name: str, documentation: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, documentation, labels=["camera"])

    return [
        per_camera(
            counter("iotmon_video_frames_in", "Frames read from the camera's source."),
            lambda t: t.frames_in,
        ),
        per_camera(
            counter("iotmon_video_frames_processed", "Frames analysed (motion, tracking)."),
            lambda t: t.frames_processed,
        ),
        per_camera(
            counter(
                "iotmon_video_frames_dropped",
                "Frames skipped because analysis was behind (the newest frame wins).",
            ),
            lambda t: t.dropped_frames,
        ),
        per_camera(
            counter("iotmon_video_detections", "Detector runs on a frame's motion regions."),
            lambda t: t.detections,
        ),
        per_camera(
            counter(
                "iotmon_video_detect_skipped",
                "Frames not sent to the detector while the camera's previous one was in it.",
            ),
            lambda t: t.detect_skipped,
        ),
        per_camera(
            counter("iotmon_video_inference_seconds", "Time spent in the detector."),
            lambda t: t.inference_s,
        ),
        per_camera(
            gauge("iotmon_video_tracked_objects", "Objects tracked in the last frame."),
            lambda t: t.tracked_objects,
        ),
        per_camera(
            gauge("iotmon_video_source_up", "1 while the camera's source delivers frames."),
            lambda t: 1.0 if t.source_up else 0.0,
        ),
    ]
