"""Business rules of customer profiles. Plain functions over a session; the request commits."""

from __future__ import annotations

import contextlib
import datetime as dt
import typing
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import cast
from uuid_utils.compat import uuid7

from crm_kit.concurrency import check_version
from crm_kit.db import utcnow
from crm_kit.errors import Conflict, Gone, NotFound, Unprocessable
from crm_kit.feeds import lock_feed
from crm_kit.idempotency import forget_responses
from crm_kit.phones import normalize_phone
from customer_api.analytics.models import CustomerValue
from customer_api.customers.models import Customer, CustomerEvent, CustomerIdentifier
from customer_api.customers.schemas import ConsentChange, CustomerCreate, CustomerUpdate, Purpose
from customer_api.interactions.models import Interaction
from customer_api.purchases.models import PURCHASE_FEED, Purchase

CUSTOMER_FEED = "customer-api:customer-feed"
# Bulk registration writes through the table rather than the ORM.
CUSTOMERS = typing.cast(Table, Customer.__table__)
_T = typing.TypeVar("_T")
PERSONAL_FIELDS = ("name", "phone", "email", "gender", "birthday", "address", "card_number")
UNIQUE_FIELDS = ("phone", "email", "card_number")


class CustomerMoved(Exception):
    """The id was merged into another profile; reads answer with where it went."""

    def __init__(self, customer_id: uuid.UUID, merged_into: uuid.UUID) -> None:
        super().__init__(f"customer {customer_id} was merged into {merged_into}")
        self.customer_id = customer_id
        self.merged_into = merged_into


def normalize_email(raw: str) -> str:
    try:
        return validate_email(raw, check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise Unprocessable(f"'email' is not a valid address: {exc}", field="email") from exc


async def record_event(
    session: AsyncSession, customer_id: uuid.UUID, type_: str, data: dict[str, Any] | None = None
) -> None:
    await lock_feed(session, CUSTOMER_FEED)
    session.add(CustomerEvent(customer_id=customer_id, type=type_, data=data or {}, occurred_at=utcnow()))
    await session.flush()


def _consents(changes: Mapping[Purpose, ConsentChange], current: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    merged = dict(current)
    for purpose, change in changes.items():
        if merged.get(purpose, {}).get("status") != change.status:
            merged[purpose] = {"status": change.status, "updated_at": now.isoformat(), "source": change.source}
    return merged


def _holding(field: str, value: str) -> ColumnElement[bool]:
    """SQL condition: the live customer holds `value` in `field` (phone, email or card number), as their own or
    absorbed in a merge. A union, not an OR of the two: each side is one index look-up, on either database."""
    own = select(Customer.id).where(getattr(Customer, field) == value, Customer.status == "active")
    absorbed = select(CustomerIdentifier.customer_id).where(
        CustomerIdentifier.kind == field, CustomerIdentifier.value == value
    )
    return Customer.id.in_(union_all(own, absorbed))


async def _find_duplicate(
    session: AsyncSession, values: dict[str, Any], exclude: uuid.UUID | None = None
) -> tuple[str, uuid.UUID] | None:
    for field in UNIQUE_FIELDS:
        value = values.get(field)
        if value is None:
            continue
        query = select(Customer.id).where(_holding(field, value), Customer.status == "active")
        if exclude is not None:
            query = query.where(Customer.id != exclude)
        found = (await session.execute(query)).scalar_one_or_none()
        if found is not None:
            return field, found
    return None


async def _ensure_unique(session: AsyncSession, values: dict[str, Any], exclude: uuid.UUID | None = None) -> None:
    duplicate = await _find_duplicate(session, values, exclude)
    if duplicate is not None:
        field, existing = duplicate
        raise Conflict(
            f"a customer with this {field} already exists",
            field=field,
            existing_customer_id=str(existing),
        )


async def _apply_unique(
    session: AsyncSession, apply: Callable[[], None], values: dict[str, Any], exclude: uuid.UUID | None = None
) -> None:
    """Apply a change and flush it in a savepoint: a lost race on a unique field becomes the same 409 as
    the check before it, and the request's transaction stays usable to find the winner.

    The customer feed's writer lock is taken first (the change's event takes it anyway): every writer of unique
    fields, an import too, takes it before writing them, so two of them wait in turn instead of deadlocking on
    each other's unique index entries."""
    await lock_feed(session, CUSTOMER_FEED)
    try:
        async with session.begin_nested():
            apply()
            await session.flush()
    except IntegrityError:
        await _ensure_unique(session, values, exclude)
        raise


def _normalized(data: CustomerCreate | CustomerUpdate, region: str) -> dict[str, Any]:
    # An update touches only what was sent; a create takes every field, defaults included.
    values = data.model_dump(exclude_unset=isinstance(data, CustomerUpdate), exclude={"consents"})
    if values.get("phone"):
        values["phone"] = normalize_phone(values["phone"], region)
    if values.get("email"):
        values["email"] = normalize_email(values["email"])
    if "address" in values and data.address is not None:
        values["address"] = data.address.model_dump(exclude_none=True)
    if "tags" in values and values["tags"] is not None:
        values["tags"] = list(dict.fromkeys(values["tags"]))
    return values


async def create_customer(session: AsyncSession, *, data: CustomerCreate, region: str) -> Customer:
    values = _normalized(data, region)
    await _ensure_unique(session, values)
    now = utcnow()
    customer = Customer(
        id=uuid7(),
        status="active",
        tier="regular",
        consents=_consents(data.consents, {}, now),
        restricted=False,
        created_at=now,
        updated_at=now,
        **{k: v for k, v in values.items()},
    )
    await _apply_unique(session, lambda: session.add(customer), values)
    created = _created_event(customer.type, customer.owner_id, customer.consents)
    await record_event(session, customer.id, "created", created)
    return customer


def _created_event(type_: str, owner_id: str | None, consents: Mapping[str, Any]) -> dict[str, Any]:
    """A new profile on the feed: its kind, owner and consent statuses (no personal data)."""
    return {"type": type_, "owner_id": owner_id, "consents": {p: c["status"] for p, c in consents.items()}}


@dataclass(frozen=True)
class Registration:
    """The outcome of one row of a bulk registration."""

    status: Literal["created", "existing", "invalid"]
    customer_id: uuid.UUID | None = None
    reason: str | None = None


async def live_ids(session: AsyncSession, field: str, values: Iterable[str]) -> dict[str, uuid.UUID]:
    """Each of `values` that a live customer holds in `field` (phone, email or card number), as their own or absorbed
    in a merge, with that customer's id. Asked 1,000 values at a time: each is a parameter (twice), and drivers take
    a bounded number (asyncpg 32,767)."""
    column = getattr(Customer, field)
    wanted = sorted(set(values))
    found: dict[str, uuid.UUID] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        own = select(column, Customer.id).where(column.in_(chunk), Customer.status == "active")
        absorbed = select(CustomerIdentifier.value, CustomerIdentifier.customer_id).where(
            CustomerIdentifier.kind == field, CustomerIdentifier.value.in_(chunk)
        )
        found.update({value: customer_id for value, customer_id in await session.execute(union_all(own, absorbed))})
    return found


async def register_customers(
    session: AsyncSession, *, rows: Sequence[CustomerCreate], region: str
) -> list[Registration]:
    """Register many customers at once. A row whose phone, email or card number is already on file (or
    earlier in the batch) is `existing` with that customer's id; nothing is stored twice. A row with none of the
    three is `invalid`: nothing would recognise it when the same rows are registered again."""
    results: list[Registration | None] = [None] * len(rows)
    prepared: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    for i, data in enumerate(rows):
        try:
            prepared.append((i, _normalized(data, region), _consents(data.consents, {}, utcnow())))
        except Unprocessable as exc:
            results[i] = Registration("invalid", reason=exc.detail)
    # The feed's writer lock before the look-up, not only before the events: two imports of the same rows at once
    # then take turns, and the second finds the first's customers instead of failing on the unique indexes.
    await lock_feed(session, CUSTOMER_FEED)
    taken: dict[tuple[str, str], uuid.UUID] = {}
    for field in UNIQUE_FIELDS:
        wanted = (values[field] for _, values, _ in prepared if values.get(field))
        found = await live_ids(session, field, wanted)
        taken.update({(field, value): customer_id for value, customer_id in found.items()})
    now = utcnow()
    new_rows: list[dict[str, Any]] = []
    for i, values, consents in prepared:
        keys = [(f, values[f]) for f in UNIQUE_FIELDS if values.get(f)]
        if not keys:
            results[i] = Registration(
                "invalid", reason="no phone, email or card number: a second import could not recognise it"
            )
            continue
        existing = next((taken[k] for k in keys if k in taken), None)
        if existing is not None:
            results[i] = Registration("existing", existing, "phone, email or card number already on file")
            continue
        customer_id = uuid7()
        taken.update({k: customer_id for k in keys})
        new_rows.append(
            {
                **_column_defaults(),
                **values,
                "id": customer_id,
                "consents": consents,
                "created_at": now,
                "updated_at": now,
            }
        )
        results[i] = Registration("created", customer_id)
    for start in range(0, len(new_rows), 1000):
        await session.execute(insert(CUSTOMERS), new_rows[start : start + 1000])
    if new_rows:
        events = [
            {"customer_id": r["id"], "type": "created", "occurred_at": now,
             "data": _created_event(r["type"], r.get("owner_id"), r["consents"])}
            for r in new_rows
        ]  # fmt: skip
        for start in range(0, len(events), 1000):
            await session.execute(insert(CustomerEvent), events[start : start + 1000])
    return [r for r in results if r is not None]


def _column_defaults() -> dict[str, Any]:
    return {
        "status": "active",
        "tier": "regular",
        "tier_locked": False,
        "restricted": False,
        "tags": [],
        "attributes": {},
        "version": 1,
        "segment": None,
        "address": None,
    }


# PostgreSQL's FOR KEY SHARE: taken by writes that add rows under a profile (orders, contact notes). It lets them
# run side by side and waits for a merge or an erasure (FOR UPDATE) of the profile, which waits for them in turn.
KEY_SHARE = {"read": True, "key_share": True}


async def get_customer(
    session: AsyncSession, customer_id: uuid.UUID, *, for_update: bool = False, key_share: bool = False
) -> Customer:
    """A live profile; a merged id raises `CustomerMoved`, an erased one is gone. `for_update` locks it for a change
    of the profile itself, `key_share` for rows added under it."""
    lock = True if for_update else KEY_SHARE if key_share else None
    customer = await session.get(Customer, customer_id, with_for_update=lock, populate_existing=lock is not None)
    return _live(customer_id, customer)


_PROFILE = select(CUSTOMERS).where(CUSTOMERS.c.id == bindparam("customer_id"))


async def read_profile(session: AsyncSession, customer_id: uuid.UUID) -> Row[Any]:
    """A live profile as a plain row: the hot read path, one cached statement and no ORM object."""
    row = (await session.execute(_PROFILE, {"customer_id": customer_id})).first()
    return _live(customer_id, row)


async def absorbed_identifiers(
    session: AsyncSession, customer_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[Row[uuid.UUID, str, str]]]:
    """The identifiers each of the profiles absorbed in merges (customer_id, kind, value), oldest first."""
    rows = await session.execute(
        select(CustomerIdentifier.customer_id, CustomerIdentifier.kind, CustomerIdentifier.value)
        .where(CustomerIdentifier.customer_id.in_(customer_ids))
        .order_by(CustomerIdentifier.created_at, CustomerIdentifier.kind, CustomerIdentifier.value)
    )
    found: dict[uuid.UUID, list[Row[uuid.UUID, str, str]]] = {customer_id: [] for customer_id in customer_ids}
    for row in rows:
        found[row.customer_id].append(row)
    return found


def _live(customer_id: uuid.UUID, customer: _T | None) -> _T:
    """The profile if it is live; a merged one raises `CustomerMoved`, an erased one is gone."""
    if customer is None:
        raise NotFound(f"no customer {customer_id}")
    status, merged_into = customer.status, customer.merged_into  # type: ignore[attr-defined]
    if status == "merged" and merged_into is not None:
        raise CustomerMoved(customer_id, merged_into)
    if status == "erased":
        raise Gone(f"customer {customer_id} was erased at the person's request")
    return customer


async def resolve_customer_id(session: AsyncSession, customer_id: uuid.UUID) -> uuid.UUID:
    """The live profile a (possibly merged) id stands for, for writes that follow merges. The profile stays locked
    against a merge or an erasure until the write commits: a row added under it in the meantime would be left on
    the tombstone, or keep the words of an erased person."""
    try:
        return (await get_customer(session, customer_id, key_share=True)).id
    except CustomerMoved as moved:
        return await resolve_customer_id(session, moved.merged_into)


async def update_customer(
    session: AsyncSession, *, customer_id: uuid.UUID, data: CustomerUpdate, expected_version: int | None, region: str
) -> Customer:
    customer = await get_customer(session, customer_id, for_update=True)
    check_version(customer.version, expected_version)
    values = _normalized(data, region)
    values.pop("restricted", None)
    await _ensure_unique(session, values, exclude=customer.id)
    now = utcnow()
    events: list[tuple[str, dict[str, Any]]] = []
    if data.consents:
        consents = _consents(data.consents, customer.consents, now)
        if consents != customer.consents:
            values["consents"] = consents
            events.append(("consent_changed", {p: c["status"] for p, c in consents.items()}))
    if data.restricted is not None and data.restricted != customer.restricted:
        values["restricted"] = data.restricted
        values["restricted_at"] = now if data.restricted else None
        events.append(("restricted" if data.restricted else "unrestricted", {}))
    if "tier" in values and "tier_locked" not in values:
        values["tier_locked"] = True
    changed = {field: value for field, value in values.items() if getattr(customer, field) != value}
    if not changed:
        return customer
    if "tier" in changed:
        events.append(("tier_changed", {"from": customer.tier, "to": changed["tier"], "source": "manual"}))

    def apply() -> None:
        for field, value in changed.items():
            setattr(customer, field, value)
        customer.updated_at = now

    await _apply_unique(session, apply, values, exclude=customer.id)
    if regained := [(f, changed[f]) for f in UNIQUE_FIELDS if changed.get(f)]:
        # An identifier the profile absorbed in a merge, set as its own again, is held once: as its own.
        identifier = tuple_(CustomerIdentifier.kind, CustomerIdentifier.value)
        await session.execute(
            delete(CustomerIdentifier).where(CustomerIdentifier.customer_id == customer.id, identifier.in_(regained))
        )
    if not profiling_allowed(customer.restricted, customer.consents):
        await _leave_profiling(session, customer)
    await record_event(session, customer.id, "updated", {"fields": sorted(set(changed) - {"restricted_at"})})
    for type_, event_data in events:
        await record_event(session, customer.id, type_, event_data)
    return customer


def profiling_allowed(restricted: bool, consents: Mapping[str, Any] | None) -> bool:
    return not restricted and (consents or {}).get("profiling", {}).get("status") != "withdrawn"


async def _leave_profiling(session: AsyncSession, customer: Customer) -> None:
    """A restriction or a withdrawn profiling consent takes effect now, not at the next refresh."""
    customer.segment = None
    await session.execute(delete(CustomerValue).where(CustomerValue.customer_id == customer.id))
    await session.flush()


def _clear_personal_data(customer: Customer) -> None:
    for field in PERSONAL_FIELDS:
        setattr(customer, field, None)
    customer.tags = []
    customer.attributes = {}
    customer.consents = {}


async def merge_customers(session: AsyncSession, *, duplicate_id: uuid.UUID, target_id: uuid.UUID) -> Customer:
    """Fold a duplicate profile into the target: history moves, the duplicate becomes a tombstone."""
    if duplicate_id == target_id:
        raise Unprocessable("a customer cannot be merged into itself", field="target_id")
    # Orders being written are waited for, and wait (writers take this lock before the customer's row, and so
    # does the merge): none lands on the tombstone after its orders moved.
    await lock_feed(session, PURCHASE_FEED)
    # Lock both rows in id order so two opposite merges cannot deadlock.
    first, second = sorted([duplicate_id, target_id])
    locked = {
        c.id: c
        for c in [
            await get_customer(session, first, for_update=True),
            await get_customer(session, second, for_update=True),
        ]
    }
    duplicate, target = locked[duplicate_id], locked[target_id]
    # The writer lock of unique fields (see `_apply_unique`), before the first of them is written.
    await lock_feed(session, CUSTOMER_FEED)
    carried = {f: getattr(duplicate, f) for f in PERSONAL_FIELDS if getattr(target, f) is None}
    carried = {f: v for f, v in carried.items() if v is not None}
    # Where the target has a phone, email or card number of its own, the duplicate's is absorbed: it still finds them.
    absorbed = [(f, getattr(duplicate, f)) for f in UNIQUE_FIELDS if f not in carried and getattr(duplicate, f)]
    tags = list(dict.fromkeys([*target.tags, *duplicate.tags]))
    attributes = {**duplicate.attributes, **target.attributes}
    consents = dict(duplicate.consents)
    for purpose, consent in target.consents.items():
        if purpose not in consents or consent["updated_at"] >= consents[purpose]["updated_at"]:
            consents[purpose] = consent

    statuses = {p: c["status"] for p, c in consents.items()}
    consent_changed = statuses != {p: c["status"] for p, c in target.consents.items()}
    newly_restricted = duplicate.restricted and not target.restricted

    now = utcnow()
    duplicate.status = "merged"
    duplicate.merged_into = target.id
    duplicate.updated_at = now
    _clear_personal_data(duplicate)
    await _leave_profiling(session, duplicate)  # also frees the duplicate's phone, email and card

    for field, value in carried.items():
        setattr(target, field, value)
    session.add_all(
        CustomerIdentifier(customer_id=target.id, kind=kind, value=value, created_at=now) for kind, value in absorbed
    )
    target.tags, target.attributes, target.consents = tags, attributes, consents
    if newly_restricted:
        target.restricted, target.restricted_at = True, duplicate.restricted_at
    target.updated_at = now
    await session.flush()
    if not profiling_allowed(target.restricted, target.consents):
        await _leave_profiling(session, target)

    await session.execute(update(Purchase).where(Purchase.customer_id == duplicate.id).values(customer_id=target.id))
    await session.execute(
        update(Interaction).where(Interaction.customer_id == duplicate.id).values(customer_id=target.id)
    )
    await session.execute(update(Customer).where(Customer.merged_into == duplicate.id).values(merged_into=target.id))
    inherited = await session.execute(
        update(CustomerIdentifier)
        .where(CustomerIdentifier.customer_id == duplicate.id)
        .values(customer_id=target.id)
        .returning(CustomerIdentifier.kind)
    )
    await forget_responses(session, f"/v1/customers/{duplicate.id}", erased=False)
    await record_event(session, duplicate.id, "merged", {"merged_into": str(target.id)})
    fields = {*carried, "tags", "attributes"}
    fields |= {"absorbed_identifiers"} if absorbed or inherited.first() else set()
    fields |= {"consents"} if consent_changed else set()
    fields |= {"restricted"} if newly_restricted else set()
    await record_event(session, target.id, "updated", {"fields": sorted(fields), "absorbed": str(duplicate.id)})
    # The survivor's own consent and restriction events, as a PATCH would write them: followers of the feed
    # (recommend-api's personal lists) learn that the merged profile may no longer be used.
    if consent_changed:
        await record_event(session, target.id, "consent_changed", statuses)
    if newly_restricted:
        await record_event(session, target.id, "restricted", {})
    return target


async def reassign_owner(session: AsyncSession, *, from_owner_id: str, to_owner_id: str) -> int:
    """Move every live customer of one account manager to another, in one transaction."""
    if from_owner_id == to_owner_id:
        raise Unprocessable("from_owner_id and to_owner_id are the same", field="to_owner_id")
    # One statement that returns the ids it moved: a list of ids sent back as parameters would stop at the driver's
    # 32,767 (a store's whole membership can belong to one manager).
    now = utcnow()
    moved = await session.execute(
        update(Customer)
        .where(Customer.owner_id == from_owner_id, Customer.status == "active")
        .values(owner_id=to_owner_id, updated_at=now, version=Customer.version + 1)
        .returning(Customer.id)
        .execution_options(synchronize_session=False)
    )
    ids = moved.scalars().all()
    if not ids:
        return 0
    await lock_feed(session, CUSTOMER_FEED)
    change = {"type": "updated", "occurred_at": now, "data": {"fields": ["owner_id"], "owner_id": to_owner_id}}
    await session.execute(insert(CustomerEvent), [{"customer_id": i, **change} for i in ids])
    return len(ids)


async def erase_customer(session: AsyncSession, *, customer_id: uuid.UUID) -> None:
    """PIPL erasure: personal data goes, anonymous purchases and aggregates stay."""
    customer = await get_customer(session, customer_id, for_update=True)
    now = utcnow()
    _clear_personal_data(customer)
    await _leave_profiling(session, customer)
    await session.execute(delete(CustomerIdentifier).where(CustomerIdentifier.customer_id == customer.id))
    customer.status = "erased"
    customer.erased_at = now
    customer.updated_at = now
    await session.flush()
    # Contact notes are free text about the person; the kind, time and score stay for statistics.
    await session.execute(
        update(Interaction).where(Interaction.customer_id == customer.id).values(subject=None, note=None)
    )
    await forget_responses(session, f"/v1/customers/{customer.id}", erased=True)
    await record_event(session, customer.id, "erased", {})


def _tag_filter(session: AsyncSession, tag: str) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return cast(Customer.tags, JSONB).contains([tag])
    each = func.json_each(Customer.tags).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == tag))


def consent_status(session: AsyncSession, purpose: str) -> Any:
    """SQL expression: the customer's consent status for `purpose` (NULL when never given)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Customer.consents, JSONB)[purpose]["status"].astext
    return func.json_extract(Customer.consents, f"$.{purpose}.status")


def search_query(
    session: AsyncSession,
    *,
    q: str | None,
    phone: str | None,
    type_: str | None,
    tier: str | None,
    segment: str | None,
    tag: str | None,
    owner_id: str | None,
    consent: str | None,
    region: str,
) -> Select[Customer]:
    query = select(Customer).where(Customer.status == "active")
    if q:
        # Case-insensitive on both databases (SQLite's LIKE already is for ASCII, PostgreSQL's is not): a name in
        # Latin letters (Wang Fang, Carrefour) is found however it is typed.
        conditions = [Customer.name.icontains(q, autoescape=True), _holding("card_number", q.upper())]
        if "@" in q:
            # As stored: an address in any spelling that registers as this one (case, an IDNA domain) finds it.
            with contextlib.suppress(Unprocessable):
                conditions.append(_holding("email", normalize_email(q.strip())))
        with contextlib.suppress(Unprocessable):
            conditions.append(_holding("phone", normalize_phone(q, region)))
        query = query.where(or_(*conditions))
    if phone is not None:
        try:
            query = query.where(_holding("phone", normalize_phone(phone, region)))
        except Unprocessable as exc:
            raise Unprocessable(exc.detail or "not a phone number", field="query.phone") from None
    for column, value in (
        (Customer.type, type_),
        (Customer.tier, tier),
        (Customer.segment, segment),
        (Customer.owner_id, owner_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if tag is not None:
        query = query.where(_tag_filter(session, tag))
    if consent is not None:
        # A marketing or profiling list honours both the consent and any processing restriction.
        query = query.where(Customer.restricted.is_(False))
        query = query.where(consent_status(session, consent) == "granted")
    return query


async def search_customers(
    session: AsyncSession, query: Select[Customer], *, after: uuid.UUID | None, limit: int
) -> Sequence[Customer]:
    if after is not None:
        query = query.where(Customer.id < after)
    return (await session.execute(query.order_by(Customer.id.desc()).limit(limit + 1))).scalars().all()


async def customer_events(session: AsyncSession, *, after: int, limit: int) -> Sequence[CustomerEvent]:
    query = select(CustomerEvent).where(CustomerEvent.sequence > after).order_by(CustomerEvent.sequence)
    return (await session.execute(query.limit(limit + 1))).scalars().all()
