"""`POST /v1/models` (a build job), `GET /v1/models/current` (what this replica serves), `GET /v1/models/{v}`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from crm_kit.auth import Principal, require
from crm_kit.db import SessionDep
from crm_kit.errors import NotFound, ServiceUnavailable, problem_responses
from crm_kit.idempotency import IdempotencyDep
from crm_kit.schemas import Flag, RequestModel, ResponseModel, model_response
from recommend_api.builds.current import CurrentModel
from recommend_api.builds.models import ModelVersion
from recommend_api.builds.service import request_build

router = APIRouter(prefix="/v1/models", tags=["models"])


class BuildRequest(RequestModel):
    evaluate: Flag = Field(True, description="Also hold out each customer's last basket and store the evaluation")


class ModelVersionRead(ResponseModel):
    version: int
    status: str = Field(description="queued | building | ready | failed")
    reason: str = Field(description="requested | scheduled | erasure | merge")
    requested_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    builder: str | None
    data_until: dt.datetime | None = Field(description="The latest purchase the model saw")
    build_seconds: float | None
    params: dict[str, Any] | None
    sizes: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(
        description="recall@10, NDCG@10 and their repeat/explore parts for the model (its default lists and its "
        "lists of items new to the customer) and two baselines"
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


PARAMS_EXAMPLE = {
    "basket_decay": 0.9, "history_items": 10, "ranker_levels": 6, "ranker_rows": 4000000, "ranker_trees": 100,
    "ranker_learning_rate": 0.06, "ranker_leaves": 31, "explore_every": 0, "candidates": 50, "related_per_item": 30,
    "min_pair_count": 2, "popularity_half_life_days": 30.0, "rule_min_support": 0.001, "rule_min_confidence": 0.05,
    "rule_max_len": 3, "max_rules": 100000,
}  # fmt: skip
SIZES_EXAMPLE = {
    "customers": 23570, "items": 8912, "categories": 21, "baskets": 412880, "lines": 3981204, "pairs": 1320455,
    "rules": 48210, "candidates": 1178500,
}  # fmt: skip
EVALUATION_EXAMPLE = {
    name: {"recall": recall, "ndcg": ndcg, "recall_repeat": repeat, "recall_explore": explore, "users": 23570,
           "hit_rate": hit, "repeat_ratio": 0.61, "users_repeat": 19840, "users_explore": 21310, "k": 10}
    for name, recall, ndcg, repeat, explore, hit in [
        ("model", 0.384, 0.402, 0.552, 0.031, 0.871),
        ("model_new_items", 0.014, 0.016, 0.0, 0.045, 0.117),
        ("popularity", 0.121, 0.133, 0.118, 0.042, 0.538),
        ("top_frequency", 0.356, 0.381, 0.533, 0.0, 0.852),
    ]
}  # fmt: skip
MODEL_VERSION_EXAMPLE = {
    "version": 8,
    "status": "ready",
    "reason": "requested",
    "requested_at": "2026-11-23T01:00:00Z",
    "started_at": "2026-11-23T01:00:02Z",
    "finished_at": "2026-11-23T01:01:15Z",
    "builder": "recommend-api-7f9c:4121",
    "data_until": "2026-11-23T00:58:41Z",
    "build_seconds": 72.48,
    "params": PARAMS_EXAMPLE,
    "sizes": SIZES_EXAMPLE,
    "evaluation": EVALUATION_EXAMPLE,
    "error": None,
}
QUEUED_EXAMPLE = {
    **MODEL_VERSION_EXAMPLE,
    "version": 9,
    "status": "queued",
    "requested_at": "2026-11-23T08:00:00Z",
    **dict.fromkeys(
        ["started_at", "finished_at", "builder", "data_until", "build_seconds", "params", "sizes", "evaluation"]
    ),
}
CURRENT_EXAMPLE = {
    "version": 8,
    "built_at": "2026-11-23T01:01:15Z",
    "data_until": "2026-11-23T00:58:41Z",
    "build_seconds": 72.48,
    "params": PARAMS_EXAMPLE,
    "sizes": SIZES_EXAMPLE,
    "evaluation": EVALUATION_EXAMPLE,
}


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
    responses={
        202: {"content": {"application/json": {"example": QUEUED_EXAMPLE}}},
        **problem_responses(401, 403, 422),
    },
    openapi_extra={"requestBody": {"content": {"application/json": {"example": {"evaluate": True}}}}},
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
    responses={
        200: {"content": {"application/json": {"example": CURRENT_EXAMPLE}}},
        **problem_responses(401, 403, 503),
    },
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
    description="Poll a build `POST /v1/models` queued: `status` goes queued → building → ready (or failed, with "
    "`error`). A ready version carries its parameters, sizes and evaluation against two baselines.",
    responses={
        200: {"content": {"application/json": {"example": MODEL_VERSION_EXAMPLE}}},
        **problem_responses(401, 403, 404, 422),
    },
)
async def get_version(
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="The model version")],
    session: SessionDep,
    _: Annotated[Principal, require("recommendations:read")],
) -> Response:
    row = await session.get(ModelVersion, version)
    if row is None:
        raise NotFound(f"model version {version} does not exist")
    return _render(row)
