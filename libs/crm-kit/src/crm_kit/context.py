"""Per-request context shared by the middleware, the logs and the peer HTTP client."""

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
