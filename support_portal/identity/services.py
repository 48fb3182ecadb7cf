"""Identity recovery: verify a caller against the data we hold, set a new contact, trigger the reset.

The agent types what the caller says; the service compares it with the customer's data (latest
non-promotional charge: amount, JST date and payment method; phone digits) and returns only pass/fail
per check, so the agent never sees the true values. A verification passes when every check we hold data
for passes and at least `MIN_CHECKS` checks were compared. Two failed verifications lock the case; a lead
(permission `identity.unlock_identityrecoverycase`) unlocks it with a reason. A locked, completed or
cancelled case cannot verify, change the contact or trigger a reset.

Locks, always in this order: the case, then the customer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from support_portal.core.audit import audit_context
from support_portal.core.enqueue import enqueue_on_commit
from support_portal.customers.models import Charge, Customer
from support_portal.identity import tasks
from support_portal.identity.gateway import password_reset_gateway
from support_portal.identity.models import (
    MAX_FAILED_ATTEMPTS,
    CheckResult,
    IdentityRecoveryCase,
    IdentityRecoveryEvent,
    IdentityVerificationAttempt,
    RecoveryEventKind,
    RecoveryStatus,
)

Actor = AbstractBaseUser | AnonymousUser
JST = ZoneInfo("Asia/Tokyo")
MIN_CHECKS = 2
UNLOCK_PERMISSION = "identity.unlock_identityrecoverycase"
_HASH_SALT = "support_portal.identity.evidence"


class RefusalCode(enum.StrEnum):
    NOT_OPEN = "not_open"
    NOT_LOCKED = "not_locked"
    NOT_CANCELLABLE = "not_cancellable"
    REASON_REQUIRED = "reason_required"
    FORBIDDEN = "forbidden"
    CASE_ALREADY_OPEN = "case_already_open"
    INVALID_EMAIL = "invalid_email"


class IdentityRecoveryRefused(Exception):
    def __init__(self, code: RefusalCode, message: str = "") -> None:
        super().__init__(message or code.value)
        self.code = code


class Check(enum.StrEnum):
    CHARGE_AMOUNT = "charge_amount"
    CHARGE_DATE = "charge_date"
    PAYMENT_METHOD = "payment_method"
    PHONE = "phone"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the caller said, as the agent typed it (None / "" = the caller did not know)."""

    charge_amount_jpy: int | None = None
    charge_date: dt.date | None = None
    payment_method: str = ""
    phone: str = dataclasses.field(default="", repr=False)


@dataclasses.dataclass(frozen=True)
class CheckOutcome:
    check: Check
    result: CheckResult


@dataclasses.dataclass(frozen=True)
class VerificationOutcome:
    case: IdentityRecoveryCase
    attempt: IdentityVerificationAttempt
    passed: bool
    checks: tuple[CheckOutcome, ...]


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _actor_user(actor: Actor) -> Any:
    if actor is None or not actor.is_authenticated:
        raise IdentityRecoveryRefused(RefusalCode.FORBIDDEN, "an identity recovery step needs a signed-in person")
    return actor


def _event(
    case: IdentityRecoveryCase, *, actor: Any, kind: RecoveryEventKind, before: str, note: str = ""
) -> IdentityRecoveryEvent:
    return IdentityRecoveryEvent.objects.create(
        case=case,
        at=timezone.now(),
        actor=actor,
        kind=kind,
        status_before=before,
        status_after=case.status,
        note=note[:500],
    )


def _latest_charge(customer: Customer) -> Charge | None:
    return (
        Charge.objects.filter(subscription__customer=customer, promotional=False)
        .select_related("subscription")
        .order_by("-charged_at", "-charge_id")
        .first()
    )


def _typed_value(check: Check, evidence: Evidence) -> str:
    match check:
        case Check.CHARGE_AMOUNT:
            return "" if evidence.charge_amount_jpy is None else str(evidence.charge_amount_jpy)
        case Check.CHARGE_DATE:
            return "" if evidence.charge_date is None else evidence.charge_date.isoformat()
        case Check.PAYMENT_METHOD:
            return evidence.payment_method.strip()
        case Check.PHONE:
            return _digits(evidence.phone)


def _true_values(customer: Customer) -> dict[Check, str]:
    """What we hold for each check ("" = nothing to compare with)."""
    charge = _latest_charge(customer)
    values = {check: "" for check in Check}
    if charge is not None:
        values[Check.CHARGE_AMOUNT] = str(charge.amount_jpy)
        values[Check.CHARGE_DATE] = charge.charged_at.astimezone(JST).date().isoformat()
        values[Check.PAYMENT_METHOD] = charge.payment_method or charge.subscription.payment_method
    values[Check.PHONE] = customer.phone_digits
    return values


def evidence_digest(*, case_id: int, check: str, value: str) -> str:
    """The keyed hash stored instead of a typed value (confirmable with the same input, not reversible)."""
    return salted_hmac(_HASH_SALT, f"{case_id}\x1f{check}\x1f{value}", algorithm="sha256").hexdigest()


def _compare(
    case: IdentityRecoveryCase, customer: Customer, evidence: Evidence
) -> tuple[list[CheckOutcome], list[dict[str, Any]]]:
    truth = _true_values(customer)
    outcomes: list[CheckOutcome] = []
    stored: list[dict[str, Any]] = []
    for check in Check:
        typed = _typed_value(check, evidence)
        if not truth[check]:
            result = CheckResult.UNAVAILABLE
        elif typed and typed == truth[check]:
            result = CheckResult.PASS
        else:
            result = CheckResult.FAIL
        outcomes.append(CheckOutcome(check=check, result=result))
        stored.append(
            {
                "check": check.value,
                "result": result.value,
                "provided": bool(typed),
                "digest": evidence_digest(case_id=case.pk, check=check.value, value=typed) if typed else "",
            }
        )
    return outcomes, stored


def identity_case_open(*, customer: Customer, actor: Actor, ticket: Any = None) -> IdentityRecoveryCase:
    """Opens a case for a customer (optionally on the ticket the call came in on); refused while another
    case of theirs is open or locked."""
    user = _actor_user(actor)
    with transaction.atomic(), audit_context(actor=user):
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        if IdentityRecoveryCase.objects.filter(
            customer=customer, status__in=[RecoveryStatus.OPEN, RecoveryStatus.LOCKED]
        ).exists():
            raise IdentityRecoveryRefused(RefusalCode.CASE_ALREADY_OPEN, "this customer already has an open case")
        now = timezone.now()
        case = IdentityRecoveryCase.objects.create(
            customer=customer, agent=user, ticket=ticket, created_at=now, updated_at=now
        )
        _event(case, actor=user, kind=RecoveryEventKind.OPENED, before="")
    return case


def identity_case_verify(*, case_id: int, actor: Actor, evidence: Evidence, new_email: str) -> VerificationOutcome:
    """Records one verification. Passed: the customer's email becomes `new_email`, the case completes and
    the password reset is enqueued (after commit). Failed: the second failure locks the case."""
    user = _actor_user(actor)
    try:
        validate_email(new_email)
    except ValidationError as exc:
        raise IdentityRecoveryRefused(RefusalCode.INVALID_EMAIL, "the new contact address is not an email") from exc
    with transaction.atomic(), audit_context(actor=user):
        case = IdentityRecoveryCase.objects.select_for_update().get(pk=case_id)
        if not case.can_verify():
            raise IdentityRecoveryRefused(RefusalCode.NOT_OPEN, f"case {case_id} is {case.status}")
        customer = Customer.objects.select_for_update().get(pk=case.customer_id)
        outcomes, stored = _compare(case, customer, evidence)
        compared = [o for o in outcomes if o.result != CheckResult.UNAVAILABLE]
        passed = len(compared) >= MIN_CHECKS and all(o.result == CheckResult.PASS for o in compared)
        now = timezone.now()
        attempt = IdentityVerificationAttempt.objects.create(
            case=case, actor=user, at=now, passed=passed, checks=stored
        )
        summary = ", ".join(f"{o.check.value}={o.result.value}" for o in outcomes)
        before = case.status
        case.attempts += 1
        case.updated_at = now
        if passed:
            case.status = RecoveryStatus.COMPLETED
            case.new_email = new_email
            case.reset_idempotency_key = f"identity-reset:{case.pk}"
            case.save()
            _event(case, actor=user, kind=RecoveryEventKind.VERIFICATION_PASSED, before=before, note=summary)
            customer.email = new_email
            customer.save(update_fields=["email"])
            _event(case, actor=user, kind=RecoveryEventKind.CONTACT_CHANGED, before=case.status)
            _event(case, actor=user, kind=RecoveryEventKind.RESET_REQUESTED, before=case.status)
            enqueue_on_commit(tasks.identity_reset_send_task, case.pk)
        else:
            case.failed_attempts += 1
            if case.failed_attempts >= MAX_FAILED_ATTEMPTS:
                case.status = RecoveryStatus.LOCKED
            case.save()
            _event(case, actor=user, kind=RecoveryEventKind.VERIFICATION_FAILED, before=before, note=summary)
            if case.status == RecoveryStatus.LOCKED:
                _event(case, actor=user, kind=RecoveryEventKind.LOCKED, before=before)
    return VerificationOutcome(case=case, attempt=attempt, passed=passed, checks=tuple(outcomes))


def identity_case_unlock(*, case_id: int, actor: Actor, reason: str) -> IdentityRecoveryCase:
    """A lead reopens a locked case after review (the failure count starts again)."""
    user = _actor_user(actor)
    if not user.has_perm(UNLOCK_PERMISSION):
        raise IdentityRecoveryRefused(RefusalCode.FORBIDDEN, "only a lead may unlock a case")
    if not reason.strip():
        raise IdentityRecoveryRefused(RefusalCode.REASON_REQUIRED, "unlocking needs a reason")
    with transaction.atomic(), audit_context(actor=user):
        case = IdentityRecoveryCase.objects.select_for_update().get(pk=case_id)
        if not case.can_unlock():
            raise IdentityRecoveryRefused(RefusalCode.NOT_LOCKED, f"case {case_id} is {case.status}")
        before = case.status
        case.status = RecoveryStatus.OPEN
        case.failed_attempts = 0
        case.updated_at = timezone.now()
        case.save()
        _event(case, actor=user, kind=RecoveryEventKind.UNLOCKED, before=before, note=reason.strip())
    return case


def identity_case_cancel(*, case_id: int, actor: Actor, reason: str) -> IdentityRecoveryCase:
    user = _actor_user(actor)
    if not reason.strip():
        raise IdentityRecoveryRefused(RefusalCode.REASON_REQUIRED, "cancelling needs a reason")
    with transaction.atomic(), audit_context(actor=user):
        case = IdentityRecoveryCase.objects.select_for_update().get(pk=case_id)
        if not case.can_cancel():
            raise IdentityRecoveryRefused(RefusalCode.NOT_CANCELLABLE, f"case {case_id} is {case.status}")
        before = case.status
        case.status = RecoveryStatus.CANCELLED
        case.updated_at = timezone.now()
        case.save()
        _event(case, actor=user, kind=RecoveryEventKind.CANCELLED, before=before, note=reason.strip())
    return case


def identity_reset_send(*, case_id: int) -> IdentityRecoveryCase | None:
    """Asks the main service for the reset of a completed case; safe to repeat (idempotency key).

    Returns None when the case is gone or not completed; a case already sent is returned unchanged.
    Temporary gateway errors propagate (the task retries with the same key).
    """
    with transaction.atomic(), audit_context(actor=None):
        case = IdentityRecoveryCase.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.status != RecoveryStatus.COMPLETED or not case.reset_idempotency_key:
            return None
        if case.reset_sent_at is not None:
            return case
        gateway = password_reset_gateway()
        reference = gateway.request_reset(
            idempotency_key=case.reset_idempotency_key, customer_id=case.customer_id, email=case.new_email
        )
        case.reset_reference = reference
        case.reset_sent_at = case.updated_at = timezone.now()
        case.save(update_fields=["reset_reference", "reset_sent_at", "updated_at"])
        _event(
            case, actor=None, kind=RecoveryEventKind.RESET_SENT, before=case.status, note=f"{gateway.name} {reference}"
        )
    return case
