"""A small HTTP/1.1 load generator for ``iotmon bench api``: N concurrent keep-alive clients.

Run as its own process (``python -m iotmon_tools.bench.http_load``, a JSON spec on
stdin, JSON results on stdout) so that its CPU is counted apart from the API's.
Requests are written and responses read on raw asyncio streams: an HTTP client
library would spend more CPU per request than the server under test, on the same
two cores.

Closed loop (``pace_s`` null): each client sends its next request when the last
answer arrived, so latency grows with the load it creates. Paced: each client
sends one request every ``pace_s``, and latency counts from when the request was
due, so a server that falls behind is not hidden by clients that wait for it.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LoadSpec:
    host: str
    port: int
    token: str
    paths: list[str]
    clients: int = 50
    duration_s: float = 15.0
    warmup_s: float = 2.0
    pace_s: float | None = None
    seed: int = 0


@dataclass(slots=True)
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    retry_after: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


class _Connection:
    def __init__(self, spec: LoadSpec) -> None:
        self._spec = spec
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, path: str) -> tuple[int, bool]:
        """GET ``path``; (status, whether Retry-After came with it)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(
                self._spec.host, self._spec.port
            )
        assert self._reader is not None
        self._writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {self._spec.host}\r\n"
            f"Authorization: Bearer {self._spec.token}\r\n\r\n".encode()
        )
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            while True:
                size = int((await self._reader.readuntil(b"\r\n")).strip(), 16)
                await self._reader.readexactly(size + 2)
                if size == 0:
                    break
        if headers.get("connection") == "close":
            self.close()
        return status, "retry-after" in headers

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


async def _client(index: int, spec: LoadSpec, start: float, end: float, out: LoadResult) -> None:
    rng = random.Random(spec.seed * 1000 + index)  # noqa: S311 - picks paths, not secrets
    connection = _Connection(spec)
    loop = asyncio.get_running_loop()
    # Paced clients start spread over one period, not all at once.
    due = start + (spec.pace_s * rng.random() if spec.pace_s else 0.0)
    try:
        while True:
            now = loop.time()
            if spec.pace_s is not None and due > now:
                await asyncio.sleep(due - now)
            sent = due if spec.pace_s is not None else loop.time()
            if sent >= end:
                return
            try:
                status, retry = await connection.request(rng.choice(spec.paths))
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                connection.close()
                status, retry = 0, False
                if len(out.failures) < 5:
                    out.failures.append(f"{type(exc).__name__}: {exc}")
            done = loop.time()
            if sent >= start + spec.warmup_s:
                out.latencies_ms.append((done - sent) * 1000)
                out.statuses[str(status)] = out.statuses.get(str(status), 0) + 1
                out.retry_after += retry
            if spec.pace_s is not None:
                due += spec.pace_s
    finally:
        connection.close()


async def run_load(spec: LoadSpec) -> LoadResult:
    out = LoadResult()
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + spec.warmup_s + spec.duration_s
    await asyncio.gather(*(_client(i, spec, start, end, out) for i in range(spec.clients)))
    out.seconds = max(loop.time() - start - spec.warmup_s, 1e-9)
    return out


def main() -> None:
    spec = LoadSpec(**json.loads(sys.stdin.read()))
    started = time.process_time()
    result = run_load_sync(spec)
    document: dict[str, Any] = asdict(result)
    document["cpu_s"] = time.process_time() - started
    sys.stdout.write(json.dumps(document))


def run_load_sync(spec: LoadSpec) -> LoadResult:
    return asyncio.run(run_load(spec))


if __name__ == "__main__":
    main()
