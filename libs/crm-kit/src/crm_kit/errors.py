"""RFC 9457 problem details: the one error type, its handlers, and its OpenAPI description.

Every error a service returns, whatever raised it, leaves as `application/problem+json` with
`type`, `title`, `status`, `detail`, `instance` (and `errors` for field validation). Stack traces
never leave the process; unexpected failures are logged with the request id and answered 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://errors.retail-crm.dev/"

log = structlog.get_logger(__name__)

_PARAMETER = re.compile(r"(\{[^}]*\})")  # a path template's {name}, kept by split
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})


class FieldError(BaseModel):
    field: str
    message: str
    type: str


class Problem(BaseModel):
    """The body of every error response."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """Raise to answer with a problem. Subclasses fix the status; `extra` adds members to the body."""

    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers
        self.extra = extra


class BadRequest(ProblemError):
    pass


class Unauthorized(ProblemError):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(ProblemError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(ProblemError):
    status, title, slug = 404, "Not found", "not-found"


class Gone(ProblemError):
    status, title, slug = 410, "Gone", "gone"


class Conflict(ProblemError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(ProblemError):
    status, title, slug = 412, "Precondition failed", "precondition-failed"


class PreconditionRequired(ProblemError):
    status, title, slug = 428, "Precondition required", "precondition-required"


class Unprocessable(ProblemError):
    """A value refused by a rule beyond the schema (one field against another, the clock, the state it meets).
    Given its `field`, it lists it in `errors` as a validation failure does, so a client reads one shape."""

    status, title, slug = 422, "Unprocessable content", "unprocessable"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any):
        if extra.get("field") is not None and "errors" not in extra:
            extra["errors"] = [{"field": extra["field"], "message": detail or self.title, "type": self.slug}]
        super().__init__(detail, headers=headers, **extra)


class PayloadTooLarge(ProblemError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class BodyRefused(StarletteHTTPException):
    """A problem found while the request body is read. FastAPI turns any other exception raised there into a
    bare 400 ("There was an error parsing the body") and passes HTTPException on, so the problem travels in one."""

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.status, problem.detail)
        self.problem = problem


#: Why text is refused up front, by the error's type: PostgreSQL cannot store U+0000, so every backend refuses it
#: alike; percent-escapes that are not UTF-8 would otherwise reach the service as U+FFFD, replacing what was sent.
TEXT_REFUSALS = {
    "nul_character": "text may not contain the NUL character (U+0000)",
    "invalid_utf8": "percent-escapes must decode to UTF-8 text",
}


class TextRefused(ProblemError):
    """Text refused in the body, the query or the path (see TEXT_REFUSALS): a validation failure of that part."""

    status, title, slug = 422, "Validation failed", "validation"

    def __init__(self, part: str, reason: str = "nul_character") -> None:
        error = {"field": part, "message": TEXT_REFUSALS[reason], "type": reason}
        super().__init__("1 field(s) failed validation", errors=[error])


class ServiceUnavailable(ProblemError):
    status, title, slug = 503, "Service unavailable", "service-unavailable"


def failure_text(exc: BaseException, limit: int = 2000) -> str:
    """A failed background job's error, as it is stored and shown: the exception's type and message. A driver error
    gives the database's own message, without the SQL statement and the link SQLAlchemy appends to it."""
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    return f"{type(exc).__name__}: {orig if orig is not None else exc}"[:limit]


def problem_response(
    request: Request,
    *,
    status: int,
    title: str,
    slug: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": request.url.path,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"} and len(parts) > 1:
        return parts[0] + "." + ".".join(parts[1:])
    return ".".join(parts)


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        status=exc.status,
        title=exc.title,
        slug=exc.slug,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extra,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unread = any(err.get("type") in _BODY_UNREAD and err.get("loc", ())[:1] == ("body",) for err in exc.errors())
    if unread and (refusal := await _key_refusal(request)) is not None:
        return await _on_problem(request, refusal)
    errors = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "json_invalid":
            message = "request body is not valid JSON (UTF-8)"
        errors.append(
            {"field": _field_name(tuple(err.get("loc", ()))), "message": message, "type": err.get("type", "")}
        )
    return problem_response(
        request,
        status=422,
        title="Validation failed",
        slug="validation",
        detail=f"{len(errors)} field(s) failed validation",
        errors=errors,
    )


async def _key_refusal(request: Request) -> ProblemError | None:
    """The 401 or 403 the route's key check gives this request, if any.

    FastAPI reads a JSON body before any dependency runs, so a body it cannot read would be answered 422 before the
    key is looked at: a caller without a key, or without the route's scope, would be told about a body it may not
    send. For those requests the route's own check (a `require(scope)` dependency, found by its `required_scope`)
    runs first, here, on the Authorization header as the bearer scheme reads it.
    """
    dependant = getattr(request.scope.get("route"), "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dependency = pending.pop()
        if getattr(dependency.call, "required_scope", None) is None:
            pending.extend(dependency.dependencies)
            continue
        scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
        credentials = HTTPAuthorizationCredentials(scheme=scheme, credentials=token) if scheme and token else None
        try:
            await dependency.call(request, credentials)
        except ProblemError as refusal:
            return refusal
    return None


#: The errors of a JSON body that could not be read at all (as opposed to one read and found invalid).
_BODY_UNREAD = frozenset({"json_invalid", "json_too_deep", "json_number_too_long"})

#: Why FastAPI could not read a JSON body, which it answers with a bare 400 ("There was an error parsing the body")
#: while malformed JSON is a 422: the same mistake, so these get the 422 that names the body (error type, message;
#: an empty message is json_invalid's own, "request body is not valid JSON (UTF-8)"). The first match wins:
#: UnicodeDecodeError is a ValueError.
_UNREADABLE_BODY: dict[type[Exception], tuple[str, str]] = {
    UnicodeDecodeError: ("json_invalid", ""),
    RecursionError: ("json_too_deep", "request body is nested too deeply to read"),
    # What else json.loads raises past its JSONDecodeError: an integer of more than 4,300 digits (CVE-2020-10735).
    ValueError: ("json_number_too_long", "request body holds a number too long to read"),
}


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyRefused):
        return await _on_problem(request, exc.problem)
    for cause, (kind, message) in _UNREADABLE_BODY.items():
        if exc.status_code == 400 and isinstance(exc.__cause__, cause):
            invalid = RequestValidationError([{"type": kind, "loc": ("body",), "msg": message}])
            return await _on_validation(request, invalid)
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "HTTP error"
    slug = title.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = exc.headers
    if exc.status_code == 405 and (allow := _allowed_methods(request)):
        headers = {**(headers or {}), "Allow": allow}
    return problem_response(request, status=exc.status_code, title=title, slug=slug, detail=detail, headers=headers)


def _allowed_methods(request: Request) -> str | None:
    """Every method the API documents at the request's path, and HEAD with GET (RFC 9110 §15.5.6). Starlette's
    own 405 names only the first route whose path matched: `PUT /v1/customers` said `Allow: POST`, not GET."""
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = "".join("[^/]+" if part[:1] == "{" else re.escape(part) for part in _PARAMETER.split(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {name.upper() for name in operations} & _METHODS
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods)) or None


async def _on_stale(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(
        request,
        status=412,
        title="Precondition failed",
        slug="precondition-failed",
        detail="the resource was changed by another request; fetch it again and retry",
    )


async def _on_integrity(request: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity_error", error=str(getattr(exc, "orig", exc))[:300])
    return problem_response(
        request, status=409, title="Conflict", slug="conflict", detail="the change conflicts with stored data"
    )


async def _on_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.error("database_unavailable", error=type(exc).__name__, sqlstate=_database_code(exc))
    return problem_response(
        request,
        status=503,
        title="Service unavailable",
        slug="service-unavailable",
        detail="the database is not reachable; retry shortly",
        headers={"Retry-After": "1"},
    )


#: SQLSTATE classes (PostgreSQL's appendix A) of failures the same request may get past later: a lost or refused
#: connection (08), an unknown database or a refused login (3D, 28: the configured database is not there), a
#: transaction rolled back by a serialization failure or a deadlock (40), insufficient resources (53), operator
#: intervention such as a shutdown or a cancelled statement (57), and system errors (58).
_UNAVAILABLE_CLASSES = frozenset({"08", "28", "3D", "40", "53", "57", "58"})
#: A lock not available, an object in use, and a database that takes no writes for now (a primary turned standby in a
#: failover, or one set read-only for maintenance).
_UNAVAILABLE_STATES = frozenset({"55P03", "55006", "25006"})
#: Classes of a value the database will not take: data exceptions (22: out of range, too long, not in the type's
#: syntax) and program limits (54: an index row or a statement too large).
_REFUSED_CLASSES = frozenset({"22", "54"})
#: SQLite's result codes (extended ones, such as SQLITE_IOERR_WRITE, start with these) for the same two cases.
_SQLITE_UNAVAILABLE = (
    "SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL", "SQLITE_NOMEM", "SQLITE_READONLY"
)  # fmt: skip
_SQLITE_REFUSED = ("SQLITE_TOOBIG",)


def _database_code(exc: Exception) -> str | None:
    """The driver's error code: PostgreSQL's SQLSTATE, or SQLite's result code name."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "sqlite_errorname", None)


async def _on_database(request: Request, exc: Exception) -> JSONResponse:
    """A driver error, answered by what its code says. A failure that may pass is a 503 to retry; a value the database
    will not store is the request's fault, a 422; anything else is a fault of the service, a 500, so that no client
    retries what will fail again. An error without a code is the driver losing the database: a 503."""
    code = _database_code(exc)
    # PostgreSQL's codes are five characters, SQLite's names start SQLITE_: one test never matches the other's.
    if code is None or code[:2] in _UNAVAILABLE_CLASSES or code in _UNAVAILABLE_STATES:
        return await _on_unavailable(request, exc)
    if code.startswith(_SQLITE_UNAVAILABLE):
        return await _on_unavailable(request, exc)
    if not (code[:2] in _REFUSED_CLASSES or code.startswith(_SQLITE_REFUSED)):
        return await _on_unexpected(request, exc)
    log.warning("database_refused_value", sqlstate=code)
    return problem_response(
        request,
        status=422,
        title="Unprocessable content",
        slug="unprocessable",
        detail=f"the database cannot take a value of this request ({code}): too long, out of range or not of its type",
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", error_type=type(exc).__name__)
    return problem_response(
        request, status=500, title="Internal server error", slug="internal", detail="an unexpected error occurred"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(StaleDataError, _on_stale)
    app.add_exception_handler(IntegrityError, _on_integrity)
    app.add_exception_handler(DBAPIError, _on_database)
    app.add_exception_handler(PoolTimeoutError, _on_unavailable)
    # The driver's own socket errors: a refused or reset connection, a name that does not resolve (the database's
    # host is gone), a connection attempt that timed out (TimeoutError is an OSError).
    app.add_exception_handler(OSError, _on_unavailable)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the problem bodies an operation can return."""
    descriptions = {
        400: "Bad request (e.g. a malformed cursor)",
        401: "Missing or invalid API key",
        403: "The API key lacks the required scope",
        404: "Not found",
        409: "Conflict with stored data",
        410: "Gone (erased or merged away)",
        412: "Stale `If-Match` version",
        413: "Request body too large",
        422: "Validation failed; `errors` lists the fields",
        428: "`If-Match` required",
        503: "A dependency (database) is unavailable",
    }
    return {
        s: {"description": descriptions.get(s, "Error"), "model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
        for s in statuses
    }
