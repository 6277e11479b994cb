"""HTTP routes of the knowledge base."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])
