"""Steps of the complaint process refused for a field of their body: a 422 naming it, and nothing stored."""

from __future__ import annotations

import uuid

import httpx
from test_complaints import step, take


async def test_a_duplicate_of_an_unknown_complaint_is_a_422_naming_the_field(client: httpx.AsyncClient) -> None:
    complaint = await take(client)
    unknown = await step(client, complaint, "cancel", reason="duplicate", duplicate_of=str(uuid.uuid4()))
    # A 404 would say the complaint being cancelled does not exist.
    assert unknown.status_code == 422 and unknown.json()["field"] == "duplicate_of", unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"/v1/complaints/{complaint['id']}")).json()["status"] == "open"


async def test_only_a_duplicate_names_an_original(client: httpx.AsyncClient) -> None:
    complaint, other = await take(client), await take(client)
    for duplicate_of in (other["id"], str(uuid.uuid4())):
        refused = await step(client, complaint, "cancel", reason="invalid", duplicate_of=duplicate_of)
        assert refused.status_code == 422 and refused.json()["field"] == "duplicate_of", refused.text
    read = (await client.get(f"/v1/complaints/{complaint['id']}")).json()
    assert read["status"] == "open" and read["duplicate_of"] is None
    withdrawn = await step(client, complaint, "cancel", reason="withdrawn")
    assert withdrawn.status_code == 200 and withdrawn.json()["duplicate_of"] is None
