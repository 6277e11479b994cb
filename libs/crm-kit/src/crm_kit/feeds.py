"""Ordered change feeds that peers read with a cursor, without gaps while writes are concurrent.

A feed row's sequence number is taken from an auto-incrementing key. Two transactions could
otherwise commit out of sequence order and a reader between the two commits would skip the later
number for good; so writers to one feed are serialised until commit: on PostgreSQL by a
transaction-scoped advisory lock, on SQLite by its single writer lock (`BEGIN IMMEDIATE`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from crm_kit.db import transaction_lock


async def lock_feed(session: AsyncSession, name: str) -> None:
    """Hold the feed's writer lock until this transaction ends. Call before inserting feed rows."""
    await transaction_lock(session, name)
