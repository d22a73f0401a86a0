"""An in-process MQTT 3.1.1 broker (amqtt) for laptops without mosquitto installed.

It keeps sessions in memory and has no shared subscriptions (MQTT v5), so the
demo runs one ingest replica against it; production uses mosquitto.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from iotmon_tools.localstack.processes import free_port

logger = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            self._broker = Broker(self._config(), loop=loop)
            await self._broker.start()

        try:
            loop.run_until_complete(boot())
        except Exception as exc:  # noqa: BLE001 - reported to start()'s caller, not lost here
            self._error = exc
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.close()

    def start(self, timeout: float = 15.0) -> None:
        # amqtt logs every connection at INFO; the demo's console is for the user.
        logging.getLogger("amqtt").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name="embedded-mqtt", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError(f"embedded MQTT broker did not start in {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"embedded MQTT broker failed to start: {self._error}")

    def stop(self) -> None:
        loop, broker = self._loop, self._broker
        if loop is None or broker is None or not loop.is_running():
            return
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            future.result(timeout=10)
        except Exception:
            logger.exception("embedded MQTT broker did not shut down cleanly")
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
