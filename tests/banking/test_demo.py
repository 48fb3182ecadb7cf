"""The demo command: refunds to the original method, bank payouts for pending claims, one transfer file and
the simulated answer imported; idempotent; skipped on SQLite."""

import datetime as dt

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from claims.models import Claim, ClaimDecision, ClaimStatus, Program
from payouts.banking.models import BankAccount, BankingEvent, BankResultImport, RefundRequest, ZenginExport
from payouts.models import Payout, PayoutTransition
from payouts.services import payouts_create_for_approved_claims
from support_portal.core.business_days import JST
from tests.banking.conftest import approved_claim
from tests.claims.factories import ClaimFactory, CouponFactory
from tests.factories import ChargeFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_demo_banking_writes_a_file_and_imports_its_result(bank_program, capsys):
    UserFactory.create(username="root", is_superuser=True)
    for amount in (1000, 2000, 3000, 4000, 5000):
        approved_claim(bank_program, amount=amount)
    payouts_create_for_approved_claims(program=bank_program, actor=None)
    call_command("demo_banking", "--return-every", "5")
    assert BankAccount.objects.count() == 5
    export = ZenginExport.objects.get()
    assert (export.total_count, export.total_amount_jpy) == (5, 15000)
    record = BankResultImport.objects.get()
    assert (record.settled_count, record.failed_count, record.reoffered_count) == (4, 1, 1)
    assert Payout.objects.filter(status="settled").count() == 4
    assert Payout.objects.filter(status="created", offer=2).count() == 1
    assert "export" in capsys.readouterr().out


def _demo_data() -> tuple[Program, Program]:
    """Like the demo: a historical coupon program offering bank transfer with no default method, and a
    refund program whose pending claims were paid by card, carrier, an app store and a convenience store."""
    for username in ("reviewer", "manager", "finance"):
        UserFactory.create(username=username)
    # The program templates exist (claims migrations); the demo's configuration is set on them.
    Program.objects.filter(slug="coupon-outage-2023").update(
        status=Program.Status.OPEN,
        payout_methods=["points:amazon", "bank_transfer"],
        default_payout_method="",
        application_deadline=dt.date(2023, 4, 30),
        receipt_deadline=dt.date(2023, 5, 31),
        second_approval_above_jpy=10000,
    )
    coupon = Program.objects.get(slug="coupon-outage-2023")
    for amount, method in (
        (1000, ""),
        (2000, ""),
        (3000, ""),
        (12000, ""),
        (20000, ""),
        (30000, ""),
        (500, "points:amazon"),
    ):
        coupon_row = CouponFactory.create()  # the claim's subject: approving it records the coupon's remedy
        ClaimFactory.create(
            program=coupon,
            subject=coupon_row.inquiry_number,
            amount_jpy=amount,
            payout_method=method,
            payee=coupon_row.customer,
            customer=coupon_row.customer,
        )
    Program.objects.filter(slug="overpayment").update(
        status=Program.Status.OPEN, payout_methods=["original_method"], default_payout_method="original_method"
    )
    refunds = Program.objects.get(slug="overpayment")
    for amount, method in ((550, "card"), (660, "carrier"), (770, "card"), (880, "apple_iap"), (990, "convenience")):
        charge = ChargeFactory.create(subscription__payment_method=method)
        ClaimFactory.create(
            program=refunds,
            subject=charge.charge_id,
            amount_jpy=amount,
            payout_method="original_method",
            payee=charge.subscription.customer,
            customer=charge.subscription.customer,
        )
    return coupon, refunds


def _snapshot() -> tuple[object, ...]:
    tables = (Payout, PayoutTransition, RefundRequest, ZenginExport, BankResultImport, BankAccount, BankingEvent)
    counts = tuple(model.objects.count() for model in (*tables, ClaimDecision))
    statuses = tuple(Payout.objects.order_by("pk").values_list("status", flat=True))
    claims = tuple(Claim.objects.order_by("pk").values_list("status", flat=True))
    return counts, statuses, claims, tuple(Program.objects.order_by("pk").values_list("receipt_deadline", flat=True))


def test_demo_banking_makes_refunds_and_bank_payouts_from_pending_claims_then_changes_nothing(capsys):
    # given demo-like programs with pending claims only (no bank payout waits for a file)
    coupon, refunds = _demo_data()

    # when the command runs
    call_command("demo_banking", "--return-every", "5")

    # then two card/carrier refunds are sent, the app-store one asks the store, the convenience-store one is
    # re-offered as a bank transfer
    requests = RefundRequest.objects.select_related("payout__claim").order_by("payout__claim__amount_jpy")
    assert [(r.payout.claim.amount_jpy, r.outcome, r.payout.status) for r in requests] == [
        (550, "requested", "issued"),
        (660, "requested", "issued"),
        (880, "ask_store", "failed"),
        (990, "needs_bank_account", "failed"),
    ]
    assert [r.sent_at is not None for r in requests] == [True, True, False, False]
    assert Claim.objects.get(program=refunds, amount_jpy=770).status == ClaimStatus.PENDING_REVIEW
    # the coupon program pays the customers who chose no method by bank transfer, until a new deadline
    coupon.refresh_from_db()
    assert coupon.default_payout_method == "bank_transfer"
    assert coupon.receipt_deadline == timezone.localdate(timezone=JST) + dt.timedelta(days=90)
    # five pending claims approved (above ¥10,000 with the manager's second approval); ¥30,000 and points left
    approved = Claim.objects.filter(program=coupon, status=ClaimStatus.APPROVED).order_by("amount_jpy")
    assert [c.amount_jpy for c in approved] == [1000, 2000, 3000, 12000, 20000]
    assert Claim.objects.filter(program=coupon, status=ClaimStatus.PENDING_REVIEW).count() == 2
    decisions = ClaimDecision.objects.filter(claim__program=coupon).order_by("pk")
    assert [(d.claim.amount_jpy, d.actor.username) for d in decisions] == [
        (1000, "reviewer"),
        (2000, "reviewer"),
        (3000, "reviewer"),
        (12000, "reviewer"),
        (12000, "manager"),
        (20000, "reviewer"),
        (20000, "manager"),
    ]
    # one file with the five coupon transfers and the convenience-store refund, every 5th returned
    export = ZenginExport.objects.get()
    assert (export.total_count, export.total_amount_jpy) == (6, 38990)
    record = BankResultImport.objects.get()
    assert (record.settled_count, record.failed_count, record.reoffered_count) == (5, 1, 1)
    assert BankAccount.objects.count() == 6
    bank = Payout.objects.filter(method="bank_transfer")
    assert sorted(bank.values_list("status", "offer")) == [("created", 2), ("failed", 1)] + [("settled", 1)] * 5
    assert " with 6 transfers (¥38,990" in capsys.readouterr().out

    # when it runs again, then nothing changes
    before = _snapshot()
    call_command("demo_banking")
    assert _snapshot() == before
    out = capsys.readouterr().out
    assert "refunds already there" in out
    assert "transfer file already there" in out


def test_demo_banking_is_skipped_on_sqlite(monkeypatch, capsys):
    # given a database that is not PostgreSQL
    _demo_data()
    monkeypatch.setattr(connection, "vendor", "sqlite")

    # when the command runs, then it says so and writes nothing
    call_command("demo_banking")
    assert capsys.readouterr().out.startswith("demo_banking skipped:")
    monkeypatch.undo()
    assert Payout.objects.count() == RefundRequest.objects.count() == ZenginExport.objects.count() == 0
    assert not Claim.objects.filter(status=ClaimStatus.APPROVED).exists()
