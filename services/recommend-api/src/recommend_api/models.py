"""Every table of recommend-api, imported in one place for the migrations."""

from recommend_api.builds.models import ModelVersion
from recommend_api.sync.models import CustomerState, Item, PurchaseLine

__all__ = ["CustomerState", "Item", "ModelVersion", "PurchaseLine"]
