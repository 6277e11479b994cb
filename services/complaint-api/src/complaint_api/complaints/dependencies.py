"""Dependencies of the complaint routes: who is acting, and the settings they act under."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from complaint_api.config import Settings
from complaint_api.sla.calendar import BusinessCalendar
from crm_kit.auth import Principal, require

ComplaintsWriter = Annotated[Principal, require("complaints:write")]
ComplaintsReader = Annotated[Principal, require("complaints:read")]


async def actor(
    principal: ComplaintsWriter,
    agent: Annotated[
        str | None,
        Header(alias="X-Actor", max_length=64, pattern=r"^[A-Za-z0-9._:-]+$", description="The agent acting"),
    ] = None,
) -> str:
    """The calling system's key name, and the agent's id when the caller names one: `desk:cs-008`."""
    return f"{principal.name}:{agent}" if agent else principal.name


Actor = Annotated[str, Depends(actor)]


async def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


SettingsDep = Annotated[Settings, Depends(settings)]


async def calendar(request: Request) -> BusinessCalendar:
    value: BusinessCalendar = request.app.state.calendar
    return value


CalendarDep = Annotated[BusinessCalendar, Depends(calendar)]


@dataclass(frozen=True)
class Rules:
    """What a step of the process acts under: the settings and the business calendar of the SLA clocks."""

    settings: Settings
    calendar: BusinessCalendar


async def rules(request: Request) -> Rules:
    return Rules(request.app.state.settings, request.app.state.calendar)


RulesDep = Annotated[Rules, Depends(rules)]
