"""Service recovery rules: when a plan is made, what it holds, and how its outcome follows from facts.

A plan is made by hand (`POST /v1/complaints/{id}/recovery`) or by the configured rules when a complaint
closes or is rated: satisfaction at most 3, a gold or silver customer, high severity, or the customer's
second complaint within 90 days (a double deviation: a second failure after the first, which the
research finds much worse than one). Follow-ups fall 3, 30 and 90 days after the complaint closed.

A tailored offer is personalised marketing: a customer who takes none (PIPL restriction, marketing consent
withdrawn) gets no offer. A plan leaves it out, or refuses it when asked for, on what the complaint's snapshot
says; the offer job asks customer-api again before the offer is made, and withholds it then.

The outcome is computed from facts only, as of the moment of evaluation:
- `recovered`: the customer bought again after the complaint closed, with no later complaint and no
  follow-up score of 2 or less;
- `lost`: 90 days after closing without a purchase;
- `at_risk`: a later complaint, a follow-up score of 2 or less, or 30 days without a purchase;
- `pending`: too early to tell (or the complaint is not closed yet).
The facts are stored with the outcome as its evidence. When customer-api cannot be asked, nothing is
decided: the evaluation is retried and the stored outcome stays as it was.

A reopened complaint's plan goes back to `open`: its follow-ups are asked afresh from the next close and
the outcome is decided again (what the earlier follow-ups found stays in the evidence). A cancelled
complaint's plan is `cancelled`: its pending actions and follow-ups stop, and nothing more is written to it.

Every change of an outcome, and every follow-up score recorded or corrected, is an entry in the customer's
contact history in customer-api, keyed by the plan's version it was made at: an outcome reached a second
time (recovered, at risk after a later complaint, recovered again once that complaint is cancelled) is a
new entry, while a delivery sent twice is still stored once (customer-api keys entries by source and key).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from complaint_api.complaints.models import Complaint, ComplaintEvent
from complaint_api.config import Settings
from complaint_api.recovery.models import ContactRecord, FollowUp, RecoveryAction, RecoveryPlan
from crm_kit.concurrency import check_version
from crm_kit.db import utcnow
from crm_kit.errors import Conflict, NotFound, Unprocessable
from crm_kit.schemas import CLOCK_SKEW

ACTION_TYPES = ("apology", "explanation", "callback", "visit", "refund", "coupon", "gift", "points", "tailored_offer")
# The contact-history kind each action is written to customer-api as.
CONTACT_KINDS = {"callback": "callback", "visit": "visit", "apology": "call", "explanation": "call"}
ACTION_NAMES = {
    "apology": "致歉", "explanation": "解释说明", "callback": "回访电话", "visit": "上门拜访", "refund": "退款",
    "coupon": "优惠券", "gift": "赠品", "points": "积分补偿", "tailored_offer": "专属推荐",
}  # fmt: skip
OUTCOME_NAMES = {"recovered": "已挽回", "at_risk": "有流失风险", "lost": "已流失", "pending": "待观察"}
LOW_FOLLOW_UP_SCORE = 2
AT_RISK_DAYS = 30
LOST_DAYS = 90
CANCELLED = "cancelled"


@dataclass(frozen=True)
class ActionSpec:
    type: str
    value: Decimal | None = None
    currency: str = "CNY"
    owner_id: str | None = None
    due_at: dt.datetime | None = None
    note: str | None = None
    coupon_code: str | None = None
    coupon_expires_at: dt.datetime | None = None


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def recovery_event(plan: RecoveryPlan, type_: str, actor: str, data: dict[str, Any]) -> ComplaintEvent:
    """A recovery event on the complaint's timeline, which is also the webhook outbox."""
    return ComplaintEvent(
        complaint_id=plan.complaint_id, type=type_, actor=actor, occurred_at=utcnow(), visibility="internal",
        data={"plan_id": str(plan.id), **data},
    )  # fmt: skip


def queue_contact(
    session: AsyncSession, customer_id: uuid.UUID, external_id: str, *, kind: str, subject: str,
    occurred_at: dt.datetime, score: int | None = None, channel: str | None = None,
) -> None:  # fmt: skip
    """Owe customer-api an entry in the customer's contact history; the sweep sends it (and retries)."""
    body: dict[str, Any] = {
        "kind": kind, "subject": subject[:200], "occurred_at": occurred_at.isoformat(), "source": "complaint-api",
        "external_id": external_id, "direction": "outbound" if kind != "complaint" else "inbound",
    }  # fmt: skip
    if score is not None:
        body["score"] = score
    if channel is not None:
        body["channel"] = channel
    session.add(ContactRecord(id=uuid7(), customer_id=customer_id, external_id=external_id, body=body))


async def prior_complaints(session: AsyncSession, complaint: Complaint, days: int) -> int:
    """The customer's other complaints taken in the `days` before this one (cancelled ones left out)."""
    query = select(func.count()).where(
        Complaint.customer_id == complaint.customer_id,
        Complaint.id != complaint.id,
        Complaint.status != "cancelled",
        Complaint.created_at < complaint.created_at,
        Complaint.created_at >= complaint.created_at - dt.timedelta(days=days),
    )
    return int((await session.execute(query)).scalar_one())


def rules_fired(complaint: Complaint, settings: Settings, prior: int) -> list[str]:
    fired = []
    score = (complaint.satisfaction or {}).get("score")
    if score is not None and score <= settings.recovery_satisfaction_at_most:
        fired.append("low_satisfaction")
    if _tier(complaint) in settings.recovery_tiers:
        fired.append("tier")
    if complaint.severity in settings.recovery_severities:
        fired.append("severity")
    if prior > 0:
        fired.append("repeat_complaint")
    return fired


def marketing_refused(snapshot: Mapping[str, Any]) -> str | None:
    """Why the customer takes no marketing, and so no tailored offer: a PIPL processing restriction or a withdrawn
    marketing consent. None when neither is known (a snapshot not taken yet refuses nothing). Compensation (an
    apology, a call, a coupon) is service, not marketing: it is never refused here."""
    if snapshot.get("restricted"):
        return "no marketing: processing restricted"
    if snapshot.get("marketing_consent") == "withdrawn":
        return "marketing consent withdrawn"
    return None


def default_actions(complaint: Complaint, settings: Settings, now: dt.datetime) -> list[ActionSpec]:
    """Psychological first (an apology, a call for valued customers or serious failures), then a material
    gesture fitted to the customer: the tailored offer, unless the customer takes no marketing."""
    due = now + dt.timedelta(hours=settings.recovery_action_hours)
    actions = [ActionSpec("apology", due_at=due)]
    tier = _tier(complaint)
    if tier in settings.recovery_tiers or complaint.severity in settings.recovery_severities:
        actions.append(ActionSpec("callback", due_at=due))
    if marketing_refused(complaint.customer_snapshot or {}) is None:
        actions.append(ActionSpec("tailored_offer", due_at=due + dt.timedelta(hours=settings.recovery_action_hours)))
    return actions


def withhold_offer(action: RecoveryAction, reason: str) -> None:
    """No offer for a customer who takes no marketing: no items, the reason shown, and a pending action stops (it is
    neither announced as due nor done). Final: should the customer allow marketing again later, no offer is made for
    this complaint (the job does not keep asking about refusals, and an offer long after is no recovery of it)."""
    action.offer, action.offer_status, action.offer_withheld_reason, action.offer_error = None, "withheld", reason, None
    if action.status == "pending":
        action.status = CANCELLED


def _tier(complaint: Complaint) -> str | None:
    return (complaint.customer_snapshot or {}).get("tier")


def _tenure_days(complaint: Complaint) -> int | None:
    since = (complaint.customer_snapshot or {}).get("since")
    if not since:
        return None
    return max(0, (complaint.created_at - dt.datetime.fromisoformat(since)).days)


async def get_plan(session: AsyncSession, plan_id: uuid.UUID, *, for_update: bool = False) -> RecoveryPlan:
    query = select(RecoveryPlan).where(RecoveryPlan.id == plan_id)
    if for_update:
        query = query.with_for_update()
    plan = (await session.execute(query)).scalar_one_or_none()
    if plan is None:
        raise NotFound(f"recovery plan {plan_id} does not exist")
    return plan


async def plan_of(session: AsyncSession, complaint_id: uuid.UUID) -> RecoveryPlan | None:
    query = select(RecoveryPlan).where(RecoveryPlan.complaint_id == complaint_id)
    return (await session.execute(query)).scalar_one_or_none()


def _add_action(plan: RecoveryPlan, spec: ActionSpec, position: int) -> RecoveryAction:
    action = RecoveryAction(
        id=uuid7(), plan_id=plan.id, position=position, type=spec.type, value=spec.value, currency=spec.currency,
        owner_id=spec.owner_id or plan.owner_id, due_at=_utc(spec.due_at), due_notified=False, status="pending",
        note=spec.note, coupon_code=spec.coupon_code, coupon_expires_at=_utc(spec.coupon_expires_at),
        offer_status="pending" if spec.type == "tailored_offer" else None, offer_attempts=0,
    )  # fmt: skip
    plan.actions.append(action)
    return action


def _schedule_follow_ups(plan: RecoveryPlan) -> None:
    if plan.complaint_closed_at is None:
        return
    for follow_up in plan.follow_ups:
        if follow_up.status == "pending":
            follow_up.due_at = plan.complaint_closed_at + dt.timedelta(days=follow_up.offset_days)


async def create_plan(
    session: AsyncSession,
    complaint: Complaint,
    *,
    settings: Settings,
    actor: str,
    triggers: list[str],
    owner_id: str | None = None,
    actions: Sequence[ActionSpec] | None = None,
    controllable: bool | None = None,
    avoid_categories: Sequence[str] = (),
    follow_up_days: Sequence[int] | None = None,
) -> tuple[RecoveryPlan, bool]:
    """The complaint's plan, made now unless it has one; says whether it was made now. A plan made for a
    closed complaint is following up from the start. A tailored offer asked for a customer the snapshot says
    takes no marketing is refused (422)."""
    existing = await plan_of(session, complaint.id)
    if existing is not None:
        return existing, False
    if complaint.status == "cancelled":
        raise Conflict("a cancelled complaint gets no recovery plan", status_now=complaint.status)
    refused = marketing_refused(complaint.customer_snapshot or {})
    if refused and actions is not None and any(spec.type == "tailored_offer" for spec in actions):
        raise Unprocessable(
            f"a tailored offer is personalised marketing, and this customer takes none ({refused})", field="actions"
        )
    now = utcnow()
    prior = await prior_complaints(session, complaint, settings.recovery_repeat_days)
    # Decided before the insert, so the plan is stored as it is answered (version 1), not changed after.
    status = "following_up" if complaint.closed_at is not None else "open"
    plan = RecoveryPlan(
        id=uuid7(), complaint_id=complaint.id, customer_id=complaint.customer_id,
        owner_id=owner_id or complaint.assignee_id, status=status, triggers=triggers, category=complaint.category,
        severity=complaint.severity, tier=_tier(complaint), controllable=controllable,
        tenure_days=_tenure_days(complaint), prior_complaints_90d=prior, double_deviation=prior > 0,
        satisfaction_before=(complaint.satisfaction or {}).get("score"),
        avoid_skus=[complaint.sku] if complaint.sku else [], avoid_categories=list(avoid_categories),
        complaint_closed_at=complaint.closed_at, outcome="pending", evidence={}, created_at=now, updated_at=now,
        actions=[], follow_ups=[],
    )  # fmt: skip
    for position, spec in enumerate(actions if actions is not None else default_actions(complaint, settings, now)):
        _add_action(plan, spec, position)
    for days in sorted(set(follow_up_days if follow_up_days is not None else settings.recovery_follow_up_days)):
        plan.follow_ups.append(FollowUp(id=uuid7(), plan_id=plan.id, offset_days=days, status="pending"))
    _schedule_follow_ups(plan)
    session.add(plan)
    session.add(
        recovery_event(plan, "recovery_plan_created", actor, {
            "triggers": triggers, "actions": [a.type for a in plan.actions], "double_deviation": plan.double_deviation,
        })
    )  # fmt: skip
    await session.flush()
    return plan, True


async def on_taken(session: AsyncSession, complaint: Complaint) -> None:
    """A new complaint: into the contact history."""
    queue_contact(
        session, complaint.customer_id, f"complaint:{complaint.id}:opened", kind="complaint",
        subject=f"投诉 {complaint.number} 已受理（{complaint.category}）", occurred_at=complaint.created_at,
        channel=_contact_channel(complaint.channel),
    )  # fmt: skip


def _contact_channel(channel: str) -> str | None:
    return channel if channel in {"store", "phone", "web", "app", "wechat", "email", "sms"} else "other"


async def on_closed(session: AsyncSession, complaint: Complaint, settings: Settings, actor: str) -> None:
    """A complaint closed: into the contact history; follow-ups scheduled; a plan if a rule says so."""
    queue_contact(
        session, complaint.customer_id, f"complaint:{complaint.id}:closed:{complaint.reopen_count}", kind="complaint",
        subject=f"投诉 {complaint.number} 已关闭", occurred_at=complaint.closed_at or utcnow(),
        channel=_contact_channel(complaint.channel),
    )  # fmt: skip
    plan = await plan_of(session, complaint.id)
    if plan is not None:
        if plan.status == CANCELLED:
            return
        plan.complaint_closed_at = complaint.closed_at
        if plan.status == "open":
            plan.status = "following_up"
        plan.updated_at = utcnow()
        _schedule_follow_ups(plan)
        return
    await _create_by_rules(session, complaint, settings, actor)


async def on_customer_known(session: AsyncSession, complaint: Complaint, settings: Settings, actor: str) -> None:
    """customer-api answered about a complaint taken while it was down: the rules run for a complaint already
    closed or rated without a plan, and a plan made meanwhile learns the customer (a valued one gets a call)."""
    plan = await plan_of(session, complaint.id)
    if plan is None:
        if complaint.status != "cancelled" and (complaint.closed_at is not None or complaint.satisfaction is not None):
            await _create_by_rules(session, complaint, settings, actor)
        return
    plan.customer_id, plan.tier, plan.tenure_days = complaint.customer_id, _tier(complaint), _tenure_days(complaint)
    if plan.status != CANCELLED and plan.tier in settings.recovery_tiers and "tier" not in plan.triggers:
        plan.triggers = [*plan.triggers, "tier"]
        if not any(action.type == "callback" for action in plan.actions):
            due = utcnow() + dt.timedelta(hours=settings.recovery_action_hours)
            _add_action(plan, ActionSpec("callback", due_at=due), len(plan.actions))
    plan.updated_at = utcnow()


async def on_reopened(session: AsyncSession, complaint: Complaint, actor: str) -> None:
    """A complaint reopened: its plan (following up, or closed when every follow-up was done) waits for the next
    close, and what was measured from the last one no longer holds (a customer who bought again is not
    recovered while the complaint is open again). Every follow-up is asked afresh from the next close; what
    the earlier ones found is kept in the evidence, and the outcome is decided again then."""
    plan = await plan_of(session, complaint.id)
    if plan is None or plan.status == CANCELLED:
        return
    now = utcnow()
    plan.complaint_closed_at = None
    plan.status = "open"
    earlier = [
        {"offset_days": f.offset_days, "status": f.status, "done_at": f.done_at.isoformat() if f.done_at else None,
         "satisfaction": f.satisfaction, "outcome": f.outcome}
        for f in plan.follow_ups if f.status == "done" or f.satisfaction is not None
    ]  # fmt: skip
    for follow_up in plan.follow_ups:
        follow_up.status, follow_up.due_at, follow_up.done_at = "pending", None, None  # due from the next close
        follow_up.outcome, follow_up.satisfaction, follow_up.note = None, None, None
    evidence: dict[str, Any] = {"as_of": now.isoformat(), "reason": "the complaint was reopened"}
    if earlier:
        evidence["earlier_follow_ups"] = earlier
    if plan.outcome != "pending":
        apply_outcome(session, plan, "pending", evidence, actor)
    else:
        plan.evidence = evidence
    plan.updated_at = now


async def on_cancelled(session: AsyncSession, complaint: Complaint, actor: str) -> None:
    """A complaint cancelled (a duplicate, invalid, withdrawn): it gets no recovery, so its plan is cancelled
    with the reason."""
    plan = await plan_of(session, complaint.id)
    if plan is None or plan.status == CANCELLED:
        return
    duplicate_of = str(complaint.duplicate_of) if complaint.duplicate_of else None
    why = {"cancel_reason": complaint.cancel_reason, "duplicate_of": duplicate_of}
    _cancel(session, plan, actor, {"reason": "the complaint was cancelled", **why},
            {"reason": complaint.cancel_reason, "duplicate_of": duplicate_of})  # fmt: skip


async def on_customer_erased(session: AsyncSession, customer_id: uuid.UUID, actor: str) -> None:
    """The customer's personal data was erased (PIPL): nobody is left to call, visit or ask, so their plans still
    under way are cancelled; closed ones keep their outcome for the statistics."""
    query = select(RecoveryPlan).where(
        RecoveryPlan.customer_id == customer_id, RecoveryPlan.status.in_(("open", "following_up"))
    )
    for plan in (await session.execute(query)).scalars().all():
        _cancel(session, plan, actor, {"reason": "the customer's personal data was erased"}, {"reason": "erased"})


def _cancel(
    session: AsyncSession, plan: RecoveryPlan, actor: str, evidence: dict[str, Any], event: dict[str, Any]
) -> None:
    """Cancel a plan, with why in its `evidence` and on its timeline `event`: pending actions and follow-ups stop
    (done ones stay: they happened), the background pass and the due list leave it alone, and nothing more can be
    written to it."""
    now = utcnow()
    stopped_actions = [a for a in plan.actions if a.status == "pending"]
    for action in stopped_actions:
        action.status = CANCELLED
    stopped_follow_ups = [f for f in plan.follow_ups if f.status == "pending"]
    for follow_up in stopped_follow_ups:
        follow_up.status, follow_up.due_at = CANCELLED, None
    before = plan.status
    plan.status = CANCELLED
    evidence = {"as_of": now.isoformat(), **evidence}
    if "earlier_follow_ups" in plan.evidence:
        evidence["earlier_follow_ups"] = plan.evidence["earlier_follow_ups"]
    if plan.outcome != "pending":
        apply_outcome(session, plan, "pending", evidence, actor)
    else:
        plan.evidence = evidence
    plan.updated_at = now
    session.add(
        recovery_event(plan, "recovery_plan_cancelled", actor, {
            "from": before, **event, "actions_cancelled": [str(a.id) for a in stopped_actions],
            "follow_ups_cancelled": len(stopped_follow_ups),
        })
    )  # fmt: skip


def ensure_active(plan: RecoveryPlan) -> None:
    """A cancelled plan takes no more writes (its complaint gets no recovery)."""
    if plan.status == CANCELLED:
        raise Conflict(
            f"the plan was cancelled: {plan.evidence.get('reason', 'with its complaint')}", status_now=plan.status
        )


async def on_rated(session: AsyncSession, complaint: Complaint, settings: Settings, actor: str) -> None:
    """The customer rated the handling: the score goes on the plan, or makes one if it is low."""
    plan = await plan_of(session, complaint.id)
    if plan is not None:
        score = (complaint.satisfaction or {}).get("score")
        plan.satisfaction_before = score
        if (
            score is not None
            and score <= settings.recovery_satisfaction_at_most
            and "low_satisfaction" not in plan.triggers
        ):
            plan.triggers = [*plan.triggers, "low_satisfaction"]
        plan.updated_at = utcnow()
        return
    await _create_by_rules(session, complaint, settings, actor)


async def _create_by_rules(session: AsyncSession, complaint: Complaint, settings: Settings, actor: str) -> None:
    prior = await prior_complaints(session, complaint, settings.recovery_repeat_days)
    fired = rules_fired(complaint, settings, prior)
    if fired:
        await create_plan(session, complaint, settings=settings, actor=actor, triggers=fired)


async def complete_action(
    session: AsyncSession, plan: RecoveryPlan, action_id: uuid.UUID, *, actor: str, note: str | None,
    value: Decimal | None, coupon_code: str | None, coupon_expires_at: dt.datetime | None,
    redeemed_at: dt.datetime | None, expected_version: int | None = None,
) -> RecoveryAction:  # fmt: skip
    """Mark an action done (once); a coupon's redemption may be recorded later by calling again.

    `expected_version` is the plan's version from `If-Match` (412 when it moved on). A redemption is a 422
    when it is after the coupon's expiry or before the complaint was taken (the future is refused by the
    request body already)."""
    action = next((a for a in plan.actions if a.id == action_id), None)
    if action is None:
        raise NotFound(f"recovery plan {plan.id} has no action {action_id}")
    check_version(plan.version, expected_version)
    ensure_active(plan)
    if action.status == "cancelled":
        withheld = f" (the offer was withheld: {action.offer_withheld_reason})" if action.offer_withheld_reason else ""
        raise Conflict("the action was cancelled" + withheld, status_now=action.status)
    now = utcnow()
    if redeemed_at is not None:
        if action.type != "coupon":
            raise Conflict("only a coupon can be redeemed", status_now=action.status)
        redeemed = _utc(redeemed_at)
        assert redeemed is not None
        expires = _utc(coupon_expires_at) if action.status != "done" and coupon_expires_at else action.coupon_expires_at
        if expires is not None and redeemed > expires:
            raise Unprocessable(
                f"the coupon expired at {expires.isoformat()}; it cannot be redeemed after", field="redeemed_at"
            )
        complaint = await session.get(Complaint, plan.complaint_id)
        if complaint is not None and redeemed < complaint.created_at - CLOCK_SKEW:  # another clock a little behind
            raise Unprocessable(
                f"the complaint was taken at {complaint.created_at.isoformat()}; its recovery coupon cannot be "
                "redeemed before",
                field="redeemed_at",
            )
        action.coupon_redeemed_at = redeemed
    if action.status == "done":
        if redeemed_at is None:
            raise Conflict("the action is already done", status_now=action.status)
    else:
        action.status, action.completed_at = "done", now
        action.note = note or action.note
        action.value = value if value is not None else action.value
        action.coupon_code = coupon_code or action.coupon_code
        action.coupon_expires_at = _utc(coupon_expires_at) or action.coupon_expires_at
        if plan.first_action_at is None:
            plan.first_action_at = now
        session.add(
            recovery_event(plan, "recovery_action_done", actor, {"action_id": str(action.id), "type": action.type})
        )
        queue_contact(
            session, plan.customer_id, f"recovery:{action.id}:done", kind=CONTACT_KINDS.get(action.type, "note"),
            subject=f"服务复原：{ACTION_NAMES[action.type]}", occurred_at=now,
        )  # fmt: skip
    plan.updated_at = now
    await session.flush()
    return action


async def record_follow_up(
    session: AsyncSession, plan: RecoveryPlan, follow_up_id: uuid.UUID, *, satisfaction: int, note: str | None,
    expected_version: int | None = None,
) -> tuple[FollowUp, bool]:  # fmt: skip
    """Record the customer's score at a follow-up; says whether anything changed.

    The same score again (a retry; the note left out or the same) changes nothing and answers the plan as
    it is, even with an `If-Match` that was current before the first attempt (RFC 9110 §13.1.1: the change
    is already applied). A changed score (or note) is stored, guarded by `If-Match` (412 when stale): the
    customer corrected their answer, and a new score is a new survey entry in the contact history, since
    customer-api keeps the first content of an entry and refuses a changed one."""
    follow_up = next((f for f in plan.follow_ups if f.id == follow_up_id), None)
    if follow_up is None:
        raise NotFound(f"recovery plan {plan.id} has no follow-up {follow_up_id}")
    ensure_active(plan)
    if follow_up.satisfaction == satisfaction and (note is None or note == follow_up.note):
        return follow_up, False
    check_version(plan.version, expected_version)
    now = utcnow()
    corrected = follow_up.satisfaction is not None
    if follow_up.satisfaction != satisfaction:
        subject = f"服务复原回访（{follow_up.offset_days} 天）" + ("：评分更正" if corrected else "")
        queue_contact(
            session, plan.customer_id, f"recovery:{follow_up.id}:survey:v{plan.version}", kind="survey",
            subject=subject, occurred_at=now, score=satisfaction,
        )  # fmt: skip
    follow_up.satisfaction = satisfaction
    if note is not None:
        follow_up.note = note
    plan.updated_at = now
    await session.flush()
    return follow_up, True


# --- outcome ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What is known about the customer after the complaint closed, as of `as_of`."""

    as_of: dt.datetime
    orders: list[dict[str, Any]]  # customer-api's orders since closing, oldest first
    repeat_complaint: Complaint | None
    follow_up_satisfaction: int | None
    coupon_redeemed: bool | None


async def repeat_complaint(session: AsyncSession, plan: RecoveryPlan) -> Complaint | None:
    if plan.complaint_closed_at is None:
        return None
    query = (
        select(Complaint)
        .where(
            Complaint.customer_id == plan.customer_id, Complaint.id != plan.complaint_id,
            Complaint.status != "cancelled", Complaint.created_at > plan.complaint_closed_at,
        )
        .order_by(Complaint.created_at)
        .limit(1)
    )  # fmt: skip
    return (await session.execute(query)).scalar_one_or_none()


def local_facts(plan: RecoveryPlan) -> tuple[int | None, bool | None]:
    """The latest follow-up score, and whether a coupon of the plan was redeemed (None: no coupon issued)."""
    scores = [f.satisfaction for f in plan.follow_ups if f.satisfaction is not None]
    coupons = [a for a in plan.actions if a.type == "coupon" and a.status == "done"]
    return (scores[-1] if scores else None), (any(a.coupon_redeemed_at for a in coupons) if coupons else None)


def decide(plan: RecoveryPlan, facts: Facts) -> tuple[str, dict[str, Any]]:
    """The outcome and its evidence; pure, so every rule is testable on its own."""
    evidence: dict[str, Any] = {"as_of": facts.as_of.isoformat()}
    closed = plan.complaint_closed_at
    if closed is None:
        return "pending", {**evidence, "reason": "the complaint is not closed"}
    days = (facts.as_of - closed).total_seconds() / 86400
    first = facts.orders[0] if facts.orders else None
    first_at = dt.datetime.fromisoformat(first["purchased_at"]) if first else None

    def within(limit: int) -> bool | None:
        if first_at is not None and first_at <= closed + dt.timedelta(days=limit):
            return True
        return False if days >= limit else None

    def orders_within(limit: int) -> int:
        end = closed + dt.timedelta(days=limit)
        return sum(1 for o in facts.orders if dt.datetime.fromisoformat(o["purchased_at"]) <= end)

    repeat = facts.repeat_complaint
    evidence.update(
        days_since_close=round(days, 2),
        first_purchase=({"order_id": first["order_id"], "purchased_at": first["purchased_at"], "total": first["total"]}
                        if first else None),
        first_purchase_at=first["purchased_at"] if first else None,
        repurchase_30d=within(AT_RISK_DAYS), repurchase_90d=within(LOST_DAYS),
        orders_30d=orders_within(AT_RISK_DAYS), orders_90d=orders_within(LOST_DAYS),
        coupon_redeemed=facts.coupon_redeemed, follow_up_satisfaction=facts.follow_up_satisfaction,
        repeat_complaint=({"id": str(repeat.id), "number": repeat.number, "created_at": repeat.created_at.isoformat()}
                          if repeat else None),
        double_deviation=plan.double_deviation or repeat is not None,
    )  # fmt: skip
    unhappy = facts.follow_up_satisfaction is not None and facts.follow_up_satisfaction <= LOW_FOLLOW_UP_SCORE
    if first is not None and repeat is None and not unhappy:
        return "recovered", evidence
    if first is None and days >= LOST_DAYS:
        return "lost", evidence
    if repeat is not None or unhappy or days >= AT_RISK_DAYS:
        return "at_risk", evidence
    return "pending", evidence


def apply_outcome(
    session: AsyncSession, plan: RecoveryPlan, outcome: str, evidence: dict[str, Any], actor: str
) -> bool:
    """Store an evaluation; an outcome that changed goes on the timeline and into the contact history.

    The contact entry is keyed by the plan's version the change is made at (the caller holds the plan, and
    every change of it moves the version on), so an outcome the plan had before is a new entry when reached
    again; a delivery sent twice is still stored once by customer-api."""
    now = utcnow()
    changed = outcome != plan.outcome
    before = plan.outcome
    plan.outcome, plan.evidence, plan.evaluated_at, plan.evaluation_error = outcome, evidence, now, None
    plan.double_deviation = bool(evidence.get("double_deviation", plan.double_deviation))
    plan.updated_at = now
    if changed:
        session.add(recovery_event(plan, "recovery_outcome_changed", actor, {"from": before, "to": outcome}))
        queue_contact(
            session, plan.customer_id, f"recovery:{plan.id}:outcome:{outcome}:v{plan.version}", kind="note",
            subject=f"服务复原结果：{OUTCOME_NAMES[outcome]}", occurred_at=now,
        )  # fmt: skip
    return changed


def due_follow_ups(plan: RecoveryPlan, now: dt.datetime) -> list[FollowUp]:
    return [f for f in plan.follow_ups if f.status == "pending" and f.due_at is not None and f.due_at <= now]


def close_follow_ups(plan: RecoveryPlan, now: dt.datetime) -> None:
    """Mark the follow-ups that have fallen due as done with the outcome found; the last one closes the plan."""
    for follow_up in due_follow_ups(plan, now):
        follow_up.status, follow_up.done_at, follow_up.outcome = "done", now, plan.outcome
    if plan.status != CANCELLED and plan.follow_ups and all(f.status == "done" for f in plan.follow_ups):
        plan.status = "closed"


async def list_plans(
    session: AsyncSession, *, status: str | None, outcome: str | None, owner_id: str | None,
    customer_id: uuid.UUID | None, due_before: dt.datetime | None, after: tuple[dt.datetime, uuid.UUID] | None,
    limit: int,
) -> Sequence[RecoveryPlan]:  # fmt: skip
    query = select(RecoveryPlan)
    if status:
        query = query.where(RecoveryPlan.status == status)
    if outcome:
        query = query.where(RecoveryPlan.outcome == outcome)
    if owner_id:
        query = query.where(RecoveryPlan.owner_id == owner_id)
    if customer_id:
        query = query.where(RecoveryPlan.customer_id == customer_id)
    if due_before:
        action_due = select(RecoveryAction.plan_id).where(
            RecoveryAction.status == "pending", RecoveryAction.due_at < due_before
        )
        follow_up_due = select(FollowUp.plan_id).where(FollowUp.status == "pending", FollowUp.due_at < due_before)
        query = query.where(or_(RecoveryPlan.id.in_(action_due), RecoveryPlan.id.in_(follow_up_due)))
    if after:
        query = query.where(
            or_(
                RecoveryPlan.created_at < after[0],
                and_(RecoveryPlan.created_at == after[0], RecoveryPlan.id < after[1]),
            )
        )
    query = query.order_by(RecoveryPlan.created_at.desc(), RecoveryPlan.id.desc()).limit(limit + 1)
    return (await session.execute(query)).scalars().all()
