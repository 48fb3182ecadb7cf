"""`coupon-outage-2023`: coupon classes A and B after the payment outage of 2023-02-24 (seed 001).

Balance at an instant T = face value + charges - payments + reversals with occurred_at <= T (instants
given to the second include that whole second). All amounts are ledger integers: no rounding.

Rules (lines):
- `coupon-balance` (key `coupon:<inquiry>`): the balance left at `remedy_expiry_at`, paid when >= ¥1.
- `coupon-restore` (key `coupon-tx:<transaction>`): a class-B erroneous payment restored to the balance
  (B1: confirmed by the store through an agent; B2: every payment after the first of a run of same
  coupon, same store, same amount, each within `duplicate_interval_seconds` of the previous one).
  A payment already reversed in the ledger (a later reversal of the same amount) is not restored, nor
  a detected duplicate an agent rejected (claims.CouponDuplicatePayment, status `rejected`).

Remedy rows in the ledger (kinds `restoration`, `expiry_extension`, written by claims.remedies when a
claim is approved) are never read here: the entitlement is computed from the original ledger.

Class A: original expiry <= `original_expiry_until` and balance at `extended_expiry_at` >= ¥1.
Who applies: coupons in the app and not withdrawn need no application for class A (rule
`not_required_for_app_coupons`); class B always needs the customer's call (a submission).

Set-based: one statement for the outage-window payments with their duplicate check (a LAG window) and
store confirmations, one for reversals of those coupons, and one, streamed, for the balances of every
candidate coupon with its official submission.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Sequence

from claims.engine.common import (
    OFFICIAL_SUBMISSIONS_SQL,
    OfficialSubmission,
    application_reason,
    deadline_end,
    fetch_all,
    payout_method_for,
    scope_param,
    stream_all,
)
from claims.engine.types import Entitlement, Line, Reason
from claims.models import ApplicationRule, Program
from claims.parameters import CouponOutageParameters
from support_portal.core.business_days import BusinessCalendar

RULE_BALANCE = "coupon-balance"
RULE_RESTORE = "coupon-restore"
ONE_SECOND = dt.timedelta(seconds=1)

WINDOW_PAYMENTS_SQL = """
SELECT t.transaction_id, t.coupon_id, t.amount_jpy, t.occurred_at, t.store_name,
       t.previous_at IS NOT NULL AND t.occurred_at - t.previous_at <= %(interval)s
           AND d.status IS DISTINCT FROM 'rejected' AS duplicate,
       cf.id IS NOT NULL AS store_confirmed
  FROM (
      SELECT p.*, lag(p.occurred_at) OVER (
                 PARTITION BY p.coupon_id, p.store_name, p.amount_jpy ORDER BY p.occurred_at, p.transaction_id
             ) AS previous_at
        FROM customers_coupontransaction p
       WHERE p.kind = 'payment'
         AND (%(scope)s::text[] IS NULL OR p.coupon_id = ANY(%(scope)s::text[]))
         AND p.coupon_id IN (SELECT coupon_id FROM customers_coupontransaction
                              WHERE kind = 'payment' AND occurred_at >= %(start)s AND occurred_at < %(end)s)
  ) t
  LEFT JOIN claims_couponpaymentconfirmation cf ON cf.transaction_id = t.transaction_id
  LEFT JOIN claims_couponduplicatepayment d ON d.transaction_id = t.transaction_id
 WHERE t.occurred_at >= %(start)s AND t.occurred_at < %(end)s
 ORDER BY t.coupon_id, t.occurred_at, t.transaction_id
"""

REVERSALS_SQL = """
SELECT coupon_id, amount_jpy, occurred_at FROM customers_coupontransaction
 WHERE kind = 'reversal' AND coupon_id = ANY(%(coupons)s)
 ORDER BY coupon_id, occurred_at, transaction_id
"""

# Every candidate coupon's balances with its official submission, and every submission's subject that is
# no coupon (FULL JOIN: `found` false), in one statement streamed through a server-side cursor.
BALANCES_SQL = f"""
WITH official AS ({OFFICIAL_SUBMISSIONS_SQL})
SELECT COALESCE(b.inquiry_number, o.subject), b.customer_id, b.class_a_expiry, b.in_app,
       b.balance_extended, b.balance_remedy, b.inquiry_number IS NOT NULL AS found,
       o.submission_id, o.submitted_at, o.on_time, o.payout_method, o.reason, o.fault, o.effective_at
  FROM (
      SELECT cp.inquiry_number, cp.customer_id, cp.expires_at <= %(original_until)s AS class_a_expiry,
             cp.via_app AND NOT cp.app_withdrawn AS in_app,
             cp.face_value_jpy + COALESCE(sum(
                 CASE WHEN t.occurred_at < %(extended)s THEN
                      CASE t.kind WHEN 'payment' THEN -t.amount_jpy ELSE t.amount_jpy END END), 0) AS balance_extended,
             cp.face_value_jpy + COALESCE(sum(
                 CASE WHEN t.occurred_at < %(remedy)s THEN
                      CASE t.kind WHEN 'payment' THEN -t.amount_jpy ELSE t.amount_jpy END END), 0) AS balance_remedy
        FROM customers_coupon cp
        LEFT JOIN customers_coupontransaction t
               ON t.coupon_id = cp.inquiry_number AND t.kind IN ('charge', 'payment', 'reversal')
       WHERE (cp.expires_at <= %(original_until)s OR cp.inquiry_number = ANY(%(erroneous)s)
              OR cp.inquiry_number IN (SELECT subject FROM official))
         AND (%(scope)s::text[] IS NULL OR cp.inquiry_number = ANY(%(scope)s::text[]))
       GROUP BY cp.inquiry_number
  ) b
  FULL JOIN official o ON o.subject = b.inquiry_number
"""


@dataclasses.dataclass
class WindowPayment:
    transaction_id: str
    amount_jpy: int
    occurred_at: dt.datetime
    store_name: str
    duplicate: bool
    store_confirmed: bool
    reversed: bool = False


def _erroneous_payments(params: CouponOutageParameters, scope: Sequence[str] | None) -> dict[str, list[WindowPayment]]:
    """Class-B payments per coupon (duplicates, store-confirmed ones), with already-reversed marked."""
    rows = fetch_all(
        WINDOW_PAYMENTS_SQL,
        {
            "start": params.outage_starts_at,
            "end": params.outage_ends_at + ONE_SECOND,
            "interval": dt.timedelta(seconds=params.duplicate_interval_seconds),
            "scope": scope_param(scope),
        },
    )
    by_coupon: dict[str, list[WindowPayment]] = defaultdict(list)
    for transaction_id, coupon_id, amount, occurred_at, store, duplicate, confirmed in rows:
        if duplicate or confirmed:
            by_coupon[coupon_id].append(WindowPayment(transaction_id, amount, occurred_at, store, duplicate, confirmed))
    if by_coupon:
        # Each reversal cancels at most one erroneous payment: the earliest unmatched one of the same
        # amount that happened before it.
        for coupon_id, amount, reversed_at in fetch_all(REVERSALS_SQL, {"coupons": sorted(by_coupon)}):
            for payment in by_coupon[coupon_id]:
                if not payment.reversed and payment.amount_jpy == amount and payment.occurred_at <= reversed_at:
                    payment.reversed = True
                    break
    return by_coupon


def compute(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Each coupon's entitlement as its row arrives (memory holds one fetch and the class-B payments,
    not every coupon of the program)."""
    params = program.typed_parameters()
    assert isinstance(params, CouponOutageParameters)
    erroneous = _erroneous_payments(params, scope)
    query = {
        "program": program.slug,
        "deadline": deadline_end(program),
        "original_until": params.original_expiry_until + ONE_SECOND - dt.timedelta(microseconds=1),
        "extended": params.extended_expiry_at + ONE_SECOND,
        "remedy": params.remedy_expiry_at + ONE_SECOND,
        "erroneous": sorted(erroneous),
        "scope": scope_param(scope),
    }
    for row in stream_all(BALANCES_SQL, query):
        inquiry, customer_id, class_a_expiry, in_app, balance_extended, balance_remedy, found = row[:7]
        submission = OfficialSubmission(row[7], inquiry, *row[8:14]) if row[7] is not None else None
        if not found:
            assert submission is not None  # the FULL JOIN's other side
            yield Entitlement(
                subject=inquiry,
                customer_id=None,
                payee_id=None,
                eligible=False,
                reason=Reason.UNKNOWN_SUBJECT,
                official_submission_id=submission.submission_id,
            )
            continue
        entitlement = _coupon_entitlement(
            program=program,
            params=params,
            inquiry=inquiry,
            customer_id=customer_id,
            class_a=bool(class_a_expiry) and balance_extended >= params.minimum_balance_jpy,
            in_app=bool(in_app),
            balance_remedy=int(balance_remedy),
            payments=erroneous.get(inquiry, []),
            submission=submission,
        )
        if entitlement is not None:
            yield entitlement


def _coupon_entitlement(
    *,
    program: Program,
    params: CouponOutageParameters,
    inquiry: str,
    customer_id: str | None,
    class_a: bool,
    in_app: bool,
    balance_remedy: int,
    payments: list[WindowPayment],
    submission: OfficialSubmission | None,
) -> Entitlement | None:
    class_b = bool(payments)
    if not class_a and not class_b and submission is None:
        return None  # nothing due and nobody asked: not in the report
    entitlement = Entitlement(
        subject=inquiry,
        customer_id=customer_id,
        payee_id=customer_id,
        eligible=False,
        official_submission_id=submission.submission_id if submission else None,
        payout_method=payout_method_for(program, submission),
    )
    # Class B is handled on the customer's call, always with an application.
    b_reason = application_reason(submission, program=program, required=True)
    a_required = program.application_rule == ApplicationRule.REQUIRED or (
        program.application_rule == ApplicationRule.NOT_REQUIRED_FOR_APP_COUPONS and not in_app
    )
    a_reason = application_reason(submission, program=program, required=a_required)
    lines: list[Line] = []
    if class_b and not b_reason:
        restored = [p for p in payments if not p.reversed]
        lines = [
            Line(
                f"restored payment {p.transaction_id} {p.store_name}".strip(),
                p.amount_jpy,
                RULE_RESTORE,
                f"coupon-tx:{p.transaction_id}",
            )
            for p in restored
        ]
    elif not class_a:
        entitlement.reason = b_reason or Reason.NOT_COVERED
        return entitlement
    elif a_reason:
        entitlement.reason = a_reason
        return entitlement
    balance = max(0, balance_remedy)
    if balance >= params.minimum_balance_jpy:
        lines.insert(
            0, Line(f"balance at {params.remedy_expiry_at:%Y-%m-%d %H:%M}", balance, RULE_BALANCE, f"coupon:{inquiry}")
        )
    if not lines:
        entitlement.reason = Reason.USED
        return entitlement
    entitlement.eligible = True
    entitlement.lines = lines
    return entitlement
