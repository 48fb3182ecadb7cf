"""Demo data in the FORMATS.md import files, deterministic for a seed, for any number of customers.

Customers are generated in fixed-size chunks. Each chunk draws from its own `random.Random` seeded by
(seed, chunk number) and yields every row that belongs to its customers: their subscriptions,
charges, logins, usage, coupons and submissions. So memory is bounded by one chunk per worker, chunks
can be built in parallel processes, and the output is byte-identical whatever the number of workers.

The shape follows SPEC.md: about 1 in 5 customers without e-mail (and those more often never log in
again after the 2024 outage), about 1.2 subscriptions and 8 charges per customer over 2024-04..2025-03,
a few promotional and double charges, coupons with payments and duplicates in the 2023-02-24 outage
window, and submissions for all seven programs including repeats and late ones.
"""

import csv
import io
import multiprocessing
import os
import random
from bisect import bisect
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from pathlib import Path

from support_portal.core.demo.vocabulary import (
    AUTORENEW_REASONS,
    DAY_STR,
    EMAIL_DOMAINS,
    FACE_VALUES_JPY,
    FAMILY_NAMES,
    GIVEN_NAMES,
    LANDLINE_AREAS,
    LOGIN_OUTAGE_PLAN_CODES,
    MOBILE_PREFIXES,
    MONTH_FIRST_DAY,
    MONTH_OF_DAY,
    PAYMENT_METHODS,
    PLANS,
    POINT_PAYOUTS,
    PREFECTURES,
    STORES,
    TIME_STR,
    Billing,
    PlanSpec,
    day_index,
    month_index,
)

# The files in the order `import_records` loads them, with their FORMATS.md columns.
FILE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "name", "email", "phone", "created_at"),
    "plans": ("plan_code", "name", "monthly_fee_jpy"),
    "subscriptions": (
        "subscription_id",
        "customer_id",
        "plan_code",
        "payer_customer_id",
        "payment_method",
        "started_at",
        "ended_at",
        "auto_renew",
    ),
    "charges": (
        "charge_id",
        "subscription_id",
        "amount_jpy",
        "charged_at",
        "period_start",
        "period_end",
        "payment_method",
        "promotional",
    ),
    "logins": ("customer_id", "logged_in_at"),
    "usage_events": ("customer_id", "subscription_id", "used_at"),
    "coupons": (
        "inquiry_number",
        "customer_id",
        "prefecture",
        "face_value_jpy",
        "issued_at",
        "expires_at",
        "via_app",
        "app_withdrawn",
    ),
    "coupon_transactions": ("transaction_id", "inquiry_number", "kind", "amount_jpy", "occurred_at", "store_name"),
    "submissions": (
        "submission_id",
        "program",
        "subject",
        "submitted_at",
        "channel",
        "contact_email",
        "contact_phone",
        "payout_method",
        "reason",
        "fault",
        "effective_at",
    ),
}
FILE_NAMES: tuple[str, ...] = tuple(f"{name}.csv" for name in FILE_COLUMNS)
# Files produced per chunk (plans is a fixed table written once).
CHUNKED_FILES: tuple[str, ...] = tuple(name for name in FILE_COLUMNS if name != "plans")

# Fixed, so that the output does not depend on how many processes build it.
CHUNK_CUSTOMERS = 2000

TRUE, FALSE = "true", "false"

# -- Calendar anchors (day and month indexes of vocabulary's tables) ---------------------------------
CHARGE_FIRST_MONTH = month_index(2024, 4)  # "a year of monthly charges": 2024-04 .. 2025-03
CHARGE_LAST_MONTH = month_index(2025, 3)
CUSTOMERS_FROM_DAY = day_index(date(2019, 1, 1))
CUSTOMERS_EARLY_UNTIL_DAY = day_index(date(2024, 3, 31))
CUSTOMERS_UNTIL_DAY = day_index(date(2025, 1, 31))
PRE_OUTAGE_LOGIN_FROM_DAY = day_index(date(2024, 3, 1))
OUTAGE_START_DAY = day_index(date(2024, 6, 8))
RESTORED_DAY = day_index(date(2024, 8, 5))
LOGINS_UNTIL_DAY = day_index(date(2025, 3, 31))
# First login after restoration: most come back soon, a tail takes months (2024-08 .. 2025-02).
FIRST_LOGIN_MONTHS: tuple[int, ...] = tuple(month_index(2024, 8) + offset for offset in range(7))
FIRST_LOGIN_MONTH_CUMULATIVE: tuple[int, ...] = tuple(accumulate((38, 20, 13, 10, 8, 6, 5)))
LOGIN_OUTAGE_COVERED_FROM_MONTH = month_index(2024, 6)
LOGIN_OUTAGE_COVERED_UNTIL_MONTH = month_index(2024, 12)
LOGIN_OUTAGE_APPLY_FROM_DAY = day_index(date(2024, 9, 1))
LOGIN_OUTAGE_DEADLINE_DAY = day_index(date(2025, 1, 31))

COUPON_ISSUE_FROM_DAY = day_index(date(2023, 1, 10))
OUTAGE_DAY_2023 = day_index(date(2023, 2, 24))
COUPON_OUTAGE_APPLY_FROM_DAY = day_index(date(2023, 3, 1))
COUPON_OUTAGE_DEADLINE_DAY = day_index(date(2023, 4, 30))
OUTAGE_WINDOW_START_SECOND = 16 * 3600
OUTAGE_WINDOW_END_SECOND = 23 * 3600 + 59 * 60
COUPON_EXPIRIES: tuple[tuple[float, str], ...] = (
    (0.35, "2023-02-24T23:59:00+09:00"),  # original expiry on the outage day
    (0.65, "2023-02-26T23:59:00+09:00"),  # already extended by two days (class A candidates)
    (0.85, "2023-03-31T23:59:00+09:00"),
    (1.00, "2023-06-30T23:59:00+09:00"),
)
# Inquiry numbers: 12 digits from a bijection of a serial, so they look random yet never collide.
INQUIRY_MODULUS = 9 * 10**11
INQUIRY_MULTIPLIER = 7_777_777_777  # coprime to 2, 3 and 5, hence to the modulus
INQUIRY_OFFSET = 123_456_789_011

PLAN_CUMULATIVE: tuple[int, ...] = tuple(accumulate(plan.weight for plan in PLANS))
METHOD_NAMES: tuple[str, ...] = tuple(name for name, _ in PAYMENT_METHODS)
METHOD_CUMULATIVE: tuple[int, ...] = tuple(accumulate(weight for _, weight in PAYMENT_METHODS))
APP_STORE_METHODS = frozenset({"apple_iap", "google_play"})
REASON_NAMES: tuple[str, ...] = tuple(name for name, _ in AUTORENEW_REASONS)
REASON_CUMULATIVE: tuple[int, ...] = tuple(accumulate(weight for _, weight in AUTORENEW_REASONS))


def inquiry_number(serial: int) -> str:
    return str(10**11 + (serial * INQUIRY_MULTIPLIER + INQUIRY_OFFSET) % INQUIRY_MODULUS)


@dataclass(slots=True)
class _Charge:
    charge_id: str
    period_start_day: int
    period_end_day: int
    promotional: bool
    # 0 for the subscription's first charge ever, then 1, 2, ...: renewals are those above 0.
    cycle: int


@dataclass(slots=True)
class _ChunkRows:
    """The rows of one chunk, per file (plans excluded)."""

    customers: list[tuple[object, ...]] = field(default_factory=list)
    subscriptions: list[tuple[object, ...]] = field(default_factory=list)
    charges: list[tuple[object, ...]] = field(default_factory=list)
    logins: list[tuple[object, ...]] = field(default_factory=list)
    usage_events: list[tuple[object, ...]] = field(default_factory=list)
    coupons: list[tuple[object, ...]] = field(default_factory=list)
    coupon_transactions: list[tuple[object, ...]] = field(default_factory=list)
    submissions: list[tuple[object, ...]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChunkText:
    """One chunk rendered as CSV text (no header) per file, with its row counts."""

    text: dict[str, str]
    rows: dict[str, int]


class _ChunkBuilder:
    """Generates all rows of the customers in one chunk from one random stream."""

    def __init__(self, *, seed: int, chunk: int, total_customers: int) -> None:
        # Demo data, not secrets: a seeded, reproducible generator is the point.
        self.rng = random.Random(f"demo:{seed}:{chunk}")  # noqa: S311
        self.random = self.rng.random
        self.total_customers = total_customers
        self.out = _ChunkRows()

    # -- small helpers ---------------------------------------------------------------------------
    def _pick(self, values: Sequence[str]) -> str:
        return values[int(self.random() * len(values))]

    def _instant(self, day: int, second: int | None = None) -> str:
        if second is None:
            second = int(self.random() * 86400)
        return DAY_STR[day] + TIME_STR[second]

    def _daytime_instant(self, day: int) -> str:
        # Requests and calls arrive in waking hours (08:00-22:59).
        return DAY_STR[day] + TIME_STR[28800 + int(self.random() * 54000)]

    # -- one customer ----------------------------------------------------------------------------
    def add_customer(self, index: int) -> None:
        rnd = self.random
        customer_id = f"C{index:08d}"
        has_email = rnd() >= 0.2
        family_kanji, family_romaji = FAMILY_NAMES[int(rnd() * len(FAMILY_NAMES))]
        given_kanji, given_romaji = GIVEN_NAMES[int(rnd() * len(GIVEN_NAMES))]
        name = family_kanji + ("　" if rnd() < 0.1 else " ") + given_kanji
        email = ""
        if has_email:
            local = f"{given_romaji}.{family_romaji}{index}"
            if rnd() < 0.03:  # some source systems keep the case the customer typed
                local = local.capitalize()
            email = f"{local}@{self._pick(EMAIL_DOMAINS)}"
        phone = self._phone(0.9 if not has_email else 0.7)
        if rnd() < 0.85:
            created_day = CUSTOMERS_FROM_DAY + int(rnd() * (CUSTOMERS_EARLY_UNTIL_DAY - CUSTOMERS_FROM_DAY))
        else:
            created_day = CUSTOMERS_EARLY_UNTIL_DAY + 1 + int(rnd() * (CUSTOMERS_UNTIL_DAY - CUSTOMERS_EARLY_UNTIL_DAY))
        self.out.customers.append((customer_id, name, email, phone, self._instant(created_day)))

        charges_by_subscription: list[tuple[str, PlanSpec, list[_Charge]]] = []
        subscription_count = 1 + (rnd() < 0.17) + (rnd() < 0.03)
        for number in range(1, subscription_count + 1):
            charges_by_subscription.append(self._subscription(index, customer_id, number, created_day))

        self._logins(customer_id, has_email, created_day)
        self._usage(customer_id, charges_by_subscription)
        submission_serial = self._charge_submissions(customer_id, charges_by_subscription, 0)
        submission_serial = self._login_outage_submissions(
            index,
            customer_id,
            email=email,
            phone=phone,
            subscriptions=charges_by_subscription,
            serial=submission_serial,
        )
        if rnd() < 0.05:
            submission_serial = self._coupon(
                index, 2 * index, customer_id=customer_id, email=email, phone=phone, submission_serial=submission_serial
            )
        if rnd() < 0.012:  # paper coupons nobody linked to an account
            self._coupon(index, 2 * index + 1, customer_id="", email="", phone="", submission_serial=submission_serial)

    def _phone(self, probability: float) -> str:
        rnd = self.random
        if rnd() >= probability:
            return ""
        shape = rnd()
        if shape < 0.75:
            prefix = self._pick(MOBILE_PREFIXES)
            middle, last = int(rnd() * 9000) + 1000, int(rnd() * 10000)
            return f"{prefix}-{middle}-{last:04d}" if shape < 0.45 else f"{prefix}{middle}{last:04d}"
        area = self._pick(LANDLINE_AREAS)
        local_width = 10 - len(area)  # Japanese landline numbers have ten digits in total
        digits = str(10 ** (local_width - 1) + int(rnd() * 9 * 10 ** (local_width - 1)))
        return f"{area}-{digits[:-4]}-{digits[-4:]}"

    def _subscription(
        self, index: int, customer_id: str, number: int, created_day: int
    ) -> tuple[str, PlanSpec, list[_Charge]]:
        rnd = self.random
        plan = PLANS[bisect(PLAN_CUMULATIVE, rnd() * PLAN_CUMULATIVE[-1])]
        method = METHOD_NAMES[bisect(METHOD_CUMULATIVE, rnd() * METHOD_CUMULATIVE[-1])]
        subscription_id = f"S{index:08d}{number}"
        payer_id = ""
        if rnd() < 0.03 and self.total_customers > 1:  # a family member or employer pays
            payer_index = 1 + int(rnd() * self.total_customers)
            if payer_index == index:
                payer_index = index % self.total_customers + 1
            payer_id = f"C{payer_index:08d}"
        # Billing runs at the same time of day every cycle (a batch early in the morning, mostly).
        billing_second = int(rnd() * 21600) if rnd() < 0.8 else int(rnd() * 86000)
        start, last, cycle_months, first_cycle, auto_renew = self._schedule(plan, created_day)
        ended = last < CHARGE_LAST_MONTH or (cycle_months == 12 and not auto_renew)
        end_month = last + cycle_months if ended else 0
        # A subscription ending after the data ends is still running as far as the files know.
        ended_at = ""
        if ended and end_month <= CHARGE_LAST_MONTH + 1:
            ended_at = DAY_STR[MONTH_FIRST_DAY[end_month]] + TIME_STR[0]
            auto_renew = False
        started_at = self._instant(MONTH_FIRST_DAY[start], billing_second)
        self.out.subscriptions.append(
            (
                subscription_id,
                customer_id,
                plan.code,
                payer_id,
                method,
                started_at,
                ended_at,
                TRUE if auto_renew else FALSE,
            )
        )
        charges = self._charges(
            subscription_id,
            plan,
            method=method,
            first_month=start + first_cycle * cycle_months,
            last_month=last,
            cycle_months=cycle_months,
            first_cycle=first_cycle,
            billing_second=billing_second,
            charge_prefix=f"CH{index:08d}{number}",
        )
        return subscription_id, plan, charges

    def _schedule(self, plan: PlanSpec, created_day: int) -> tuple[int, int, int, int, bool]:
        """(first month, last charged month, months per cycle, cycle of the first charge in the data, auto-renew)."""
        rnd = self.random
        if plan.billing is Billing.MONTHLY:
            before_window = rnd() < 0.6
            start = CHARGE_FIRST_MONTH - 1 - int(rnd() * 24) if before_window else CHARGE_FIRST_MONTH + int(rnd() * 12)
            cycle_months = 1
            auto_renew = rnd() < 0.93
            cancelled = rnd() < 0.35
            last = max(start, CHARGE_FIRST_MONTH) + int(rnd() * 12) if cancelled else CHARGE_LAST_MONTH
        else:
            if plan.billing is Billing.YEARLY_AUTORENEW:
                # Mostly bought a year before the window, so the renewal falls inside it.
                start = CHARGE_FIRST_MONTH - 12 + int(rnd() * 24)
                auto_renew = rnd() < 0.92
            else:
                start = CHARGE_FIRST_MONTH - 11 + int(rnd() * 23)
                auto_renew = rnd() < 0.7
            cycle_months = 12
            last = CHARGE_LAST_MONTH if auto_renew else start
        # Not before the customer existed; joined mid-month: the first full month is the next one.
        created_month = MONTH_OF_DAY[created_day]
        if start <= created_month:
            start = created_month + (1 if MONTH_FIRST_DAY[created_month] != created_day else 0)
        last = min(max(last, start), CHARGE_LAST_MONTH)
        # Monthly charges are generated for the data window only; long licences from their start.
        first_cycle = max(0, CHARGE_FIRST_MONTH - start) if cycle_months == 1 else 0
        return start, last, cycle_months, first_cycle, auto_renew

    def _charges(
        self,
        subscription_id: str,
        plan: PlanSpec,
        *,
        method: str,
        first_month: int,
        last_month: int,
        cycle_months: int,
        first_cycle: int,
        billing_second: int,
        charge_prefix: str,
    ) -> list[_Charge]:
        rnd = self.random
        rows = self.out.charges
        charges: list[_Charge] = []
        price = plan.monthly_fee_jpy if cycle_months == 1 else plan.yearly_price_jpy
        can_switch_method = method not in APP_STORE_METHODS
        serial = 0
        cycle = first_cycle
        month = first_month
        while month <= last_month:
            period_start, period_end = MONTH_FIRST_DAY[month], MONTH_FIRST_DAY[month + cycle_months]
            amount, promotional = price, False
            draw = rnd()
            if cycle == 0 and draw < 0.08:  # free first month of a campaign
                amount, promotional = 0, True
            elif draw < 0.012:  # discount campaign
                amount, promotional = price // 2, True
            charge_method = ""
            if can_switch_method and rnd() < 0.02:
                charge_method = "convenience" if method == "card" else "card"
            second = min(billing_second + int(rnd() * 600), 86399)
            serial += 1
            charge_id = f"{charge_prefix}{serial:02d}"
            period_start_text, period_end_text = DAY_STR[period_start], DAY_STR[period_end]
            rows.append(
                (
                    charge_id,
                    subscription_id,
                    amount,
                    DAY_STR[period_start] + TIME_STR[second],
                    period_start_text,
                    period_end_text,
                    charge_method,
                    TRUE if promotional else FALSE,
                )
            )
            charges.append(_Charge(charge_id, period_start, period_end, promotional, cycle))
            if not promotional and rnd() < 0.003:  # the billing batch ran twice: an overpayment
                serial += 1
                duplicate_id = f"{charge_prefix}{serial:02d}"
                duplicate_second = min(second + 60 + int(rnd() * 3600), 86399)
                rows.append(
                    (
                        duplicate_id,
                        subscription_id,
                        amount,
                        DAY_STR[period_start] + TIME_STR[duplicate_second],
                        period_start_text,
                        period_end_text,
                        charge_method,
                        FALSE,
                    )
                )
                charges.append(_Charge(duplicate_id, period_start, period_end, False, -1))
            month += cycle_months
            cycle += 1
        return charges

    def _logins(self, customer_id: str, has_email: bool, created_day: int) -> None:
        rnd = self.random
        rows = self.out.logins
        if rnd() < 0.7 and created_day < OUTAGE_START_DAY:
            day = max(created_day, PRE_OUTAGE_LOGIN_FROM_DAY) + 1
            day += int(rnd() * max(1, OUTAGE_START_DAY - day))
            rows.append((customer_id, self._instant(day)))
        # Without a working e-mail the password reset is impossible: many never come back.
        if rnd() < (0.4 if not has_email else 0.09):
            return
        month = FIRST_LOGIN_MONTHS[bisect(FIRST_LOGIN_MONTH_CUMULATIVE, rnd() * FIRST_LOGIN_MONTH_CUMULATIVE[-1])]
        first_day = max(MONTH_FIRST_DAY[month], RESTORED_DAY)
        day = first_day + int(rnd() * (MONTH_FIRST_DAY[month + 1] - first_day))
        day = max(day, created_day + 1)
        rows.append((customer_id, self._instant(day)))
        if rnd() < 0.5:
            later = day + 1 + int(rnd() * 60)
            if later <= LOGINS_UNTIL_DAY:
                rows.append((customer_id, self._instant(later)))

    def _usage(self, customer_id: str, subscriptions: list[tuple[str, PlanSpec, list[_Charge]]]) -> None:
        rnd = self.random
        rows = self.out.usage_events
        for subscription_id, _plan, charges in subscriptions:
            if not charges or rnd() >= 0.3:
                continue
            seen: set[tuple[int, int]] = set()
            for _ in range(1 + int(rnd() * 3)):
                charge = charges[int(rnd() * len(charges))]
                # Days 0..19 of the period: about a third fall inside the 7-day cooling-off.
                day = charge.period_start_day + int(rnd() * min(20, charge.period_end_day - charge.period_start_day))
                second = int(rnd() * 86400)
                if (day, second) in seen:
                    continue
                seen.add((day, second))
                rows.append((customer_id, subscription_id if rnd() < 0.9 else "", self._instant(day, second)))

    # -- submissions -----------------------------------------------------------------------------
    def _submission(
        self,
        customer_key: int,
        serial: int,
        program: str,
        subject: str,
        submitted_at: str,
        *,
        channel: str,
        email: str = "",
        phone: str = "",
        payout: str = "",
        reason: str = "",
        fault: str = "",
        effective_at: str = "",
    ) -> int:
        self.out.submissions.append(
            (
                f"SB{customer_key:08d}{serial:02d}",
                program,
                subject,
                submitted_at,
                channel,
                email,
                phone,
                payout,
                reason,
                fault,
                effective_at,
            )
        )
        return serial + 1

    def _request_channel(self) -> str:
        draw = self.random()
        return "web" if draw < 0.55 else "phone" if draw < 0.8 else "email" if draw < 0.93 else "chat"

    def _charge_submissions(
        self, customer_id: str, subscriptions: list[tuple[str, PlanSpec, list[_Charge]]], serial: int
    ) -> int:
        rnd = self.random
        key = int(customer_id[1:])
        for _subscription_id, plan, charges in subscriptions:
            for position, charge in enumerate(charges):
                charge_day = charge.period_start_day
                if charge.cycle == -1:
                    if rnd() < 0.5:  # most overpayments are found by the company; some customers call
                        serial = self._submission(
                            key,
                            serial,
                            "overpayment",
                            charge.charge_id,
                            self._daytime_instant(charge_day + 1 + int(rnd() * 30)),
                            channel=self._request_channel(),
                            payout="original_method",
                            fault="company" if rnd() < 0.9 else "member",
                        )
                    continue
                if plan.billing is Billing.YEARLY_AUTORENEW and charge.cycle > 0 and rnd() < 0.2:
                    late = rnd() < 0.15
                    offset = 61 + int(rnd() * 20) if late else int(rnd() * 61)
                    reason = REASON_NAMES[bisect(REASON_CUMULATIVE, rnd() * REASON_CUMULATIVE[-1])]
                    serial = self._submission(
                        key,
                        serial,
                        "autorenew-60day",
                        charge.charge_id,
                        self._daytime_instant(charge_day + offset),
                        channel=self._request_channel(),
                        payout="original_method",
                        reason=reason,
                    )
                if (charge.cycle == 0 and rnd() < 0.03) or rnd() < 0.002:
                    serial = self._submission(
                        key,
                        serial,
                        "cooling-off-7day",
                        charge.charge_id,
                        self._daytime_instant(charge_day + int(rnd() * 11)),
                        channel=self._request_channel(),
                        payout="original_method",
                    )
                long_licence = plan.billing is not Billing.MONTHLY
                if rnd() < (0.02 if long_licence else 0.002):
                    period_days = charge.period_end_day - charge.period_start_day
                    stopped = charge_day - 1 - int(rnd() * 5) if rnd() < 0.05 else charge_day + int(rnd() * period_days)
                    serial = self._submission(
                        key,
                        serial,
                        "service-failure-prorata",
                        charge.charge_id,
                        self._daytime_instant(stopped + int(rnd() * 21)),
                        channel=self._request_channel(),
                        payout="original_method",
                        fault="company" if rnd() < 0.85 else "member",
                        effective_at=self._instant(stopped, 0),
                    )
                if position == len(charges) - 1 and rnd() < 0.002:
                    terminated = charge_day + int(rnd() * (charge.period_end_day - charge.period_start_day))
                    terminated_at = self._daytime_instant(terminated)
                    serial = self._submission(
                        key,
                        serial,
                        "company-termination",
                        charge.charge_id,
                        terminated_at,
                        channel="import",
                        payout="original_method",
                        fault="member",
                        effective_at=terminated_at,
                    )
        return serial

    def _login_outage_submissions(
        self,
        index: int,
        customer_id: str,
        *,
        email: str,
        phone: str,
        subscriptions: list[tuple[str, PlanSpec, list[_Charge]]],
        serial: int,
    ) -> int:
        rnd = self.random
        covered = any(
            plan.code in LOGIN_OUTAGE_PLAN_CODES
            and any(
                LOGIN_OUTAGE_COVERED_FROM_MONTH
                <= MONTH_OF_DAY[charge.period_start_day]
                <= LOGIN_OUTAGE_COVERED_UNTIL_MONTH
                for charge in charges
            )
            for _, plan, charges in subscriptions
        )
        if not covered or rnd() >= (0.5 if not email else 0.35):
            return serial
        draw = rnd()
        if draw < 0.005:  # the last second of the deadline
            day, second = LOGIN_OUTAGE_DEADLINE_DAY, 86399
        elif draw < 0.045:  # late
            day, second = LOGIN_OUTAGE_DEADLINE_DAY + 1 + int(rnd() * 20), 28800 + int(rnd() * 54000)
        else:
            span = LOGIN_OUTAGE_DEADLINE_DAY - LOGIN_OUTAGE_APPLY_FROM_DAY + 1
            day, second = LOGIN_OUTAGE_APPLY_FROM_DAY + int(rnd() * span), 28800 + int(rnd() * 54000)
        # Without a working address the customer gives a new one: the notice goes there.
        contact = email if email and rnd() < 0.9 else f"new.{index}@{self._pick(EMAIL_DOMAINS)}"
        channel = "phone" if not email and rnd() < 0.4 else self._request_channel()
        repeats = 0 if rnd() >= 0.06 else 1 + (rnd() < 0.3)
        for repeat in range(repeats + 1):
            if repeat:  # a later submission corrects the contact address: the latest one wins
                day += 1 + int(rnd() * 20)
                contact = f"fixed{repeat}.{index}@{self._pick(EMAIL_DOMAINS)}"
            serial = self._submission(
                index,
                serial,
                "login-outage-2024",
                customer_id,
                self._instant(day, second),
                channel=channel,
                email=contact,
                phone=phone,
                payout="atm_cash",
            )
        return serial

    def _coupon(
        self, key: int, serial: int, *, customer_id: str, email: str, phone: str, submission_serial: int
    ) -> int:
        rnd = self.random
        number = inquiry_number(serial)
        face_value = FACE_VALUES_JPY[int(rnd() * len(FACE_VALUES_JPY))]
        issued_day = COUPON_ISSUE_FROM_DAY + int(rnd() * 36)
        draw = rnd()
        expires_at = next(text for bound, text in COUPON_EXPIRIES if draw < bound)
        via_app = rnd() < 0.55
        withdrawn = via_app and rnd() < 0.08
        prefecture = self._pick(PREFECTURES) if rnd() >= 0.05 else ""
        self.out.coupons.append(
            (
                number,
                customer_id,
                prefecture,
                face_value,
                self._instant(issued_day),
                expires_at,
                TRUE if via_app else FALSE,
                TRUE if withdrawn else FALSE,
            )
        )
        window_payment = self._coupon_transactions(serial, number, face_value, issued_day, expires_at)

        contact_email = email or f"coupon{serial}@{self._pick(EMAIL_DOMAINS)}"
        # Coupons in the app (and not withdrawn) need no application; everyone else applies by 04-30.
        needs_application = not via_app or withdrawn
        if window_payment and rnd() < 0.6:  # class B: the customer calls the call centre
            submission_serial = self._submission(
                key,
                submission_serial,
                "coupon-outage-2023",
                number,
                self._daytime_instant(OUTAGE_DAY_2023 + 1 + int(rnd() * 25)),
                channel="phone",
                email=contact_email,
                phone=phone,
                payout=self._pick(POINT_PAYOUTS),
            )
        if rnd() < (0.55 if needs_application else 0.05):
            draw = rnd()
            if draw < 0.04:
                day = COUPON_OUTAGE_DEADLINE_DAY + 1 + int(rnd() * 20)
            else:
                day = COUPON_OUTAGE_APPLY_FROM_DAY + int(
                    rnd() * (COUPON_OUTAGE_DEADLINE_DAY - COUPON_OUTAGE_APPLY_FROM_DAY + 1)
                )
            channel = "web" if rnd() < 0.75 else "phone" if rnd() < 0.6 else "email"
            payout = self._pick(POINT_PAYOUTS) if rnd() < 0.8 else "bank_transfer"
            for repeat in range(1 + (rnd() < 0.04)):
                if repeat:  # changed their mind about the payout method
                    day += 1 + int(rnd() * 10)
                    payout = "bank_transfer" if payout != "bank_transfer" else "points:paypay"
                submission_serial = self._submission(
                    key,
                    submission_serial,
                    "coupon-outage-2023",
                    number,
                    self._daytime_instant(day),
                    channel=channel,
                    email=contact_email,
                    phone=phone,
                    payout=payout,
                )
        return submission_serial

    def _coupon_transactions(self, serial: int, number: str, face_value: int, issued_day: int, expires_at: str) -> bool:
        """Write the coupon's ledger; True when it has a payment in the 2023-02-24 outage window."""
        rnd = self.random
        rows = self.out.coupon_transactions
        sequence = 0

        def add(kind: str, amount: int, day: int, second: int, store: str) -> None:
            nonlocal sequence
            sequence += 1
            rows.append((f"T{serial:012d}{sequence:02d}", number, kind, amount, DAY_STR[day] + TIME_STR[second], store))

        balance = face_value
        if rnd() < 0.08:  # topped up with a second coupon
            top_up = 1000 * (1 + int(rnd() * 3))
            add("charge", top_up, issued_day + 1 + int(rnd() * 5), 36000 + int(rnd() * 30000), "")
            balance += top_up
        day = issued_day + 7
        for _ in range(int(rnd() * 4)):
            if balance < 300 or day >= OUTAGE_DAY_2023:
                break
            amount = min(balance, 100 * (3 + int(rnd() * 47)))
            add("payment", amount, day, 32400 + int(rnd() * 36000), self._pick(STORES))
            balance -= amount
            day += 1 + int(rnd() * 4)
        if balance and rnd() < 0.12 and day < OUTAGE_DAY_2023:  # spent in full before the outage
            add("payment", balance, day, 32400 + int(rnd() * 36000), self._pick(STORES))
            balance = 0

        in_window = balance >= 200 and rnd() < 0.18
        if in_window:
            store = self._pick(STORES)
            copies = 0
            if rnd() < 0.45:
                copies = 1 if rnd() < 0.85 or balance < 300 else 2
            amount = 100 * (1 + int(rnd() * max(1, min(balance // (100 * (copies + 1)) - 1, 40))))
            second = OUTAGE_WINDOW_START_SECOND + int(
                rnd() * (OUTAGE_WINDOW_END_SECOND - OUTAGE_WINDOW_START_SECOND - 300)
            )
            add("payment", amount, OUTAGE_DAY_2023, second, store)
            balance -= amount
            for _ in range(copies):  # the terminal retried: same store, same amount, seconds apart
                second += 5 + int(rnd() * 105)
                add("payment", amount, OUTAGE_DAY_2023, second, store)
                balance -= amount
            if copies and rnd() < 0.25:  # the operator already reversed one duplicate
                add("reversal", amount, OUTAGE_DAY_2023 + 1 + int(rnd() * 3), 36000 + int(rnd() * 28800), store)
                balance += amount
            elif not copies and balance >= amount and rnd() < 0.1:
                # Same amount again minutes later: a second purchase, not a duplicate (beyond 120 s).
                add("payment", amount, OUTAGE_DAY_2023, min(second + 150 + int(rnd() * 600), 86339), store)
                balance -= amount
        if balance >= 300 and not expires_at.startswith("2023-02-24") and rnd() < 0.3:
            amount = min(balance, 100 * (3 + int(rnd() * 30)))
            add("payment", amount, OUTAGE_DAY_2023 + 1 + int(rnd() * 2), 32400 + int(rnd() * 36000), self._pick(STORES))
        return in_window

    def render(self) -> ChunkText:
        text: dict[str, str] = {}
        rows: dict[str, int] = {}
        for name in CHUNKED_FILES:
            buffer = io.StringIO()
            file_rows: list[tuple[object, ...]] = getattr(self.out, name)
            csv.writer(buffer, lineterminator="\n").writerows(file_rows)
            text[name] = buffer.getvalue()
            rows[name] = len(file_rows)
        return ChunkText(text, rows)


def generate_chunk(seed: int, chunk: int, total_customers: int) -> ChunkText:
    """All rows of customers chunk*CHUNK_CUSTOMERS+1 .. (chunk+1)*CHUNK_CUSTOMERS (capped at the total)."""
    builder = _ChunkBuilder(seed=seed, chunk=chunk, total_customers=total_customers)
    first = chunk * CHUNK_CUSTOMERS + 1
    for index in range(first, min(first + CHUNK_CUSTOMERS, total_customers + 1)):
        builder.add_customer(index)
    return builder.render()


def _chunks_in_order(seed: int, customers: int, workers: int) -> Iterator[ChunkText]:
    chunk_count = (customers + CHUNK_CUSTOMERS - 1) // CHUNK_CUSTOMERS
    if workers <= 1 or chunk_count <= 1:
        for chunk in range(chunk_count):
            yield generate_chunk(seed, chunk, customers)
        return
    # A sliding window of submitted chunks keeps memory bounded when writing is slower than building.
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: list[Future[ChunkText]] = []
        next_chunk = 0
        while next_chunk < chunk_count or pending:
            while next_chunk < chunk_count and len(pending) < 2 * workers:
                pending.append(pool.submit(generate_chunk, seed, next_chunk, customers))
                next_chunk += 1
            yield pending.pop(0).result()


@dataclass(frozen=True, slots=True)
class DemoDataSet:
    directory: Path
    customers: int
    seed: int
    rows: dict[str, int]


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def generate_demo_data(
    out_dir: Path,
    *,
    customers: int,
    seed: int = 1,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DemoDataSet:
    """Write the nine FORMATS.md files for `customers` customers into `out_dir`.

    Files are written as `*.partial` and renamed at the end, so a folder holding all nine files
    holds a complete data set. `progress(customers_done, customers)` is called after every chunk.
    """
    if customers < 1:
        raise ValueError("customers must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    partial = {name: out_dir / f"{name}.csv.partial" for name in FILE_COLUMNS}
    rows = dict.fromkeys(FILE_COLUMNS, 0)
    handles = {name: path.open("w", encoding="utf-8", newline="") for name, path in partial.items()}
    try:
        for name, handle in handles.items():
            csv.writer(handle, lineterminator="\n").writerow(FILE_COLUMNS[name])
        plan_writer = csv.writer(handles["plans"], lineterminator="\n")
        plan_writer.writerows((plan.code, plan.name, plan.monthly_fee_jpy) for plan in PLANS)
        rows["plans"] = len(PLANS)
        done = 0
        for chunk in _chunks_in_order(seed, customers, workers or default_workers()):
            for name in CHUNKED_FILES:
                handles[name].write(chunk.text[name])
                rows[name] += chunk.rows[name]
            done = min(done + CHUNK_CUSTOMERS, customers)
            if progress is not None:
                progress(done, customers)
    finally:
        for handle in handles.values():
            handle.close()
    for name, path in partial.items():
        path.replace(out_dir / f"{name}.csv")
    return DemoDataSet(out_dir, customers, seed, rows)


def is_complete(directory: Path) -> bool:
    return all((directory / name).is_file() for name in FILE_NAMES)
