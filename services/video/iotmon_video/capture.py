"""Frames from a file, a network stream (RTSP, HTTP) or a V4L2 camera, one thread each.

The capture thread never waits for processing: it puts each frame in a one-slot
mailbox where the newest wins, and a frame replaced before it was taken is counted
as dropped. Stream loss closes the source and reopens it with a doubling backoff;
every failure is reported with a reason (``on_state``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cv2

from iotmon_video.cameras import CameraConfig, FileSource, StreamSource, UsbSource
from iotmon_video.detectors.base import Image

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Frame:
    image: Image
    index: int
    at: float
    """Seconds on a monotonic clock (the file's timeline for recorded footage)."""
    wall: datetime


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says which and why."""


class LatestFrame:
    """One-slot mailbox: ``put`` never blocks (newest wins) unless asked to wait."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame, wait: threading.Event | None = None) -> None:
        """Leave ``frame``; with ``wait``, first wait until the last one was taken (recorded
        footage: nothing may be lost) or ``wait`` is set."""
        with self._cond:
            if wait is not None:
                while self._frame is not None and not self._closed and not wait.is_set():
                    self._cond.wait(0.1)
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self._cond.notify_all()

    def take(self, timeout: float) -> Frame | None:
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def describe(source: FileSource | StreamSource | UsbSource) -> str:
    if isinstance(source, FileSource):
        return f"file {source.path}"
    if isinstance(source, StreamSource):
        return f"stream {redact(source.url)}"
    return f"usb {source.device}"


def redact(url: str) -> str:
    """A URL without its password, for logs and events."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


class OpenCvSource:
    """cv2.VideoCapture with a clear error when the source cannot be opened or decoded."""

    def __init__(self, config: FileSource | StreamSource | UsbSource) -> None:
        self._config = config
        self._capture: cv2.VideoCapture | None = None
        self._first: Image | None = None

    @property
    def fps(self) -> float | None:
        if isinstance(self._config, FileSource) and self._config.fps is not None:
            return self._config.fps
        if self._capture is None:
            return None
        fps = float(self._capture.get(cv2.CAP_PROP_FPS))
        return fps if 0 < fps <= 240 else None

    def open(self) -> None:
        config = self._config
        if isinstance(config, FileSource):
            if not config.path.is_file():
                raise SourceError(f"{describe(config)}: no such file")
            capture = cv2.VideoCapture(str(config.path), cv2.CAP_FFMPEG)
        elif isinstance(config, StreamSource):
            capture = cv2.VideoCapture(
                config.url,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    int(config.open_timeout_s * 1000),
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    int(config.read_timeout_s * 1000),
                ],
            )
        else:
            capture = cv2.VideoCapture(config.device, cv2.CAP_V4L2)
            if config.width:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, config.width)
            if config.height:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, config.height)
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{describe(config)}: cannot be opened (not a video, or unreachable)")
        ok, image = capture.read()
        if not ok or image is None or image.size == 0:
            capture.release()
            raise SourceError(f"{describe(config)}: opened but no frame decodes (corrupt?)")
        self._capture = capture
        self._first = image

    def read(self) -> Image | None:
        """The next frame, or None at the end of a file or on stream loss."""
        if self._first is not None:
            image, self._first = self._first, None
            return image
        if self._capture is None:
            return None
        ok, image = self._capture.read()
        return image if ok and image is not None and image.size else None

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


StateListener = Callable[[bool, str | None], None]
"""(up, error): the source came up, went down with a reason, or (down, None) a file ended."""


class Capture:
    """Reads one camera's source on its own thread into a LatestFrame."""

    def __init__(
        self,
        camera: CameraConfig,
        mailbox: LatestFrame,
        on_state: StateListener,
        stop_event: threading.Event | None = None,
    ) -> None:
        self._camera = camera
        self._mailbox = mailbox
        self._on_state = on_state
        self._stop = stop_event or threading.Event()
        self._thread: threading.Thread | None = None
        self.frames_in = 0
        """Frames read from the source (before the rate limit)."""
        self.finished = False
        """A file without loop played to its end."""
        self.reconnects = 0

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self._camera.id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._mailbox.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        delay = self._camera.reconnect_min_s
        attempt = 0
        while not self._stop.is_set():
            source = OpenCvSource(self._camera.source)
            try:
                source.open()
            except SourceError as exc:
                attempt += 1
                self._on_state(False, str(exc))
                logger.warning("camera %s: %s; retrying in %.1f s", self._camera.id, exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self._camera.reconnect_max_s)
                continue
            except Exception as exc:
                logger.exception("camera %s: source failed to open", self._camera.id)
                self._on_state(False, f"{describe(self._camera.source)}: {exc}")
                self._stop.wait(delay)
                delay = min(delay * 2, self._camera.reconnect_max_s)
                continue
            if attempt:
                self.reconnects += 1
            delay, attempt = self._camera.reconnect_min_s, 0
            self._on_state(True, None)
            try:
                ended = self._pump(source)
            finally:
                source.close()
            if ended:
                self.finished = True
                self._on_state(False, None)  # the end of a recording is no fault
                return
            if not self._stop.is_set():
                attempt = 1
                reason = f"{describe(self._camera.source)}: stream lost"
                self._on_state(False, reason)
                logger.warning(
                    "camera %s: %s; reconnecting in %.1f s", self._camera.id, reason, delay
                )
                self._stop.wait(delay)

    def _pump(self, source: OpenCvSource) -> bool:
        """Frames until stop (False), loss (False) or the end of a file (True)."""
        config = self._camera.source
        is_file = isinstance(config, FileSource)
        realtime = not is_file or (isinstance(config, FileSource) and config.realtime)
        source_fps = source.fps or self._camera.fps
        keep_every = max(1.0, source_fps / self._camera.fps)
        wall0 = datetime.now(UTC)
        mono0 = time.monotonic()
        index = 0
        next_keep = 0.0
        while not self._stop.is_set():
            image = source.read()
            if image is None:
                if is_file and isinstance(config, FileSource) and config.loop:
                    source.close()
                    source.open()
                    continue
                return is_file
            self.frames_in += 1
            offset = index / source_fps
            index += 1
            if is_file and realtime:
                # Play the file at its own pace, as a camera would deliver it.
                self._stop.wait(max(0.0, mono0 + offset - time.monotonic()))
            if index - 1 < next_keep:
                continue
            next_keep += keep_every
            if realtime:
                at, wall = time.monotonic(), datetime.now(UTC)
            else:
                at, wall = mono0 + offset, wall0 + timedelta(seconds=offset)
            frame = Frame(image, index - 1, at, wall)
            self._mailbox.put(frame, wait=None if realtime else self._stop)
        return False
