"""HTTP routes of complaints."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/complaints", tags=["complaints"])
