"""Optimistic concurrency: resources carry `version`, responses send `ETag`, `If-Match` guards writes."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Depends, Header

from crm_kit.errors import PreconditionFailed

#: What If-Match may hold: an ETag this service issued (its digits are the version), or `*`.
_IF_MATCH = re.compile(r'^[ \t]*(?:(?:W/)?"([0-9]{1,18})"|\*)[ \t]*$')


def etag(version: int) -> str:
    return f'"{version}"'


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=64,
            description='The `ETag` (version) you last read, e.g. `"3"`; anything else is a 412',
            json_schema_extra={"pattern": _IF_MATCH.pattern},
        ),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    found = _IF_MATCH.match(if_match)
    if found is None:
        raise PreconditionFailed('If-Match must be an ETag this service issued, e.g. "3"')
    return None if found.group(1) is None else int(found.group(1))


IfMatch = Annotated[int | None, Depends(_if_match)]


def check_version(current: int, expected: int | None) -> None:
    if expected is not None and expected != current:
        raise PreconditionFailed(
            f"the resource is at version {current}, not {expected}; fetch it again and retry",
            current_version=current,
        )
