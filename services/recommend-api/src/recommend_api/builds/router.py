"""`POST /v1/models` (a build job), `GET /v1/models/current` (what this replica serves), `GET /v1/models/{v}`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import NotFound, ServiceUnavailable, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.schemas import RequestModel, ResponseModel, model_response
from recommend_api.builds.current import CurrentModel
from recommend_api.builds.models import ModelVersion
from recommend_api.builds.service import request_build

router = APIRouter(prefix="/v1/models", tags=["models"])


class BuildRequest(RequestModel):
    evaluate: bool = Field(True, description="Also hold out each customer's last basket and store the evaluation")


class ModelVersionRead(ResponseModel):
    version: int
    status: str = Field(description="queued | building | ready | failed")
    reason: str = Field(description="requested | scheduled | erasure")
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    builder: str | None
    data_until: dt.datetime | None = Field(description="The latest purchase the model saw")
    build_seconds: float | None
    params: dict[str, Any] | None
    sizes: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(
        description="recall@10, NDCG@10 and their repeat/explore parts for the model and two baselines"
    )
    error: str | None


class CurrentModelRead(BaseModel):
    version: int
    built_at: dt.datetime | None
    data_until: dt.datetime | None
    build_seconds: float | None
    params: dict[str, Any] | None
    sizes: dict[str, Any] | None
    evaluation: dict[str, Any] | None


def _render(version: ModelVersion, status_code: int = 200) -> Response:
    headers = {"Location": f"/v1/models/{version.version}"}
    return model_response(ModelVersionRead.model_validate(version), status_code=status_code, headers=headers)


@router.post(
    "",
    status_code=202,
    response_model=ModelVersionRead,
    summary="Build a new model",
    description="Queues a build from the synced purchases and answers 202 at once; `Location` is the build to "
    "poll. While a build is queued or running, that build is returned instead of queueing another.",
    responses=problem_responses(401, 403, 422),
)
async def build_model(
    request: Request,
    session: SessionDep,
    idempotency: IdempotencyDep,
    _: Annotated[Principal, require("recommendations:admin")],
    data: BuildRequest | None = None,
) -> Response:
    async def produce() -> Response:
        version, _created = await request_build(
            session, reason="requested", evaluate=data.evaluate if data else True
        )  # fmt: skip
        return _render(version, status_code=202)

    response = await idempotency.execute(produce)
    request.app.state.build_wakeup.set()
    return response


@router.get(
    "/current",
    response_model=CurrentModelRead,
    summary="The model being served",
    description="Version, build time, sizes and evaluation of the model this replica serves. Every replica "
    "serves the newest built version within a few seconds of its build.",
    responses=problem_responses(401, 403, 503),
)
async def current_model(request: Request, _: Annotated[Principal, require("recommendations:read")]) -> Response:
    current: CurrentModel | None = request.app.state.current
    if current is None:
        raise ServiceUnavailable("no model has been built yet: POST /v1/models", headers={"Retry-After": "5"})
    return model_response(
        CurrentModelRead(
            version=current.version, built_at=current.built_at, data_until=current.data_until,
            build_seconds=current.build_seconds, params=current.params, sizes=current.sizes,
            evaluation=current.evaluation,
        )
    )  # fmt: skip


@router.get(
    "/{version}",
    response_model=ModelVersionRead,
    summary="A model version and its build",
    responses=problem_responses(401, 403, 404, 422),
)
async def get_version(
    version: int, session: SessionDep, _: Annotated[Principal, require("recommendations:read")]
) -> Response:
    row = await session.get(ModelVersion, version)
    if row is None:
        raise NotFound(f"model version {version} does not exist")
    return _render(row)
