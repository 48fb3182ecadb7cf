"""Refunds to the original payment method: the due date, delay interest and who gets the money how.

Pure code (SPEC "Rules for every refund") except `refund_charge_for`, one read-only query. The provider
seam for refunds is `RefundProvider`, its local simulator `payouts.providers.refund_simulator`.

- **Due date**: the refund request must reach the payment provider within 3 business days of the
  customer's request — by 23:59:59.999999 JST of the 3rd business day after the JST day of the request
  (support_portal/core/business_days.py: the request's own day never counts).
- **Delay interest** when it is sent later: 3 % a year on the refund amount, for the calendar days late,
  on a 365-day year, rounded down to the yen (see `delay_interest_jpy`).
- **Route**: the same payment method as the charge; the payer is refunded when the payer is not the user;
  app-store purchases (apple_iap, google_play) are refused with instructions to ask the store;
  convenience-store and bank-transfer payments have no account to send money back to, so they need the
  payer's bank account (the refund then goes out as a Zengin transfer).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum
from typing import Protocol, runtime_checkable

from claims.engine.common import PROVIDER_REQUEST_BUSINESS_DAYS
from claims.engine.types import APP_STORE_INSTRUCTIONS
from support_portal.core.business_days import BusinessCalendar, jst_date
from support_portal.customers.models import PaymentMethod

REFUND_DUE_BUSINESS_DAYS = PROVIDER_REQUEST_BUSINESS_DAYS  # 3, shared with the claims engine
DELAY_INTEREST_PERCENT_PER_YEAR = 3  # 法定利率 (Civil Code art. 404, 3 % since 2020-04-01)
DAYS_PER_YEAR = 365  # 年365日の日割計算, leap years included

# Methods we can send money back through; the others are the app stores and the ones without an account.
REFUNDABLE_TO_METHOD = frozenset({PaymentMethod.CARD, PaymentMethod.CARRIER, PaymentMethod.POINTS})
NEEDS_BANK_ACCOUNT = frozenset({PaymentMethod.CONVENIENCE, PaymentMethod.BANK})


def refund_due_date(*, requested_at: dt.datetime, calendar: BusinessCalendar) -> dt.datetime:
    """The inclusive deadline (aware, 23:59:59.999999 JST) for sending the refund request to the provider:
    the end of the 3rd business day after the JST day of `requested_at`. Example: a request on Friday
    2026-05-01 counts Thu 5/7, Fri 5/8, Mon 5/11 (5/4-5/6 are Golden Week holidays) → due 2026-05-11
    23:59:59.999999 JST. Naive datetimes are refused (ValueError)."""
    return calendar.due_at(requested_at, REFUND_DUE_BUSINESS_DAYS)


def days_late(*, due_at: dt.datetime, sent_at: dt.datetime) -> int:
    """Calendar days between the JST date of the deadline and the JST date the request was sent (0 when
    on time). Sent any time on the day after the due day = 1 day late. Naive datetimes raise ValueError."""
    due_day, sent_day = jst_date(due_at), jst_date(sent_at)  # both refuse naive values
    if sent_at <= due_at:
        return 0
    return BusinessCalendar.days_late(due_day, sent_day)


def delay_interest_jpy(*, amount_jpy: int, due_at: dt.datetime, sent_at: dt.datetime) -> int:
    """Delay interest (遅延損害金) for a refund request sent after its due date.

    interest = floor(amount_jpy × 3 × days_late / (100 × 365)), computed in integers:
    - days_late: calendar days from the JST due date to the JST date the request was sent (`days_late`);
      0 when `sent_at <= due_at`, so an on-time request owes nothing.
    - 365-day year in every year (leap years too): the usual 日割計算 of Japanese statutory interest.
    - one rounding only, down to the yen (切り捨て), on the whole period — never per day.
    Example: ¥10,000 sent 30 days late → 10000 × 3 × 30 // 36500 = ¥24.
    """
    if isinstance(amount_jpy, bool) or not isinstance(amount_jpy, int) or amount_jpy < 0:
        raise ValueError(f"amount_jpy must be a non-negative whole number of yen, got {amount_jpy!r}")
    late = days_late(due_at=due_at, sent_at=sent_at)
    return amount_jpy * DELAY_INTEREST_PERCENT_PER_YEAR * late // (100 * DAYS_PER_YEAR)


class RefundOutcome(StrEnum):
    REQUESTED = "requested"  # the provider accepted the refund to the original method
    ASK_STORE = "ask_store"  # app-store purchase: the customer asks the store (instructions attached)
    NEEDS_BANK_ACCOUNT = "needs_bank_account"  # convenience store / bank payment: collect an account


@dataclasses.dataclass(frozen=True)
class RefundCharge:
    """The facts of the charge a refund goes back to. `payment_method` is the charge's own method, or the
    subscription's when the charge has none (the same COALESCE as claims.engine.common.CHARGE_COLUMNS);
    `payer_id` is empty when the user paid."""

    charge_id: str
    payment_method: str
    user_id: str
    payer_id: str = ""

    def __post_init__(self) -> None:
        if self.payment_method not in PaymentMethod.values:
            raise ValueError(f"unknown payment method {self.payment_method!r}")
        if not self.charge_id or not self.user_id:
            raise ValueError("charge_id and user_id are required")


@dataclasses.dataclass(frozen=True)
class RefundRoute:
    outcome: RefundOutcome
    payment_method: str
    payee_id: str  # who gets the money: the payer, else the user
    instructions: str = ""


def refund_route(*, charge: RefundCharge) -> RefundRoute:
    """Where a refund of `charge` goes (the payer/payment-method rule of the SPEC)."""
    payee = charge.payer_id or charge.user_id
    method = charge.payment_method
    if method in PaymentMethod.app_store_methods():
        return RefundRoute(RefundOutcome.ASK_STORE, method, payee, APP_STORE_INSTRUCTIONS.get(method, ""))
    if method in NEEDS_BANK_ACCOUNT:
        return RefundRoute(RefundOutcome.NEEDS_BANK_ACCOUNT, method, payee)
    return RefundRoute(RefundOutcome.REQUESTED, method, payee)


@dataclasses.dataclass(frozen=True)
class RefundRequest:
    """One refund sent to a provider: the refund amount plus any delay interest, keyed for idempotency."""

    idempotency_key: str
    charge: RefundCharge
    amount_jpy: int
    interest_jpy: int = 0

    def __post_init__(self) -> None:
        for name in ("amount_jpy", "interest_jpy"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative whole number of yen, got {value!r}")
        if self.amount_jpy == 0:
            raise ValueError("amount_jpy must be positive")
        if not self.idempotency_key:
            raise ValueError("idempotency_key is required")

    @property
    def total_jpy(self) -> int:
        return self.amount_jpy + self.interest_jpy


@dataclasses.dataclass(frozen=True)
class RefundResult:
    """A provider's answer. `reference` is set only for REQUESTED; nothing was sent otherwise."""

    outcome: RefundOutcome
    payment_method: str
    payee_id: str
    amount_jpy: int = 0
    reference: str = ""
    instructions: str = ""


@runtime_checkable
class RefundProvider(Protocol):
    """The refund seam: like PayoutProvider.issue, one refund per idempotency key; asked again with the
    same key it answers the same and sends nothing new; errors are ProviderTemporaryError (retry with the
    same key) or ProviderPermanentError."""

    name: str

    def refund(self, *, request: RefundRequest) -> RefundResult: ...


def refund_charge_for(charge_id: str) -> RefundCharge | None:
    """The RefundCharge of a stored charge (None when it does not exist): one read-only query.

    The refund programs' claim subject is the charge id; this is how a payout service turns it into what
    `RefundProvider.refund` needs. The method is the charge's own, else its subscription's; the payer is
    the subscription's payer when set.
    """
    from support_portal.customers.models import Charge  # noqa: PLC0415 - keeps the rest of this module model-free

    charge = Charge.objects.select_related("subscription").filter(charge_id=charge_id).first()
    if charge is None:
        return None
    subscription = charge.subscription
    return RefundCharge(
        charge_id=charge.charge_id,
        payment_method=charge.payment_method or subscription.payment_method,
        user_id=subscription.customer_id,
        payer_id=subscription.payer_id or "",
    )
