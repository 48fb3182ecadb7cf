"""The claims app's part of /api/v1/ (registered in ClaimsConfig.ready()): a claim's status and amount
by subject, a program's report figures. Scope `read`; reads through selectors only."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.http import HttpRequest
from ninja import Router
from ninja.errors import HttpError

from claims.report import program_report
from claims.selectors import claim_status_by_subject, program_by_slug
from support_portal.api.models import ApiScope
from support_portal.api.v1 import api_key_of


def claims_router() -> Router:
    router = Router(tags=["claims"])

    @router.get("/{program}/claims/{subject}")
    def claim_status(request: HttpRequest, program: str, subject: str) -> dict[str, Any]:
        """A claim's status and amount (and, once approved, the approved amount) by its subject."""
        api_key_of(request, scope=ApiScope.READ)
        view = claim_status_by_subject(program_slug=program, subject=subject)
        if view is None:
            raise HttpError(404, "no claim for this subject in this program")
        return dataclasses.asdict(view)

    @router.get("/{program}/report")
    def report(request: HttpRequest, program: str) -> dict[str, Any]:
        """The program report's figures (claims/report.py): totals, and by plan, class and month."""
        api_key_of(request, scope=ApiScope.READ)
        found = program_by_slug(slug=program)
        if found is None:
            raise HttpError(404, "no such program")
        figures = program_report(program=found)
        return {
            "program": found.slug,
            "totals": dataclasses.asdict(figures.totals),
            "breakdowns": {
                name: [dataclasses.asdict(row) for row in rows] for name, rows in figures.breakdowns.items()
            },
        }

    return router
