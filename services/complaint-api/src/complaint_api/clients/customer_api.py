"""customer-api as complaint-api sees it: a customer's name, tier and PIPL state for the complaint's snapshot, who has
a phone number, and the repurchase rates of customers who did not complain (the control group of recovery
statistics)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from crm_kit.http import PeerClient, PeerUnavailable

MERGE_HOPS = 4  # a merge chain is short; a longer one is treated as unknown (or unavailable, for purchases)


@dataclass(frozen=True)
class CustomerSnapshot:
    customer_id: uuid.UUID  # the live profile (a merged id resolves to the survivor)
    name: str | None
    tier: str
    type: str
    since: str | None = None  # when the profile was created: the customer's tenure
    restricted: bool | None = None  # PIPL processing restriction: no profiling, no marketing
    marketing_consent: str | None = None  # granted | withdrawn; None when never asked

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "tier": self.tier, "type": self.type, "since": self.since,
            "restricted": self.restricted, "marketing_consent": self.marketing_consent,
        }  # fmt: skip


class CustomerErased(Exception):
    """customer-api answered that the customer's personal data was erased (410)."""

    def __init__(self, customer_id: uuid.UUID) -> None:
        super().__init__(f"customer {customer_id} was erased")
        self.customer_id = customer_id


def _snapshot(profile: dict[str, Any]) -> CustomerSnapshot:
    """What complaint-api keeps of a profile as customer-api renders it."""
    return CustomerSnapshot(
        uuid.UUID(profile["id"]), profile.get("name"), profile.get("tier", "regular"), profile["type"],
        profile.get("created_at"), profile.get("restricted"),
        (profile.get("consents") or {}).get("marketing", {}).get("status"),
    )  # fmt: skip


def _survivor(moved: httpx.Response) -> uuid.UUID:
    """The profile a merged id's 308 names."""
    return uuid.UUID(moved.json()["merged_into"])


async def fetch_customer(peer: PeerClient, customer_id: uuid.UUID) -> CustomerSnapshot | None:
    """The customer's snapshot; None when customer-api does not know them.

    Raises CustomerErased when they were erased (what was taken about them meanwhile must go too), and
    PeerUnavailable when customer-api is down or failing, so the caller can retry later.
    """
    for _ in range(MERGE_HOPS):
        response = await peer.get(f"/v1/customers/{customer_id}")
        if response.status_code == 308:
            customer_id = _survivor(response)
            continue
        if response.status_code == 410:
            raise CustomerErased(customer_id)
        if response.status_code in (404, 422):
            return None
        if response.status_code != 200:
            raise PeerUnavailable("customer-api", f"unexpected status {response.status_code}")
        return _snapshot(response.json())
    return None


async def find_customer_by_phone(peer: PeerClient, phone: str) -> CustomerSnapshot | None:
    """The snapshot of the live profile whose phone is `phone` (E.164), as fetch_customer gives it; None when no
    live profile has that number. Raises PeerUnavailable when customer-api is down or failing."""
    response = await peer.get("/v1/customers", params={"phone": phone, "limit": 2})
    if response.status_code != 200:
        raise PeerUnavailable("customer-api", f"customer search answered {response.status_code}")
    found = response.json()["items"]
    # A phone number belongs to one live profile at most (customer-api refuses a second one). Should it ever
    # answer with more than one, none is taken: a callback linked to the wrong person would go into their export
    # and survive the caller's own erasure, so it stays anonymous instead.
    return _snapshot(found[0]) if len(found) == 1 else None


async def purchases_between(
    peer: PeerClient, customer_id: uuid.UUID, since: dt.datetime, until: dt.datetime
) -> list[dict[str, Any]] | None:
    """The customer's orders in [since, until], oldest first; None when customer-api does not know them.

    Raises PeerUnavailable when customer-api is down or failing: the caller decides later, never on half facts.
    """
    orders: list[dict[str, Any]] = []
    params: dict[str, Any] = {"since": since.isoformat(), "until": until.isoformat(), "limit": 200}
    hops = 0
    while True:
        response = await peer.get(f"/v1/customers/{customer_id}/purchases", params=params)
        if response.status_code == 308 and hops < MERGE_HOPS:
            # Merged since (complaint-api learns it from the feed later): the survivor's orders, theirs included.
            customer_id, hops = _survivor(response), hops + 1
            orders, params = [], {key: value for key, value in params.items() if key != "cursor"}
            continue
        if response.status_code in (404, 410):
            return None
        if response.status_code != 200:
            raise PeerUnavailable("customer-api", f"unexpected status {response.status_code}")
        page = response.json()
        orders.extend(page["items"])
        if not page.get("next_cursor"):
            return sorted(orders, key=lambda o: (o["purchased_at"], o["order_id"]))
        params["cursor"] = page["next_cursor"]


async def record_contact(peer: PeerClient, customer_id: uuid.UUID, body: dict[str, Any]) -> bool:
    """Write an entry to the customer's contact history; True once stored (or already there), False when
    the customer is gone (erased or unknown). Raises PeerUnavailable when customer-api cannot take it now."""
    for _ in range(MERGE_HOPS):
        response = await peer.post(f"/v1/customers/{customer_id}/interactions", json=body)
        if response.status_code != 308:
            break
        customer_id = _survivor(response)  # merged since: the entry goes to the surviving profile's history
    if response.status_code in (200, 201):
        return True
    if response.status_code in (404, 410):
        return False
    raise PeerUnavailable("customer-api", f"contact history answered {response.status_code}")


async def repurchase_control(
    peer: PeerClient, *, start: dt.datetime, end: dt.datetime, tier: str | None, exclude: list[uuid.UUID]
) -> dict[str, Any] | None:
    """30- and 90-day repurchase rates of the buyers of [start, end) of `tier` (any when None), `exclude` left out.

    customer-api's answer as it is: `customers` and `windows` (`days`, `eligible`, `repurchased`, `rate`).
    None when customer-api is down or refuses (statistics go without a control rather than fail).
    """
    body = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "tier": tier,
        "exclude_customer_ids": [str(customer_id) for customer_id in exclude],
        "windows_days": [30, 90],
    }
    try:
        response = await peer.post("/v1/analytics/repurchase", json=body)
    except PeerUnavailable:
        return None
    if response.status_code != 200:
        return None
    answer: dict[str, Any] = response.json()
    return answer
