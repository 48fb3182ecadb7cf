"""The audit viewer: one timeline per claim or payout (changes, decisions, payout transitions), CSV export."""

import csv
import io

import pytest
from django.contrib.auth.models import Group

from claims.review import claim_approve
from payouts.models import Payout
from payouts.services import payouts_create_for_approved_claims
from support_portal.accounts.audit_trail import audit_timeline
from support_portal.accounts.models import ExportRecord
from tests.claims.factories import ClaimFactory, ReviewProgramFactory
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

URL = "/admin/accounts/securityevent/audit-trail/"


def _staff(username: str, role: str):
    user = UserFactory.create(username=username)
    user.groups.set([Group.objects.get(name=role)])
    return user


@pytest.fixture
def paid_claim():
    # Given a claim approved by a reviewer and paid out by finance
    reviewer = _staff("rev-1", "reviewer")
    finance = _staff("fin-1", "finance")
    program = ReviewProgramFactory.create(payout_methods=["atm_cash"], default_payout_method="atm_cash")
    claim = ClaimFactory.create(program=program, amount_jpy=3000, payee=CustomerFactory.create())
    claim_approve(claim=claim, actor=reviewer, note="=cmd|' /C calc'!A0")
    payouts_create_for_approved_claims(program=program, actor=finance)
    return claim


def test_claim_timeline_merges_changes_decisions_and_payouts(paid_claim):
    payout = Payout.objects.get(claim=paid_claim)

    entries = audit_timeline(kind="claim", object_id=paid_claim.pk)

    assert entries is not None
    rows = [(e.source, e.object, e.actor, e.what) for e in entries]
    # the decision, the claim's own change events, and the payout's creation — who and what
    assert ("decision", f"claim {paid_claim.pk}", "rev-1", "approve") in rows
    assert ("change", f"claim {paid_claim.pk}", "rev-1", "update") in rows
    assert any(source == "change" and obj == f"payout {payout.pk}" for source, obj, _a, _w in rows)
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    approve = next(e for e in entries if e.source == "decision")
    assert "pending_review → approved" in approve.details
    assert "amount_jpy=3000" in approve.details


def test_payout_timeline_and_missing_objects(paid_claim):
    payout = Payout.objects.get(claim=paid_claim)
    entries = audit_timeline(kind="payout", object_id=payout.pk)
    assert entries is not None
    assert {e.object for e in entries} == {f"payout {payout.pk}"}
    assert audit_timeline(kind="payout", object_id=987654) is None
    assert audit_timeline(kind="claim", object_id=987654) is None


def test_manager_sees_the_page_and_exports_csv_which_is_audited(paid_claim, client):
    manager = _staff("mgr-1", "manager")
    client.force_login(manager)

    page = client.get(URL, {"kind": "claim", "object_id": paid_claim.pk})
    assert page.status_code == 200
    assert 'id="audit-trail"' in page.text and "rev-1" in page.text
    assert not ExportRecord.objects.exists()

    export = client.get(URL, {"kind": "claim", "object_id": paid_claim.pk, "export": "csv"})

    assert export.status_code == 200
    assert export["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(export.content.decode())))
    assert rows[0] == ["at", "actor", "object", "source", "what", "details"]
    assert len(rows) - 1 == len(audit_timeline(kind="claim", object_id=paid_claim.pk) or [])
    # no cell starts a spreadsheet formula (the note began with "=")
    assert not any(cell[:1] in ("=", "+", "-", "@") for row in rows[1:] for cell in row)
    record = ExportRecord.objects.get()
    assert (record.actor, record.what, record.row_count) == (
        manager,
        f"audit trail of claim {paid_claim.pk} (CSV)",
        len(rows) - 1,
    )


@pytest.mark.parametrize("role", ["agent", "reviewer", "finance"])
def test_other_roles_are_refused_and_nothing_is_exported(paid_claim, client, role):
    client.force_login(_staff(f"{role}-x", role))
    response = client.get(URL, {"kind": "claim", "object_id": paid_claim.pk, "export": "csv"})
    assert response.status_code == 403
    assert not ExportRecord.objects.exists()


def test_unknown_object_says_so(client):
    client.force_login(_staff("mgr-2", "manager"))
    response = client.get(URL, {"kind": "payout", "object_id": 424242})
    assert response.status_code == 200
    assert "errornote" in response.text
    assert client.get(URL, {"kind": "nope", "object_id": "x; DROP"}).status_code == 200
