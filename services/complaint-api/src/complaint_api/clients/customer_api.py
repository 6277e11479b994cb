"""customer-api as complaint-api sees it: a customer's name and tier for the complaint's snapshot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from crm_kit.http import PeerClient, PeerUnavailable


@dataclass(frozen=True)
class CustomerSnapshot:
    customer_id: uuid.UUID  # the live profile (a merged id resolves to the survivor)
    name: str | None
    tier: str
    type: str

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "tier": self.tier, "type": self.type}


async def fetch_customer(peer: PeerClient, customer_id: uuid.UUID) -> CustomerSnapshot | None:
    """The customer's snapshot; None when customer-api does not know them (unknown or erased).

    Raises PeerUnavailable when customer-api is down or failing, so the caller can retry later.
    """
    for _ in range(4):  # a merge chain is short; a longer one is treated as unknown
        response = await peer.get(f"/v1/customers/{customer_id}")
        if response.status_code == 308:
            customer_id = uuid.UUID(response.json()["merged_into"])
            continue
        if response.status_code in (404, 410, 422):
            return None
        if response.status_code != 200:
            raise PeerUnavailable("customer-api", f"unexpected status {response.status_code}")
        body = response.json()
        return CustomerSnapshot(uuid.UUID(body["id"]), body.get("name"), body.get("tier", "regular"), body["type"])
    return None
