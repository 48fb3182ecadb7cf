"""Reads of customer data for the support desk: the search router and the customer 360 page.

Every query here is bounded by one customer (an indexed foreign key) or is an indexed equality / prefix
look-up, so its cost does not grow with the number of customers (docs/support_desk.md).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

from django.apps import apps
from django.db.models import Case, F, IntegerField, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce, Lower

from claims.models import Claim
from payouts.models import Payout
from support_portal.core.masking import mask_email, mask_phone
from support_portal.customers.models import (
    Charge,
    Coupon,
    CouponTransactionKind,
    Customer,
    Login,
    Subscription,
)

# What the 360 page lists per section (each section also shows how many there are in total).
RECENT = 10

_PHONE_LIKE = re.compile(r"^[\d\-\s()+‐－ー−]{6,}$")
_NON_DIGITS = re.compile(r"\D")


class SearchKind(enum.StrEnum):
    EMPTY = "empty"
    EMAIL = "email"
    PHONE = "phone"
    ID_OR_NAME = "id_or_name"


def search_kind(term: str) -> SearchKind:
    term = term.strip()
    if not term:
        return SearchKind.EMPTY
    if "@" in term:
        return SearchKind.EMAIL
    if _PHONE_LIKE.match(term) and len(_NON_DIGITS.sub("", term)) >= 6:
        return SearchKind.PHONE
    return SearchKind.ID_OR_NAME


def phone_digits(term: str) -> str:
    """ "090-1234-5678", "090 1234 5678", "０９０…" → "09012345678" (full-width digits too)."""
    return _NON_DIGITS.sub("", term.translate(_FULL_WIDTH_DIGITS))


_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def customer_search(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Routes each query shape to its index (never a leading-% LIKE):

    - contains "@": email, case-insensitive equality (customer_email_lower_idx on lower(email));
    - phone-like (digits with any hyphens, spaces, parentheses): phone_digits equality
      (customer_phone_digits_idx), or the customer id typed as digits;
    - anything else: the customer id exactly (primary key) or a name prefix (customer_name_prefix_idx,
      varchar_pattern_ops, migration 0004).
    """
    term = term.strip().translate(_FULL_WIDTH_DIGITS)
    match search_kind(term):
        case SearchKind.EMPTY:
            return queryset
        case SearchKind.EMAIL:
            # lower(email) = lower(term), the expression of customer_email_lower_idx (Django's __iexact
            # compiles to UPPER(…) = UPPER(…) on PostgreSQL, which that index cannot serve).
            return queryset.alias(email_lower=Lower("email")).filter(email_lower=term.lower())
        case SearchKind.PHONE:
            return queryset.filter(phone_digits=phone_digits(term)) | queryset.filter(customer_id=term)
        case SearchKind.ID_OR_NAME:
            return queryset.filter(customer_id=term) | queryset.filter(name__startswith=term)


@dataclasses.dataclass(frozen=True)
class Section:
    rows: list[Any]
    total: int

    @property
    def more(self) -> int:
        return max(self.total - len(self.rows), 0)


@dataclasses.dataclass(frozen=True)
class Customer360:
    customer: Customer
    email: str
    phone: str
    contact_masked: bool
    subscriptions: list[Subscription]
    paid_for_others: list[Subscription]
    charges: Section
    logins: Section
    coupons: list[CouponBalance]
    claims: list[Any]
    payouts: list[Any]
    tickets: Section | None
    identity_cases: list[Any]


def _section(queryset: QuerySet[Any], limit: int = RECENT) -> Section:
    rows = list(queryset[: limit + 1])
    if len(rows) <= limit:
        return Section(rows=rows, total=len(rows))
    # More than one page: count, bounded by the customer (an index range, not the whole table).
    return Section(rows=rows[:limit], total=queryset.order_by().count())


@dataclasses.dataclass(frozen=True)
class CouponBalance:
    coupon: Coupon
    balance_jpy: int


def coupons_with_balance(customer: Customer) -> list[CouponBalance]:
    """The customer's coupons with balance = face value + charges − payments + reversals + restorations −
    reversed remedies − balances paid out by a claim (one query)."""
    signed = Case(
        When(
            transactions__kind__in=[
                CouponTransactionKind.PAYMENT,
                CouponTransactionKind.REMEDY_REVERSAL,
                CouponTransactionKind.CASH_OUT,
            ],
            then=-1,
        ),
        default=Value(1),
        output_field=IntegerField(),
    )
    coupons = (
        Coupon.objects.filter(customer=customer)
        .annotate(movements=Coalesce(Sum(signed * F("transactions__amount_jpy")), 0))
        .order_by("-issued_at")
    )
    return [CouponBalance(coupon=coupon, balance_jpy=coupon.face_value_jpy + coupon.movements) for coupon in coupons]


def customer_360(*, customer: Customer, unmasked: bool) -> Customer360:
    """Everything the support desk shows about one customer; `unmasked` only for leads."""

    subscriptions = list(
        Subscription.objects.filter(customer=customer).select_related("plan", "payer").order_by("-started_at")
    )
    paid_for_others = list(
        Subscription.objects.filter(payer=customer).exclude(customer=customer).select_related("plan", "customer")
    )
    charges = _section(
        Charge.objects.filter(subscription__customer=customer)
        .select_related("subscription")
        .order_by("-charged_at", "-charge_id")
    )
    logins = _section(Login.objects.filter(customer=customer).order_by("-logged_in_at"))
    coupons = coupons_with_balance(customer)
    claims = list(Claim.objects.filter(customer=customer).select_related("program").order_by("-computed_at")[:RECENT])
    # The masked code is stored at issue time (PayoutSecret.masked): the page never decrypts.
    payouts = list(
        Payout.objects.filter(payee=customer).select_related("program", "secret").order_by("-created_at")[:RECENT]
    )
    for payout in payouts:
        payout.masked_code = payout.secret.masked if hasattr(payout, "secret") else ""  # type: ignore[attr-defined]
    tickets = None
    if apps.is_installed("support_portal.tickets"):
        ticket_model = apps.get_model("tickets", "Ticket")
        tickets = _section(
            ticket_model.objects.filter(customer=customer).select_related("queue", "assignee").order_by("-created_at")
        )
    identity_model = apps.get_model("identity", "IdentityRecoveryCase")
    identity_cases = list(
        identity_model.objects.filter(customer=customer).select_related("agent").order_by("-created_at")[:5]
    )
    return Customer360(
        customer=customer,
        email=customer.email if unmasked else mask_email(customer.email),
        phone=customer.phone if unmasked else mask_phone(customer.phone),
        contact_masked=not unmasked,
        subscriptions=subscriptions,
        paid_for_others=paid_for_others,
        charges=charges,
        logins=logins,
        coupons=coupons,
        claims=claims,
        payouts=payouts,
        tickets=tickets,
        identity_cases=identity_cases,
    )
