"""Proof of equivalence: after any sequence of input changes, an incremental run leaves exactly the rows a
full recompute from the same state leaves — claims, lines, grants, rechecks, history — for all seven policies.

Each hypothesis example builds a small world (members with covered subscriptions and charges, coupons
with outage-window payments, requests to every program), runs every program once (the first run is a
full one: no computation recorded), then applies a random sequence of changes. After each change, for
every program: a full recompute (`recompute=True`) runs inside a savepoint, its rows are read and the
savepoint rolled back; then the incremental run runs on the very same state and must leave the same rows
and write the same number of history rows. By induction from the first (full) run, the incremental
sequence equals the full one at every step. A last check recomputes each program's claims from scratch
(its claims, lines and grants deleted in a savepoint) and compares amounts, lines and grants.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims.models import (
    Claim,
    ClaimLine,
    ClaimStatus,
    CouponPaymentConfirmation,
    Grant,
    Policy,
    SubjectRecheck,
    Submission,
)
from claims.services import CLAIM_COLUMNS, program_run
from support_portal.core.business_days import BusinessCalendar
from support_portal.customers.models import Charge, Login, Subscription, UsageEvent
from tests.claims.factories import (
    CouponFactory,
    CouponPaymentConfirmationFactory,
    CouponTransactionFactory,
    LoginFactory,
    SubmissionFactory,
    UsageEventFactory,
    jst,
    template,
)
from tests.claims.test_program_run import earlier_program
from tests.factories import ChargeFactory, CustomerFactory, PlanFactory, SubscriptionFactory

CALENDAR = BusinessCalendar(first_year=2020, last_year=2030)
SLUGS = [policy.value for policy in Policy]
MEMBERS = 3
COUPONS = 2
START = jst(2025, 2, 7, 9)  # a Friday: overpayment due dates move over the weekend and the holiday


def world() -> dict[str, Any]:
    """Three premium members (Sep-Nov charges, a duplicate October charge for one), two coupons."""
    plan = PlanFactory.create(plan_code="premium")
    members = []
    for index in range(MEMBERS):
        subscription = SubscriptionFactory.create(plan=plan, auto_renew=index != 1)
        for month in (9, 10, 11):
            ChargeFactory.create(
                subscription=subscription,
                charged_at=jst(2024, month, 1, 3),
                period_start=dt.date(2024, month, 1),
                period_end=dt.date(2024, month + 1, 1),
            )
        members.append(subscription)
    ChargeFactory.create(
        subscription=members[0],
        charged_at=jst(2024, 10, 1, 4),
        period_start=dt.date(2024, 10, 1),
        period_end=dt.date(2024, 11, 1),
    )
    LoginFactory.create(customer=members[1].customer, logged_in_at=jst(2024, 10, 20))
    coupons = [CouponFactory.create(via_app=index == 0) for index in range(COUPONS)]
    for coupon in coupons:
        CouponTransactionFactory.create(coupon=coupon, amount_jpy=500, occurred_at=jst(2023, 2, 24, 18))
    # Requests: every member applied for the login outage; one charge of each member asks for a refund
    # under each request-driven policy; the coupon outside the app was called in.
    for subscription in members:
        SubmissionFactory.create(
            program=template(Policy.LOGIN_OUTAGE_2024), subject=subscription.customer_id, submitted_at=jst(2025, 1, 10)
        )
    charges = list(Charge.objects.order_by("charge_id"))
    for offset, slug in enumerate(SLUGS[2:6]):
        for index, charge in enumerate(charges[offset::3]):
            SubmissionFactory.create(
                program=template(slug),
                subject=charge.charge_id,
                submitted_at=charge.charged_at + dt.timedelta(days=3 + 20 * (index % 2)),
                reason="competitor",
                fault="company",
                effective_at=charge.charged_at + dt.timedelta(days=10),
            )
    SubmissionFactory.create(
        program=template(Policy.COUPON_OUTAGE_2023), subject=coupons[1].inquiry_number, submitted_at=jst(2023, 4, 2)
    )
    return {"members": members, "coupons": coupons, "other": None}


def subjects(state: dict[str, Any], slug: str, index: int) -> str:
    """A subject of the program's kind: a customer, a charge or a coupon (index wraps around)."""
    if slug == Policy.LOGIN_OUTAGE_2024:
        return state["members"][index % MEMBERS].customer_id
    if slug == Policy.COUPON_OUTAGE_2023:
        return state["coupons"][index % COUPONS].inquiry_number
    charges = list(Charge.objects.order_by("charge_id").values_list("charge_id", flat=True))
    return charges[index % len(charges)]


# --- the changes -------------------------------------------------------------------------------------


def add_login(state, member: int, day: int) -> None:
    Login.objects.get_or_create(
        customer=state["members"][member].customer, logged_in_at=jst(2024, 8, 1) + dt.timedelta(days=day)
    )


def delete_logins(state, member: int, _day: int) -> None:
    Login.objects.filter(customer=state["members"][member].customer).delete()


def add_charge(state, member: int, day: int) -> None:
    month = 9 + day % 4
    ChargeFactory.create(
        subscription=state["members"][member],
        amount_jpy=100 + day,
        charged_at=jst(2024, month, 2, 3),
        period_start=dt.date(2024, month, 1),
        period_end=dt.date(2024 + (month == 12), month % 12 + 1, 1),
        promotional=day % 5 == 0,
    )


def change_charge(state, member: int, day: int) -> None:
    charge = Charge.objects.filter(subscription=state["members"][member]).order_by("charge_id")[day % 3]
    Charge.objects.filter(pk=charge.pk).update(amount_jpy=300 + day)


def submit(state, member: int, day: int) -> None:
    slug = SLUGS[day % len(SLUGS)]
    # Around each program's deadline (login: 2025-01-31, coupon: 2023-04-30), or a refund's windows
    submitted_at: dt.datetime = {
        str(Policy.LOGIN_OUTAGE_2024): jst(2025, 1, 20, 12) + dt.timedelta(days=day % 20),
        str(Policy.COUPON_OUTAGE_2023): jst(2023, 4, 20, 12) + dt.timedelta(days=day % 20),
    }.get(slug, jst(2024, 9, 1 + day % 30, 12) + dt.timedelta(days=member * 20))
    SubmissionFactory.create(
        program=template(slug),
        subject=subjects(state, slug, member + day),
        submitted_at=submitted_at,
        reason=("competitor", "price", "fraud", "")[day % 4],
        fault=("", "company", "member")[day % 3],
        effective_at=jst(2024, 10, 1 + day % 28) if day % 2 else None,
        payout_method=("atm_cash", "bank_transfer", "")[day % 3],
    )


def resubmit_late(state, member: int, day: int) -> None:
    """The subject's submissions move a year later (after every deadline): a submission is never deleted
    once a claim names it, but its data may change."""
    slug = SLUGS[day % len(SLUGS)]
    Submission.objects.filter(program_id=slug, subject=subjects(state, slug, member + day)).update(
        submitted_at=jst(2025, 12, 1)
    )


def coupon_payment(state, member: int, day: int) -> None:
    CouponTransactionFactory.create(
        coupon=state["coupons"][member % COUPONS],
        amount_jpy=500,
        occurred_at=jst(2023, 2, 24, 18) + dt.timedelta(seconds=30 * (1 + day % 8)),
    )


def confirm_payment(state, member: int, day: int) -> None:
    transaction_row = (
        apps.get_model("customers", "CouponTransaction")
        .objects.filter(coupon=state["coupons"][member % COUPONS], kind="payment")
        .order_by("transaction_id")
        .last()
    )
    if (
        transaction_row is not None
        and not CouponPaymentConfirmation.objects.filter(transaction=transaction_row).exists()
    ):
        CouponPaymentConfirmationFactory.create(transaction=transaction_row)


def decide(state, member: int, day: int) -> None:
    slug = SLUGS[day % len(SLUGS)]
    claim = Claim.objects.filter(program__slug=slug).order_by("subject").first()
    if claim is not None:
        status = (ClaimStatus.APPROVED, ClaimStatus.REJECTED, ClaimStatus.PENDING_REVIEW)[member]
        Claim.objects.filter(pk=claim.pk).update(status=status, approved_amount_jpy=claim.amount_jpy)


def other_program_runs(state, member: int, day: int) -> None:
    """Another login-outage program (Oct-Nov) runs: it takes or releases the months it now covers."""
    if state["other"] is None:
        state["other"] = earlier_program(("2024-10", "2024-11"), slug="other-program")
    program_run(program=state["other"], actor=None, as_of=state["as_of"], calendar=CALENDAR)


def usage(state, member: int, day: int) -> None:
    customer = state["members"][member].customer
    used_at = jst(2024, 9, 1 + day % 28, 12)
    if not UsageEvent.objects.filter(customer=customer, used_at=used_at).exists():
        UsageEventFactory.create(customer=customer, used_at=used_at)


def change_payer(state, member: int, _day: int) -> None:
    Subscription.objects.filter(pk=state["members"][member].pk).update(payer=CustomerFactory.create())


def raw_sql_login(state, member: int, day: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_login (customer_id, logged_in_at) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            [state["members"][member].customer_id, jst(2024, 9, 1) + dt.timedelta(days=day)],
        )


def next_day(state, member: int, day: int) -> None:
    state["as_of"] += dt.timedelta(days=1 + day % 3)


CHANGES = [
    add_login,
    delete_logins,
    add_charge,
    change_charge,
    submit,
    resubmit_late,
    coupon_payment,
    confirm_payment,
    decide,
    other_program_runs,
    usage,
    change_payer,
    raw_sql_login,
    next_day,
]

change_steps = st.lists(
    st.tuples(st.sampled_from(CHANGES), st.integers(0, MEMBERS - 1), st.integers(0, 120)), min_size=1, max_size=4
)


# --- the rows compared -------------------------------------------------------------------------------


def history_count() -> int:
    return sum(
        apps.get_model("claims", name).objects.count() for name in ("ClaimEvent", "ClaimLineEvent", "GrantEvent")
    )


def rows(program) -> dict[str, Any]:
    claims = {
        c["subject"]: c
        for c in Claim.objects.filter(program=program).values(
            "subject", "status", "approved_amount_jpy", "computed_at", *CLAIM_COLUMNS
        )
    }
    lines = sorted(
        ClaimLine.objects.filter(claim__program=program).values_list(
            "claim__subject", "position", "label", "amount_jpy", "rule", "grant_key", "excluded_reason"
        )
    )
    grants = sorted(Grant.objects.values_list("program__slug", "grant_key", "subject", "amount_jpy"))
    rechecks = sorted(SubjectRecheck.objects.filter(program=program).values_list("subject", "recheck_on"))
    return {"claims": claims, "lines": lines, "grants": grants, "rechecks": rechecks}


def full_recompute(program, as_of) -> tuple[dict[str, Any], int]:
    """The rows and history rows a full recompute leaves from the current state (then undone)."""
    savepoint = transaction.savepoint()
    before = history_count()
    program_run(program=program, actor=None, as_of=as_of, calendar=CALENDAR, recompute=True)
    result = rows(program), history_count() - before
    transaction.savepoint_rollback(savepoint)
    return result


def from_scratch(program, as_of) -> dict[str, Any]:
    """Amounts, lines and grants of a first run: the program's claims, lines and grants deleted first."""
    savepoint = transaction.savepoint()
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM claims_mergeoffer m USING claims_claim c WHERE c.id = m.claim_id AND c.program_id = %(p)s;"
            "DELETE FROM claims_claimline l USING claims_claim c WHERE c.id = l.claim_id AND c.program_id = %(p)s;"
            "DELETE FROM claims_claim WHERE program_id = %(p)s; DELETE FROM claims_grant WHERE program_id = %(p)s;"
            "DELETE FROM claims_programcomputation WHERE program_id = %(p)s;",
            {"p": program.pk},
        )
    program_run(program=program, actor=None, as_of=as_of, calendar=CALENDAR)
    result = rows(program)
    transaction.savepoint_rollback(savepoint)
    return result


def without_decisions(result: dict[str, Any]) -> dict[str, Any]:
    """What a first run decides: everything but the reviewers' status and approved amount, and the day
    the claim was last computed (a first run today dates every claim today)."""
    claims = {
        subject: {k: v for k, v in claim.items() if k not in {"status", "approved_amount_jpy", "computed_at"}}
        for subject, claim in result["claims"].items()
    }
    return {**result, "claims": claims}


@pytest.mark.django_db
@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=change_steps)
def test_incremental_runs_equal_a_full_recompute_after_any_changes(steps):
    with transaction.atomic():
        state = world()
        state["as_of"] = START
        programs = [template(slug) for slug in SLUGS]
        for program in programs:
            first = program_run(program=program, actor=None, as_of=START, calendar=CALENDAR)
            assert first.scope is None  # nothing recorded yet: a full run

        for change, member, day in steps:
            change(state, member, day)
            for program in programs:
                expected, expected_history = full_recompute(program, state["as_of"])
                before = history_count()
                result = program_run(program=program, actor=None, as_of=state["as_of"], calendar=CALENDAR)
                # incremental, but after a new program row (a change not traced to subjects: every subject)
                assert result.scope is not None or change is other_program_runs
                assert (change.__name__, program.slug, rows(program)) == (change.__name__, program.slug, expected)
                assert (program.slug, history_count() - before) == (program.slug, expected_history)
                # and a second incremental run right after finds nothing to do
                again = program_run(program=program, actor=None, as_of=state["as_of"], calendar=CALENDAR)
                assert (program.slug, again.computed) == (program.slug, False)

        for program in programs:
            if not Claim.objects.filter(program=program).exclude(status=ClaimStatus.COMPUTED).exists():
                assert (program.slug, without_decisions(rows(program))) == (
                    program.slug,
                    without_decisions(from_scratch(program, state["as_of"])),
                )
        transaction.set_rollback(True)
