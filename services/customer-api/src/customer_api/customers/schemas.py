"""Request and response bodies of customer profiles, with PII masking for keys without `customers:pii`."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints

from crm_kit.phones import mask_phone
from crm_kit.schemas import Day, Documented, Flag, Omittable, RequestModel, ResponseModel

CustomerType = Literal["individual", "group", "supplier"]
Gender = Literal["female", "male", "other", "unknown"]
CreditRating = Literal["AAA", "AA", "A", "BBB", "BB", "B", "CCC", "CC", "C", "D"]
Purpose = Literal["marketing", "profiling", "third_party"]
Tier = Literal["gold", "silver", "bronze", "regular"]
ConsentStatus = Literal["granted", "withdrawn"]

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _blank_is_none(value: str | None) -> str | None:
    return value or None


# A form's empty field ("" or spaces) means "not given": stored as null, never as a phone or email of its own that
# a second customer would then collide with.
Phone = Annotated[
    Annotated[str, StringConstraints(max_length=32)] | None,
    AfterValidator(_blank_is_none),
    Field(description="Any common format; mainland numbers as typed (13812345678). Stored as E.164; empty is none."),
]
Email = Annotated[
    Annotated[str, StringConstraints(max_length=254)] | None,
    AfterValidator(_blank_is_none),
    Field(description="Empty is none"),
]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=32)]
OwnerId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# A membership card number is one identifier whatever case it is typed in: stored upper case, so the unique index
# and every lookup compare it as one.
CardNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{4,32}$", to_upper=True)]
AttributeName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeValue = str | int | float | bool | None


def _short_values(value: dict[str, AttributeValue]) -> dict[str, AttributeValue]:
    for key, item in value.items():
        if isinstance(item, str) and len(item) > 1000:
            raise ValueError(f"attribute '{key}' is longer than 1000 characters")
    return value


Attributes = Annotated[dict[AttributeName, AttributeValue], Field(max_length=50), AfterValidator(_short_values)]


class Address(RequestModel):
    province: Annotated[str, StringConstraints(max_length=50)] | None = None
    city: Annotated[str, StringConstraints(max_length=50)] | None = None
    district: Annotated[str, StringConstraints(max_length=50)] | None = None
    street: Annotated[str, StringConstraints(max_length=200)] | None = None
    postal_code: Annotated[str, StringConstraints(max_length=12)] | None = None


class ConsentChange(RequestModel):
    status: ConsentStatus
    source: Annotated[str, StringConstraints(max_length=50)] | None = None


def _birthday_in_past(value: dt.date) -> dt.date:
    if not dt.date(1900, 1, 1) <= value <= dt.date.today():
        raise ValueError("birthday must be between 1900-01-01 and today")
    return value


Birthday = Annotated[Day, AfterValidator(_birthday_in_past), Documented(pattern=r"^(19|20)[0-9]{2}-")]


class CustomerCreate(RequestModel):
    type: CustomerType = "individual"
    name: Name
    phone: Phone = None
    email: Email = None
    gender: Gender | None = None
    birthday: Birthday | None = None
    address: Address | None = None
    card_number: CardNumber | None = Field(
        None, description="Membership card number (会员卡号), unique in any case; stored upper case"
    )
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    attributes: Attributes = Field(default_factory=dict)
    owner_id: OwnerId | None = Field(None, description="Account manager (客户经理) responsible for the customer")
    credit_rating: CreditRating | None = None
    consents: dict[Purpose, ConsentChange] = Field(default_factory=dict)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "individual",
                    "name": "王芳",
                    "phone": "13812345678",
                    "email": "wang.fang@example.com",
                    "gender": "female",
                    "birthday": "1988-05-20",
                    "address": {
                        "province": "上海市",
                        "city": "上海市",
                        "district": "静安区",
                        "street": "南京西路1266号",
                    },
                    "card_number": "VIP20260001",
                    "tags": ["母婴", "高频"],
                    "owner_id": "staff-017",
                    "consents": {"marketing": {"status": "granted", "source": "app"}},
                }
            ]
        }
    }


class CustomerUpdate(RequestModel):
    """Only the fields sent change. null clears a field a profile may lack (those that read as null); the others
    refuse it (422), and a list or map is cleared with [] or {}."""

    type: Omittable[CustomerType] = None
    name: Omittable[Name] = None
    phone: Phone = None
    email: Email = None
    gender: Gender | None = None
    birthday: Birthday | None = None
    address: Address | None = None
    card_number: CardNumber | None = None
    tags: Omittable[list[Tag]] = Field(None, max_length=50)
    attributes: Omittable[Attributes] = None
    owner_id: OwnerId | None = None
    credit_rating: CreditRating | None = None
    consents: Omittable[dict[Purpose, ConsentChange]] = None
    restricted: Omittable[Flag] = Field(None, description="PIPL processing restriction: no profiling, no marketing")
    tier: Omittable[Tier] = Field(None, description="Set a tier by hand; it is locked against the value refresh")
    tier_locked: Omittable[Flag] = Field(None, description="false hands the tier back to the value refresh")

    model_config = {
        "json_schema_extra": {"examples": [{"tags": ["母婴", "高频", "周末购物"], "owner_id": "staff-023"}]}
    }


class Consent(BaseModel):
    status: ConsentStatus
    updated_at: dt.datetime
    source: str | None = None


class AbsorbedIdentifier(ResponseModel):
    kind: Literal["phone", "email", "card_number"]
    value: str


class CustomerRead(ResponseModel):
    id: uuid.UUID
    type: CustomerType
    status: Literal["active", "merged", "erased"]
    name: str | None
    phone: str | None
    email: str | None
    gender: Gender | None
    birthday: dt.date | None
    address: dict[str, Any] | None
    card_number: str | None
    absorbed_identifiers: list[AbsorbedIdentifier] = Field(
        default_factory=list,
        description="Phones, emails and card numbers of duplicates merged into this profile while it had its own: "
        "they still find it, and no other profile may take them. Phones and emails masked as the profile's own",
    )
    tags: list[str]
    attributes: dict[str, Any]
    owner_id: str | None
    credit_rating: str | None
    tier: Tier
    tier_locked: bool
    segment: str | None
    consents: dict[str, Consent]
    restricted: bool
    pii_masked: bool = Field(
        False, description="True when phones, emails (absorbed ones too), address and birthday are masked"
    )
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "type": "individual",
                    "status": "active",
                    "name": "王芳",
                    "phone": "+86138****5678",
                    "email": "w***@example.com",
                    "gender": "female",
                    "birthday": None,
                    "address": {"province": "上海市", "city": "上海市"},
                    "card_number": "VIP20260001",
                    "absorbed_identifiers": [
                        {"kind": "phone", "value": "+86139****0021"},
                        {"kind": "card_number", "value": "VIP20190457"},
                    ],
                    "tags": ["母婴", "高频"],
                    "attributes": {"preferred_store": "SH-JA-001"},
                    "owner_id": "staff-017",
                    "credit_rating": "AA",
                    "tier": "gold",
                    "tier_locked": False,
                    "segment": "Champions",
                    "consents": {
                        "marketing": {"status": "granted", "updated_at": "2026-11-01T02:30:00Z", "source": "app"}
                    },
                    "restricted": False,
                    "pii_masked": True,
                    "version": 3,
                    "created_at": "2026-03-08T06:12:45Z",
                    "updated_at": "2026-11-01T02:30:00Z",
                }
            ]
        }
    }


class MergeRequest(RequestModel):
    target_id: uuid.UUID = Field(description="The profile that survives; this one becomes a tombstone")

    model_config = {"json_schema_extra": {"examples": [{"target_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42"}]}}


class MergedTombstone(BaseModel):
    id: uuid.UUID
    status: Literal["merged"] = "merged"
    merged_into: uuid.UUID


class ReassignRequest(RequestModel):
    from_owner_id: OwnerId
    to_owner_id: OwnerId

    model_config = {"json_schema_extra": {"examples": [{"from_owner_id": "staff-017", "to_owner_id": "staff-023"}]}}


class ReassignResult(BaseModel):
    moved: int = Field(description="Customers whose account manager changed")
    from_owner_id: str
    to_owner_id: str

    model_config = {
        "json_schema_extra": {"examples": [{"moved": 128, "from_owner_id": "staff-017", "to_owner_id": "staff-023"}]}
    }


class CustomerEventRead(ResponseModel):
    sequence: int
    customer_id: uuid.UUID
    type: str
    occurred_at: dt.datetime
    data: dict[str, Any]

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "sequence": 4211,
                    "customer_id": "0196f1c2-7a3e-7c1d-9a51-3b2f6a1c0e42",
                    "type": "tier_changed",
                    "occurred_at": "2026-11-02T16:00:03Z",
                    "data": {"from": "silver", "to": "gold", "source": "refresh"},
                }
            ]
        }
    }


class FeedPage(BaseModel):
    items: list[CustomerEventRead]
    next_cursor: str = Field(description="Pass as `after` to continue; never null on a feed")
    has_more: bool


def _mask_email(email: str | None) -> str | None:
    if not email:
        return email
    local, _, domain = email.partition("@")
    return local[:1] + "***@" + domain


def _mask_identifier(identifier: AbsorbedIdentifier) -> AbsorbedIdentifier:
    """An absorbed phone or email masked as the profile's own are; a card number, as the profile's, is not."""
    mask = {"phone": mask_phone, "email": _mask_email}.get(identifier.kind)
    return identifier if mask is None else identifier.model_copy(update={"value": mask(identifier.value)})


def customer_read(customer: Any, *, absorbed: Iterable[Any], show_pii: bool) -> CustomerRead:
    """The profile as a response, with the identifiers it absorbed in merges (rows of kind and value)."""
    identifiers = [AbsorbedIdentifier.model_validate(i) for i in absorbed]
    read = CustomerRead.model_validate(customer).model_copy(update={"absorbed_identifiers": identifiers})
    if show_pii:
        return read
    address = read.address
    return read.model_copy(
        update={
            "phone": mask_phone(read.phone),
            "email": _mask_email(read.email),
            "absorbed_identifiers": [_mask_identifier(i) for i in identifiers],
            "birthday": None,
            "address": {k: address[k] for k in ("province", "city") if k in address} if address else address,
            "pii_masked": True,
        }
    )
