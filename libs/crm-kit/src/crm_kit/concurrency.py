"""Optimistic concurrency: resources carry `version`, responses send `ETag`, `If-Match` guards writes."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from crm_kit.errors import PreconditionFailed

_ETAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


def _if_match(
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", max_length=64, description='The `ETag` (version) you last read, e.g. `"3"`'),
    ] = None,
) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    found = _ETAG.match(if_match)
    if found is None:
        raise PreconditionFailed('If-Match must be an ETag this service issued, e.g. "3"')
    return int(found.group(1))


IfMatch = Annotated[int | None, Depends(_if_match)]


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"the resource is at version {current}, not {expected}; fetch it again and retry",
            current_version=current,
        )
