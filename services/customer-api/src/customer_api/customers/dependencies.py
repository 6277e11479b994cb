"""Dependencies shared by the customer routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Request

from crm_kit.auth import Principal, require

CustomersReader = Annotated[Principal, require("customers:read")]
CustomersWriter = Annotated[Principal, require("customers:write")]


def region(request: Request) -> str:
    return request.app.state.settings.default_region
