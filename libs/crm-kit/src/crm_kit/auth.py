"""API keys with scopes: `Authorization: Bearer <key>` → a `Principal`, 401 without, 403 short of scope.

Keys are configured by their SHA-256 only. In development and test the documented dev key
(`CRM_DEV_API_KEY`) is accepted with every scope; production refuses to start with one set.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_kit.errors import Forbidden, Unauthorized
from crm_kit.settings import ServiceSettings, hash_api_key

ADMIN_SCOPE = "admin"
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str] = field(default_factory=frozenset)

    def has(self, scope: str) -> bool:
        return ADMIN_SCOPE in self.scopes or scope in self.scopes


class KeyRing:
    """Looks up a presented key by its hash."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._by_hash = {k.sha256: Principal(k.name, frozenset(k.scopes)) for k in settings.api_keys}
        dev = settings.dev_api_key if settings.environment != "production" else None
        self._dev_hash = hash_api_key(dev) if dev else None
        self._known: dict[str, Principal] = {}  # keys already presented → their principal, to skip the hash

    def authenticate(self, key: str) -> Principal | None:
        known = self._known.get(key)
        if known is not None:
            return known
        digest = hash_api_key(key)
        if self._dev_hash is not None and hmac.compare_digest(digest, self._dev_hash):
            principal: Principal | None = Principal("dev", frozenset({ADMIN_SCOPE}))
        else:
            principal = self._by_hash.get(digest)
        if principal is not None:
            self._known[key] = principal  # valid keys only, so this holds at most one entry per key
        return principal


_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")


def _authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("an API key is required: Authorization: Bearer <key>", headers=_CHALLENGE)
    keyring: KeyRing = request.app.state.keyring
    principal = keyring.authenticate(credentials.credentials)
    if principal is None:
        raise Unauthorized("the API key is not valid", headers=_CHALLENGE)
    return principal


async def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """Any valid key."""
    return _authenticate(request, credentials)


def require(scope: str) -> object:
    """A dependency that admits principals holding `scope` (or `admin`); documents the scope.

    One flat dependency over the bearer scheme: each level of nesting costs every request. The scope
    rides on the dependency as `required_scope`, where `build_app` finds it to document each operation.
    """

    async def _check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        principal = _authenticate(request, credentials)
        if not principal.has(scope):
            raise Forbidden(f"this operation needs the scope '{scope}'", required_scope=scope)
        return principal

    _check.__name__ = f"require_{scope.replace(':', '_')}"
    _check.required_scope = scope  # type: ignore[attr-defined]
    return Depends(_check)


def required_scope(dependency: object) -> str | None:
    """The scope a `require(...)` dependency function checks; None for any other callable."""
    scope = getattr(dependency, "required_scope", None)
    return scope if isinstance(scope, str) else None
