"""Per-key rate limiting: a token bucket per API key (per client address for calls without a valid one).

Each key may make `per_minute` requests a minute on average, with bursts up to `burst`; beyond that the
answer is `429` with `Retry-After` (whole seconds until a request would be admitted) in problem+json.
Buckets live in the process, so with N replicas a key gets up to N times the rate: set the limit per
replica. Health and metrics endpoints are never limited. Off unless `CRM_RATE_LIMIT_PER_MINUTE` is set.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_kit.auth import KeyRing
from crm_kit.errors import PROBLEM_BASE

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_BUCKETS = 100_000  # beyond this many distinct callers, the idlest buckets are forgotten


@dataclass
class Bucket:
    tokens: float
    updated: float


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, per_minute: float, burst: int, keyring: KeyRing | None = None) -> None:
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(max(1, burst))
        self.buckets: dict[bytes, Bucket] = {}
        # Which keys are valid: only those get a bucket of their own (without a keyring, none does).
        self.keyring = keyring

    def _caller(self, scope: Scope) -> bytes:
        for name, value in scope["headers"]:
            if name == b"authorization":
                # Read as auth reads it (the first header, "bearer" in any case, the token stripped). Only a valid key
                # has a bucket of its own: an invalid one is a call without a key, counted against its address, or a
                # made-up token per request would get a fresh bucket each time. The key itself is never kept in
                # memory longer than the request here: only a digest of it.
                scheme, _, token = value.decode("latin-1").partition(" ")
                token = token.strip()
                if scheme.lower() == "bearer" and token and self._valid(token):
                    return hashlib.blake2b(token.encode("latin-1"), digest_size=16).digest()
                break
        client = scope.get("client")
        return b"addr:" + (client[0].encode() if client else b"unknown")

    def _valid(self, token: str) -> bool:
        return self.keyring is not None and self.keyring.authenticate(token) is not None

    def _admit(self, caller: bytes, now: float) -> float:
        """0 when admitted, else the seconds until a token is available."""
        bucket = self.buckets.get(caller)
        if bucket is None:
            if len(self.buckets) >= MAX_BUCKETS:
                for stale in sorted(self.buckets, key=lambda k: self.buckets[k].updated)[: MAX_BUCKETS // 10]:
                    del self.buckets[stale]
            bucket = self.buckets[caller] = Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self._admit(self._caller(scope), time.monotonic())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        body = orjson.dumps(
            {
                "type": f"{PROBLEM_BASE}too-many-requests",
                "title": "Too many requests",
                "status": 429,
                "detail": f"this key's rate limit is reached; retry in {retry_after} s",
                "instance": scope["path"],
            }
        )
        headers = [(b"content-type", b"application/problem+json"), (b"retry-after", str(retry_after).encode())]
        await send({"type": "http.response.start", "status": 429, "headers": headers})
        await send({"type": "http.response.body", "body": body})
