"""Tokens recently found valid, kept a second so that a busy client is not looked up per request.

Looking a token up costs a registry transaction (a SQLite connection, two queries)
and a hop to a worker thread: more than a cached ``latest`` answer. A token found
valid is remembered for ``ttl_s`` (``IOTMON_API_AUTH_CACHE_S``, 1 s by default, 0
turns it off); refusals are never remembered, and a token's expiry is kept with it
and checked on the API's clock, so an expired token is refused on time. The price:
a revoked token is still taken for at most ``ttl_s`` by an API process that has
just seen it. Kept by the token's SHA-256, not the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import NamedTuple

from iotmon_registry import Principal


class _Entry(NamedTuple):
    principal: Principal
    cached_at: float
    expires_at: datetime | None


class PrincipalCache:
    def __init__(
        self,
        ttl_s: float = 1.0,
        *,
        now: Callable[[], datetime],
        max_tokens: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``now`` is the API's clock (token expiry), ``clock`` a monotonic one (the TTL)."""
        self._ttl_s = ttl_s
        self._now = now
        self._max_tokens = max_tokens
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[Principal]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        entry = self._fresh(self._key(token))
        return entry.principal if entry is not None else None

    def _fresh(self, key: bytes) -> _Entry | None:
        if self._ttl_s <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or self._clock() - entry.cached_at >= self._ttl_s:
            return None
        if entry.expires_at is not None and entry.expires_at <= self._now():
            return None
        return entry

    async def get_or_load(
        self, token: str, load: Callable[[], Awaitable[tuple[Principal, datetime | None]]]
    ) -> Principal:
        """The cached principal of ``token``, else ``load()``'s, kept. Concurrent misses
        for one token share one load: when an entry expires under a busy client, one
        registry lookup runs, not one per request in flight. An entry past half its time
        is looked up again in the background (and dropped if the token was revoked), so
        a busy client is not held up by it."""
        key = self._key(token)
        entry = self._fresh(key)
        if entry is not None:
            if self._clock() - entry.cached_at >= self._ttl_s / 2 and key not in self._pending:
                self._start(key, token, load)
            return entry.principal
        task = self._pending.get(key) or self._start(key, token, load)
        return await asyncio.shield(task)

    def _start(
        self,
        key: bytes,
        token: str,
        load: Callable[[], Awaitable[tuple[Principal, datetime | None]]],
    ) -> asyncio.Future[Principal]:
        task = asyncio.ensure_future(self._load(key, token, load))
        self._pending[key] = task
        task.add_done_callback(lambda done: self._done(key, done))
        return task

    async def _load(
        self,
        key: bytes,
        token: str,
        load: Callable[[], Awaitable[tuple[Principal, datetime | None]]],
    ) -> Principal:
        asked = self._clock()  # valid as of the question, not the reply
        try:
            principal, expires_at = await load()
        except BaseException:
            with self._lock:
                self._entries.pop(key, None)  # revoked meanwhile: refused from now on
            raise
        self.put(token, principal, expires_at, at=asked)
        return principal

    def _done(self, key: bytes, task: asyncio.Future[Principal]) -> None:
        self._pending.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved here, in case every waiter went away

    def put(
        self,
        token: str,
        principal: Principal,
        expires_at: datetime | None,
        *,
        at: float | None = None,
    ) -> None:
        if self._ttl_s <= 0:
            return
        key = self._key(token)
        with self._lock:
            self._entries[key] = _Entry(principal, self._clock() if at is None else at, expires_at)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_tokens:
                self._entries.popitem(last=False)
