"""Every table of complaint-api, imported in one place for the migrations."""

from complaint_api.complaints.models import Complaint, ComplaintEvent, ComplaintNumber
from complaint_api.kb.models import KbArticle, KbRevision

__all__ = ["Complaint", "ComplaintEvent", "ComplaintNumber", "KbArticle", "KbRevision"]
