"""Request ids, one JSON log line per request, Prometheus metrics, the request-size limit, and the refusal of
text holding U+0000 (NUL), which PostgreSQL cannot store (the database would fail the request after it was taken),
or a path or query whose percent-escapes are not UTF-8 (Starlette would read U+FFFD in their place).

A pure ASGI middleware (no per-request task or body copy) so that it costs little on hot reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import re
import secrets
import sys
import time
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.tracebacks import ExceptionDictTransformer

from crm_kit.context import request_id
from crm_kit.errors import PROBLEM_BASE, BodyRefused, PayloadTooLarge, ProblemError, TextRefused

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
#: A JSON string escape of U+0000: `\u0000` after an even run of backslashes (an odd run escapes a backslash).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_TAIL = 64  # bytes of the previous body chunk kept, so an escape split across chunks is still seen


def _is_utf8(raw: bytes) -> bool:
    """Whether a raw path or query string, percent-decoded, is UTF-8 (plain ASCII without escapes is)."""
    if raw.isascii() and b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode()
    except UnicodeDecodeError:
        return False
    return True


def _request_line_refusal(scope: Scope) -> TextRefused | None:
    """Why the request's path or query is refused before it is routed, if it is."""
    if "\x00" in scope["path"]:
        return TextRefused("path")
    if b"%00" in scope["query_string"]:
        return TextRefused("query")
    if not _is_utf8(scope.get("raw_path") or b""):
        return TextRefused("path", "invalid_utf8")
    if not _is_utf8(scope["query_string"]):
        return TextRefused("query", "invalid_utf8")
    return None


def _add_request_id(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    rid = request_id.get()
    if rid is not None:
        event.setdefault("request_id", rid)
    return event


def configure_logging(service: str, level: str = "INFO") -> None:
    """JSON lines on stdout for structlog and for the standard library loggers alike."""
    numeric = logging.getLevelName(level.upper())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Any] = [
        # Frame locals would carry request bodies (names, phones) into the logs.
        structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
        structlog.processors.EventRenamer("message"),
        lambda _l, _n, e: {"service": service, **e},
        structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()),
    ]
    structlog.configure(
        processors=[*shared, *tail],
        wrapper_class=structlog.make_filtering_bound_logger(numeric if isinstance(numeric, int) else 20),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
    # Lines of the standard library's loggers (uvicorn, httpx, the jobs' `logging` calls) take the same shape:
    # `message`, their `extra=` fields, the exception as structlog renders it (no frame locals), text as written.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *tail,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric if isinstance(numeric, int) else logging.INFO)
    # The middleware writes the access line; uvicorn's own would be a second, unstructured one.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx and httpcore log every request's full URL at INFO: a webhook's URL may hold its receiver's token, and a
    # peer call's query string customer data. PeerClient logs its calls itself, without the query.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by route and status",
            ["service", "method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            ["service", "method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.job_runs = Counter(
            "background_job_runs_total",
            "Runs of each background job (a pass of a periodic one) by outcome",
            ["service", "job", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "background_job_duration_seconds",
            "Duration of each background job's runs",
            ["service", "job"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.25, 1, 5, 30, 120, 600, 1800),
        )
        self.job_last_success = Gauge(
            "background_job_last_success_timestamp_seconds",
            "When each background job last ran to its end without an error (Unix time): alert on its age",
            ["service", "job"],
            registry=self.registry,
        )
        self.service = service
        self._series: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count a request and its latency (the labelled series are looked up once per combination)."""
        series = self._series.get((method, route, str(status)))
        if series is None:
            series = (
                self.requests.labels(self.service, method, route, str(status)),
                self.latency.labels(self.service, method, route),
            )
            self._series[(method, route, str(status))] = series
        series[0].inc()
        series[1].observe(seconds)

    def job_ran(self, job: str, seconds: float, *, succeeded: bool) -> None:
        """Count a background job's run, its duration and, if it succeeded, when."""
        self.job_runs.labels(self.service, job, "succeeded" if succeeded else "failed").inc()
        self.job_duration.labels(self.service, job).observe(seconds)
        if succeeded:
            self.job_last_success.labels(self.service, job).set_to_current_time()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: bool, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log and logging.getLogger().isEnabledFor(logging.INFO)
        self.max_body_bytes = max_body_bytes
        self.out = sys.stdout  # where configure_logging sends every line
        self._pending: list[bytes] = []
        # Generated request ids: 32 hex digits, a random prefix per process and a counter (no system call).
        self.id_prefix = secrets.token_hex(10)
        self.id_counter = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = None
        length = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")
                rid = candidate if _VALID_REQUEST_ID.match(candidate) else None
            elif name == b"content-length":
                length = int(value) if value.isdigit() else None
        rid = rid or f"{self.id_prefix}{next(self.id_counter):012x}"
        token = request_id.set(rid)
        rid_header = (b"x-request-id", rid.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        try:
            if length is not None and length > self.max_body_bytes:
                await self._refused(
                    send_with_id, scope["path"], PayloadTooLarge("the request body exceeds the size limit")
                )
            elif refusal := _request_line_refusal(scope):
                await self._refused(send_with_id, scope["path"], refusal)
            else:
                await self.app(scope, self._checked(receive), send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            # API routes set `route`; the framework's own (the OpenAPI document, /docs) only `endpoint`, on a fixed
            # path. Anything else (a 404, a refusal before routing) would be one label per path sent: "unmatched".
            template = getattr(route, "path", None) or (scope["path"] if "endpoint" in scope else "unmatched")
            method = scope["method"]
            self.metrics.observe(method, template, status, elapsed)
            if self.access_log:
                self._access_line(rid, method, scope["path"], template, status, elapsed)
            request_id.reset(token)

    def _access_line(self, rid: str, method: str, path: str, route: str, status: int, elapsed: float) -> None:
        """The request's log line, in the shape structlog gives every other line but written directly:
        its processor chain cost more than a cached profile read itself."""
        line = {
            "service": self.metrics.service,
            "method": method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "request_id": rid,
            "level": "info",
            "timestamp": dt.datetime.now(dt.UTC),
            "message": "request",
        }
        self._pending.append(orjson.dumps(line, option=orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE))
        if len(self._pending) == 1:
            asyncio.get_running_loop().call_soon(self._write_pending)

    def _write_pending(self) -> None:
        """Write the lines of the requests finished in one turn of the event loop with one system call: a
        write per line cost a quarter of a cached read under load, and a line waits only for that turn."""
        lines, self._pending = self._pending, []
        self.out.write(b"".join(lines).decode())
        self.out.flush()

    def _checked(self, receive: Receive) -> Receive:
        """``receive``, refusing a body beyond the size limit or holding a JSON escape of U+0000."""
        seen = 0
        limit = self.max_body_bytes
        tail = b""

        async def receive_checked() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > limit:
                    raise BodyRefused(PayloadTooLarge("the request body exceeds the size limit"))
                # The plain searches first (the fast ones); the body is joined to the tail only on a hit.
                if (b"u0000" in chunk or b"u0000" in tail + chunk[:5]) and _JSON_NUL.search(tail + chunk):
                    raise BodyRefused(TextRefused("body"))
                tail = chunk[-_TAIL:] if len(chunk) >= _TAIL else (tail + chunk)[-_TAIL:]
            return message

        return receive_checked

    @staticmethod
    async def _refused(send: Send, path: str, refusal: ProblemError) -> None:
        body = {"type": f"{PROBLEM_BASE}{refusal.slug}", "title": refusal.title, "status": refusal.status}
        body |= {"detail": refusal.detail, "instance": path.replace("\x00", "%00"), **refusal.extra}
        headers = [(b"content-type", b"application/problem+json")]
        await send({"type": "http.response.start", "status": refusal.status, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})
