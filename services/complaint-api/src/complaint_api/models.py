"""Every table of complaint-api, imported in one place for the migrations."""

from complaint_api.callbacks.models import Callback
from complaint_api.complaints.models import Complaint, ComplaintEvent, ComplaintNumber
from complaint_api.kb.models import KbArticle, KbRevision
from complaint_api.recovery.models import ContactRecord, FollowUp, RecoveryAction, RecoveryPlan
from complaint_api.sla.models import SlaPolicy
from complaint_api.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "Callback",
    "Complaint",
    "ComplaintEvent",
    "ComplaintNumber",
    "ContactRecord",
    "FollowUp",
    "KbArticle",
    "KbRevision",
    "RecoveryAction",
    "RecoveryPlan",
    "SlaPolicy",
    "Webhook",
    "WebhookDelivery",
]
