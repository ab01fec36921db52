"""REST API under /api/v1: a thin shell over ``mutual.app``, analytics, planning and ingest, documented by
FastAPI's OpenAPI. Every list is paginated, every error is the JSON envelope of ``web.errors``, and every data
read is cut to the organisations the caller may see (``web.auth.visible_orgs``)."""

from fastapi import APIRouter

from mutual.web.api import data, governance, overview, partner, plans, submissions
from mutual.web.api.common import ERRORS

router = APIRouter(prefix="/api/v1", responses=ERRORS)
router.include_router(overview.router)
router.include_router(data.router)
router.include_router(plans.router)
router.include_router(submissions.router)
router.include_router(partner.router)
router.include_router(governance.router)

__all__ = ["router"]
