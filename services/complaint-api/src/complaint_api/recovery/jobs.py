"""Background recovery work, one pass per sweep: tailored offers filled in from recommend-api (or withheld from a
customer who takes no marketing, as customer-api says now), due actions announced, due follow-ups evaluated against
customer-api's purchases, contact-history entries delivered.

Peers are asked outside any transaction (a slow peer must not hold the database), and each answer is
applied in a short transaction to the row only if it still needs it, claimed with SKIP LOCKED on
PostgreSQL: replicas share the work without applying any of it twice. A peer that is down ends that part
of the pass, and the rows wait for the next one. A plan whose evaluation fails otherwise is logged, keeps
the error, and goes to the back of the queue: the other plans are still evaluated, in this pass and the next.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from complaint_api.clients.customer_api import CustomerErased, fetch_customer, purchases_between, record_contact
from complaint_api.feeds.service import erase_person
from complaint_api.recovery import service
from complaint_api.recovery.models import ContactRecord, FollowUp, RecoveryAction, RecoveryPlan
from crm_kit.db import Database, skip_locked, utcnow
from crm_kit.errors import failure_text
from crm_kit.http import PeerClient, PeerUnavailable

log = logging.getLogger(__name__)
SWEEP_ACTOR = "recovery-sweep"
BATCH = 20
MAX_BACKOFF = dt.timedelta(minutes=30)


async def fetch_offer(peer: PeerClient, plan: RecoveryPlan, limit: int) -> list[dict[str, Any]]:
    """recommend-api's win-back offer for the customer, never the complained SKU or its category."""
    params: list[tuple[str, str | int]] = [("limit", limit)]
    params += [("avoid_sku", sku) for sku in plan.avoid_skus]
    params += [("avoid_category", category) for category in plan.avoid_categories]
    response = await peer.get(f"/v1/customers/{plan.customer_id}/recovery-offers", params=params)
    if response.status_code != 200:
        raise PeerUnavailable("recommend-api", f"recovery offers answered {response.status_code}")
    keep = ("sku", "name", "category", "score", "reason")
    return [{k: item.get(k) for k in keep} for item in response.json()["items"]]


async def marketing_refused_now(peer: PeerClient, customer_id: uuid.UUID) -> str | None:
    """Why the customer takes no marketing, as customer-api says now (for a merged id: the survivor). None too for a
    customer it does not know: recommend-api has nothing personal to offer them. Raises CustomerErased, and
    PeerUnavailable when customer-api is down or failing."""
    customer = await fetch_customer(peer, customer_id)
    return service.marketing_refused(customer.as_json()) if customer else None


async def fill_offers(database: Database, customer_api: PeerClient, recommend_api: PeerClient, *, limit: int) -> int:
    """Fill in the offers still missing. customer-api is asked first: a customer who takes no marketing has the offer
    withheld, and recommend-api is never asked for it; one erased meanwhile is erased here too (as the snapshot pass
    does), their offer withheld. Either peer down leaves the offer pending for the next pass. No transaction is open
    while a peer is asked."""
    async with database.session_scope(read_only=True) as session:
        query = (
            select(RecoveryAction.id, RecoveryPlan)
            .join(RecoveryPlan, RecoveryPlan.id == RecoveryAction.plan_id)
            .where(
                RecoveryAction.type == "tailored_offer",
                RecoveryAction.offer_status == "pending",
                RecoveryAction.status != "cancelled",  # its plan was cancelled with the complaint
            )
            .order_by(RecoveryAction.plan_id)
            .limit(BATCH)
        )
        missing = (await session.execute(query)).all()
    filled = 0
    for action_id, plan in missing:
        offer: list[dict[str, Any]] | None = None
        refused: str | None = None
        error: str | None = None
        erased = False
        try:
            refused = await marketing_refused_now(customer_api, plan.customer_id)
            if refused is None:
                offer = await fetch_offer(recommend_api, plan, limit)
        except CustomerErased:
            refused, erased = "customer erased", True
        except PeerUnavailable as exc:
            error = str(exc)[:500]
        async with database.session_scope() as session:
            query = select(RecoveryAction).where(
                RecoveryAction.id == action_id,
                RecoveryAction.offer_status == "pending",
                RecoveryAction.status != "cancelled",
            )
            action = (await session.execute(skip_locked(session, query))).scalar_one_or_none()
            if action is None:
                continue
            if erased:
                await erase_person(session, plan.customer_id)  # cancels their plans under way
            if refused is not None:
                service.withhold_offer(action, refused)
            elif offer is None:
                action.offer_attempts += 1
                action.offer_error = error
                break
            else:
                action.offer, action.offer_status, action.offer_error = offer, "filled", None
                filled += 1
    return filled


async def announce_due_actions(database: Database, now: dt.datetime) -> int:
    """A `recovery_action_due` event (and webhook) for each pending action whose due time has come."""
    async with database.session_scope() as session:
        query = select(RecoveryAction).where(
            RecoveryAction.status == "pending", RecoveryAction.due_notified.is_(False), RecoveryAction.due_at <= now
        )
        due = (await session.execute(skip_locked(session, query.limit(BATCH * 5)))).scalars().all()
        for action in due:
            plan = await session.get(RecoveryPlan, action.plan_id)
            assert plan is not None
            action.due_notified = True
            session.add(
                service.recovery_event(
                    plan, "recovery_action_due", SWEEP_ACTOR,
                    {"action_id": str(action.id), "type": action.type, "due_at": action.due_at.isoformat()
                     if action.due_at else None, "owner_id": action.owner_id},
                )
            )  # fmt: skip
        return len(due)


async def orders_after_closing(peer: PeerClient, plan: RecoveryPlan, now: dt.datetime) -> list[dict[str, Any]]:
    """The customer's orders from closing to 90 days after it (or now); raises PeerUnavailable."""
    closed = plan.complaint_closed_at
    if closed is None:
        return []
    until = min(now, closed + dt.timedelta(days=service.LOST_DAYS)) + dt.timedelta(seconds=1)
    found = await purchases_between(peer, plan.customer_id, closed, until)
    return [o for o in found or [] if dt.datetime.fromisoformat(o["purchased_at"]) > closed]


async def apply_evaluation(
    session: AsyncSession, plan: RecoveryPlan, orders: list[dict[str, Any]], *, actor: str, now: dt.datetime
) -> bool:
    """Decide the outcome from the orders and the plan's own facts (the caller holds the plan locked)."""
    follow_up_score, coupon_redeemed = service.local_facts(plan)
    facts = service.Facts(
        as_of=now, orders=orders, repeat_complaint=await service.repeat_complaint(session, plan),
        follow_up_satisfaction=follow_up_score, coupon_redeemed=coupon_redeemed,
    )  # fmt: skip
    outcome, evidence = service.decide(plan, facts)
    changed = service.apply_outcome(session, plan, outcome, evidence, actor)
    service.close_follow_ups(plan, now)
    await session.flush()
    return changed


async def follow_up(database: Database, peer: PeerClient, now: dt.datetime) -> int:
    """Evaluate the plans with a follow-up due; stops (and retries next pass) when customer-api is down.
    customer-api is asked outside any transaction; the result is applied if the plan is still due then.

    The plans touched longest ago go first. One whose evaluation fails for another reason is logged, keeps the
    error and is touched (so the next passes take the others first), and the pass goes on with the rest."""
    due = select(FollowUp.plan_id).where(FollowUp.status == "pending", FollowUp.due_at <= now)
    async with database.session_scope(read_only=True) as session:
        query = (
            select(RecoveryPlan)
            .where(RecoveryPlan.id.in_(due), RecoveryPlan.status != "cancelled")
            .order_by(RecoveryPlan.updated_at, RecoveryPlan.id)
            .limit(BATCH)
        )
        plans = (await session.execute(query)).scalars().all()
    done = 0
    for seen in plans:
        try:
            orders = await orders_after_closing(peer, seen, now)
        except PeerUnavailable as exc:
            async with database.session_scope() as session:
                plan = await session.get(RecoveryPlan, seen.id)
                if plan is not None:
                    plan.evaluation_error = str(exc)[:500]
            break
        try:
            async with database.session_scope() as session:
                query = select(RecoveryPlan).where(
                    RecoveryPlan.id == seen.id, RecoveryPlan.id.in_(due), RecoveryPlan.status != "cancelled"
                )
                plan = (await session.execute(skip_locked(session, query))).scalar_one_or_none()
                if plan is None or plan.complaint_closed_at != seen.complaint_closed_at:
                    continue  # evaluated by another replica meanwhile, or reopened: the next pass sees it
                await apply_evaluation(session, plan, orders, actor=SWEEP_ACTOR, now=now)
        except Exception as exc:  # one plan's failure must not stall every other plan
            log.exception("recovery_follow_up_failed", extra={"plan_id": str(seen.id)})
            await _evaluation_failed(database, seen, exc)
            continue
        done += 1
    return done


async def _evaluation_failed(database: Database, seen: RecoveryPlan, exc: Exception) -> None:
    """Keep the error on the plan and touch it, so the next passes take the plans touched longer ago first."""
    try:
        async with database.session_scope() as session:
            plan = await session.get(RecoveryPlan, seen.id)
            if plan is not None:
                plan.evaluation_error = failure_text(exc, 500)
                plan.updated_at = utcnow()
    except Exception:
        log.exception("recovery_follow_up_failure_not_recorded", extra={"plan_id": str(seen.id)})


def _backoff(attempts: int) -> dt.timedelta:
    return min(MAX_BACKOFF, dt.timedelta(seconds=2 ** min(attempts, 12)))


async def send_contacts(database: Database, peer: PeerClient, now: dt.datetime) -> int:
    """Deliver owed contact-history entries; customer-api keeps one per (source, external_id), so an entry
    sent by two replicas at once is still stored once."""
    async with database.session_scope(read_only=True) as session:
        query = (
            select(ContactRecord)
            .where(ContactRecord.status == "pending", ContactRecord.next_attempt_at <= now)
            .order_by(ContactRecord.created_at)
            .limit(BATCH * 5)
        )
        records = (await session.execute(query)).scalars().all()
    sent = 0
    for seen in records:
        try:
            stored: bool | None = await record_contact(peer, seen.customer_id, seen.body)
            error = None
        except PeerUnavailable as exc:
            stored, error = None, str(exc)[:500]
        async with database.session_scope() as session:
            query = select(ContactRecord).where(ContactRecord.id == seen.id, ContactRecord.status == "pending")
            record = (await session.execute(skip_locked(session, query))).scalar_one_or_none()
            if record is None:
                continue
            if stored is None:
                record.attempts += 1
                record.last_error = error
                record.next_attempt_at = now + _backoff(record.attempts)
                break
            record.status = "sent" if stored else "dropped"
            sent += 1
    return sent


async def recovery_pass(
    database: Database, customer_api: PeerClient, recommend_api: PeerClient, *, offer_items: int
) -> bool:
    """Every recovery step in turn, each whatever the one before did; False if one failed (it is logged)."""
    now = utcnow()
    succeeded = True
    for name, step in (
        ("offers", fill_offers(database, customer_api, recommend_api, limit=offer_items)),
        ("due_actions", announce_due_actions(database, now)),
        ("follow_ups", follow_up(database, customer_api, now)),
        ("contacts", send_contacts(database, customer_api, now)),
    ):
        try:
            await step
        except Exception:
            log.exception("recovery_pass_failed", extra={"step": name})
            succeeded = False
    return succeeded
