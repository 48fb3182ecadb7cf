"""Read endpoints (scope `read`): a claim's status and amount by subject, a payout's status without its
code, a program's report figures."""

from __future__ import annotations

import pytest
from django.test import Client

from claims.report import program_report
from payouts.models import Payout
from payouts.services import payout_issue, payouts_create_for_approved_claims
from tests.api.conftest import get_json
from tests.payouts.conftest import approved_claim, make_program

pytestmark = pytest.mark.django_db


def test_a_claim_by_subject_shows_its_status_and_amounts(client: Client, read_key) -> None:
    program = make_program()
    claim = approved_claim(program, amount=5000)

    response = get_json(client, f"/api/v1/programs/{program.slug}/claims/{claim.subject}", key=read_key.key)

    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("program", "subject", "status", "amount_jpy", "approved_amount_jpy")} == {
        "program": program.slug,
        "subject": claim.subject,
        "status": "approved",
        "amount_jpy": 5000,
        "approved_amount_jpy": 5000,
    }


def test_an_unknown_claim_or_program_is_404(client: Client, read_key) -> None:
    program = make_program()

    assert get_json(client, f"/api/v1/programs/{program.slug}/claims/NOPE", key=read_key.key).status_code == 404
    assert get_json(client, "/api/v1/programs/no-such/report", key=read_key.key).status_code == 404


def test_a_payout_shows_its_status_and_never_its_code_or_reference(client: Client, read_key) -> None:
    program = make_program()
    approved_claim(program)
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = payout_issue(payout_id=Payout.objects.get(program=program).pk)
    assert payout is not None
    secret = payout.secret.reveal()

    response = get_json(client, f"/api/v1/payouts/{payout.pk}", key=read_key.key)

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["method"], body["amount_jpy"]) == ("issued", "atm_cash", 5000)
    text = response.content.decode()
    assert [value for value in (secret.code, secret.pin, payout.provider_reference) if value in text] == []
    assert sorted(body) == [
        "amount_jpy",
        "claim_id",
        "expires_at",
        "id",
        "issued_at",
        "method",
        "offer",
        "status",
        "updated_at",
    ]


def test_a_program_report_has_the_figures_of_claims_report(client: Client, read_key) -> None:
    program = make_program()
    approved_claim(program, amount=1200)

    response = get_json(client, f"/api/v1/programs/{program.slug}/report", key=read_key.key)

    assert response.status_code == 200
    expected = program_report(program=program)
    assert response.json()["totals"] == {
        "population": expected.totals.population,
        "eligible": expected.totals.eligible,
        "applied": expected.totals.applied,
        "approved": expected.totals.approved,
        "eligible_amount_jpy": expected.totals.eligible_amount_jpy,
        "approved_amount_jpy": expected.totals.approved_amount_jpy,
    }
    assert response.json()["totals"]["approved_amount_jpy"] == 1200
    assert sorted(response.json()["breakdowns"]) == ["class", "month", "plan"]


def test_reads_need_the_read_scope(client: Client, ingest_key) -> None:
    program = make_program()
    claim = approved_claim(program)

    response = get_json(client, f"/api/v1/programs/{program.slug}/claims/{claim.subject}", key=ingest_key.key)

    assert response.status_code == 403
    assert get_json(client, f"/api/v1/programs/{program.slug}/report", key=None).status_code == 401
