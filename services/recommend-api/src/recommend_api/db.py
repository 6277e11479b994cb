"""recommend-api's declarative base and the metadata its migrations manage."""

from sqlalchemy.orm import DeclarativeBase

from crm_kit.db import new_metadata
from crm_kit.feeds import follower_metadata
from crm_kit.idempotency import kit_metadata


class Base(DeclarativeBase):
    metadata = new_metadata()


# Every table migrations own: the service's models, the kit's idempotency keys and feed cursors.
all_metadata = [Base.metadata, kit_metadata, follower_metadata]
