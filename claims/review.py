"""Review of claims: approve, reject, request information, reopen, bulk-approve the lowest band.

Every service is keyword-only, runs under `audit_context(actor=…)` and one transaction, locks the
program row first and then the claim rows by ascending id (the order `program_run` uses: program,
then claims), checks the transition with the claim's `can_*` guards and either writes the new status
plus one `ClaimDecision` row or raises `ClaimDecisionRefused` having changed nothing.

Maker-checker (SPEC "Who uses it"): nobody approves a claim they prepared or decided before (any earlier
approve/reject of theirs on that claim, in any review round); a claim above the program's
`second_approval_above_jpy` needs two approvals by two different people (the first moves it to
`awaiting_second_approval`). `approved_amount_jpy` is recorded by the final approval only, and the
final approval of a coupon-outage claim writes its ledger remedies in the same transaction, and a
rejection reverses any that an earlier approval wrote (claims.remedies).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterable
from typing import Protocol

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from claims.models import (
    Claim,
    ClaimDecision,
    ClaimStatus,
    DecisionAction,
    MergeOffer,
    MergeOutcome,
    Program,
    RejectReason,
)
from claims.remedies import coupon_remedies_apply_locked, coupon_remedies_reverse_locked
from support_portal.core.audit import audit_context
from support_portal.core.business_days import jst_date
from support_portal.customers.models import Charge, Subscription

Actor = AbstractBaseUser | AnonymousUser | None


class RefusalCode:
    """Stable codes of `ClaimDecisionRefused` (tests, admin messages and API clients match on them)."""

    NO_ACTOR = "no_actor"
    NOT_FOUND = "not_found"
    STATUS = "status_not_allowed"
    NOT_ELIGIBLE = "not_eligible"
    OWN_WORK = "prepared_by_actor"
    ALREADY_DECIDED = "already_decided_by_actor"
    REASON_REQUIRED = "reason_required"
    UNKNOWN_REASON = "unknown_reason"
    NOTE_REQUIRED = "note_required"
    NOT_LOWEST_BAND = "not_lowest_band"
    NOT_APPLICABLE = "not_applicable"
    ALREADY_RECORDED = "already_recorded"


class ClaimDecisionRefused(Exception):
    """A review step that is not allowed; nothing was changed."""

    def __init__(self, *, code: str, message: str, claim_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.claim_id = claim_id

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


class RandomSource(Protocol):
    def random(self) -> float: ...


@dataclasses.dataclass(frozen=True)
class Refusal:
    claim_id: int
    code: str
    message: str


@dataclasses.dataclass(frozen=True)
class BulkApproveResult:
    approved: list[int]  # claim ids, ascending
    refused: list[Refusal]  # in claim id order
    qa_flagged: list[int]  # approved claims drawn into the QA sample


def _person(actor: Actor) -> AbstractBaseUser:
    if actor is None or not actor.is_authenticated or isinstance(actor, AnonymousUser):
        raise ClaimDecisionRefused(code=RefusalCode.NO_ACTOR, message="a review step needs a signed-in person")
    return actor


def _lock(claim_ids: Iterable[int]) -> dict[int, Claim]:
    """Locks the claims' programs (ascending id), then the claims (ascending id); returns them fresh."""
    ids = sorted(set(claim_ids))
    program_ids = sorted(set(Claim.objects.filter(pk__in=ids).values_list("program_id", flat=True)))
    programs = {p.pk: p for p in Program.objects.select_for_update().filter(pk__in=program_ids).order_by("pk")}
    claims = {c.pk: c for c in Claim.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
    for claim in claims.values():
        claim.program = programs[claim.program_id]
    return claims


def _lock_one(claim: Claim) -> Claim:
    locked = _lock([claim.pk]).get(claim.pk)
    if locked is None:
        raise ClaimDecisionRefused(code=RefusalCode.NOT_FOUND, message="the claim does not exist", claim_id=claim.pk)
    return locked


def _refuse(claim: Claim, code: str, message: str) -> ClaimDecisionRefused:
    return ClaimDecisionRefused(code=code, message=f"claim {claim}: {message}", claim_id=claim.pk)


def _status_refusal(claim: Claim, action: str) -> ClaimDecisionRefused:
    return _refuse(claim, RefusalCode.STATUS, f"cannot {action} a claim that is {claim.get_status_display()}")


def _check_approver(claim: Claim, person: AbstractBaseUser) -> None:
    """Maker-checker: not the preparer, and nobody who approved or rejected this claim before."""
    if claim.prepared_by_id is not None and claim.prepared_by_id == person.pk:
        raise _refuse(claim, RefusalCode.OWN_WORK, "nobody approves a claim they prepared")
    if claim.decisions.filter(actor_id=person.pk, action__in=DecisionAction.decisions()).exists():
        raise _refuse(claim, RefusalCode.ALREADY_DECIDED, "a second approval must come from a different person")


def _check_approvable(claim: Claim, person: AbstractBaseUser) -> None:
    if not claim.eligible:
        raise _refuse(claim, RefusalCode.NOT_ELIGIBLE, f"not eligible ({claim.reason or 'no reason recorded'})")
    if not claim.can_approve():
        raise _status_refusal(claim, "approve")
    _check_approver(claim, person)


def _check_bulk_approvable(claim: Claim, person: AbstractBaseUser) -> None:
    if not claim.eligible:
        raise _refuse(claim, RefusalCode.NOT_ELIGIBLE, f"not eligible ({claim.reason or 'no reason recorded'})")
    if claim.status != ClaimStatus.PENDING_REVIEW:
        raise _refuse(
            claim, RefusalCode.STATUS, f"bulk approval takes pending claims only, not {claim.get_status_display()}"
        )
    if not claim.can_bulk_approve():
        limit = claim.program.auto_approve_max_jpy
        raise _refuse(
            claim,
            RefusalCode.NOT_LOWEST_BAND,
            f"¥{claim.amount_jpy:,} is above the lowest band (up to ¥{limit:,}) or needs a second approval",
        )
    _check_approver(claim, person)


def _record(
    claim: Claim,
    *,
    person: AbstractBaseUser,
    action: str,
    status: str,
    fields: dict[str, object] | None = None,
    reason_code: str = "",
    note: str = "",
) -> ClaimDecision:
    now = timezone.now()
    decision = ClaimDecision.objects.create(
        claim=claim,
        actor_id=person.pk,
        action=action,
        at=now,
        status_before=claim.status,
        status_after=status,
        amount_jpy=claim.amount_jpy,
        reason_code=reason_code,
        note=note,
    )
    values: dict[str, object] = {"status": status, **(fields or {})}
    if action in DecisionAction.decisions():
        values["decided_by_id"] = person.pk  # asking for information or reopening decides nothing
    for name, value in values.items():
        setattr(claim, name, value)
    claim.save(update_fields=[name.removesuffix("_id") if name.endswith("_by_id") else name for name in values])
    return decision


def _approve_locked(claim: Claim, person: AbstractBaseUser, *, action: str, note: str = "") -> str:
    """Applies one approval to a locked, checked claim (first of two above the threshold); returns the status."""
    if claim.status != ClaimStatus.AWAITING_SECOND_APPROVAL and claim.needs_second_approval():
        _record(claim, person=person, action=action, status=ClaimStatus.AWAITING_SECOND_APPROVAL, note=note)
    else:
        _record(
            claim,
            person=person,
            action=action,
            status=ClaimStatus.APPROVED,
            fields={"approved_amount_jpy": claim.amount_jpy},
            note=note,
        )
        coupon_remedies_apply_locked(claim, person=person)  # coupon-outage only: the ledger remedies
    return claim.status


def claim_approve(*, claim: Claim, actor: Actor, note: str = "") -> Claim:
    """Approves (or first-approves, above the program's threshold) an eligible claim under review."""
    person = _person(actor)
    with audit_context(actor=person, action="claim_approve"), transaction.atomic():
        locked = _lock_one(claim)
        _check_approvable(locked, person)
        _approve_locked(locked, person, action=DecisionAction.APPROVE, note=note)
        return locked


def claim_reject(*, claim: Claim, actor: Actor, reason_code: str, note: str = "") -> Claim:
    """Rejects a claim under review with a reason code (RejectReason).

    `other` and `special_circumstances` also need a note: "no refund" for special circumstances (SPEC
    company-termination: account theft, illegal copying) is a reviewer's decision whose reason is recorded.
    """
    person = _person(actor)
    with audit_context(actor=person, action="claim_reject"), transaction.atomic():
        locked = _lock_one(claim)
        if not reason_code:
            raise _refuse(locked, RefusalCode.REASON_REQUIRED, "a rejection needs a reason code")
        if reason_code not in RejectReason.values:
            raise _refuse(locked, RefusalCode.UNKNOWN_REASON, f"unknown reason code {reason_code!r}")
        if reason_code in (RejectReason.OTHER, RejectReason.SPECIAL_CIRCUMSTANCES) and not note.strip():
            raise _refuse(locked, RefusalCode.NOTE_REQUIRED, f"reason {reason_code!r} needs a note")
        if not locked.can_reject():
            raise _status_refusal(locked, "reject")
        if locked.prepared_by_id is not None and locked.prepared_by_id == person.pk:
            raise _refuse(locked, RefusalCode.OWN_WORK, "nobody decides a claim they prepared")
        _record(
            locked,
            person=person,
            action=DecisionAction.REJECT,
            status=ClaimStatus.REJECTED,
            fields={"approved_amount_jpy": None},
            reason_code=reason_code,
            note=note,
        )
        coupon_remedies_reverse_locked(locked, person=person)  # remedies of an earlier approval, if any
        return locked


def claim_request_info(*, claim: Claim, actor: Actor, note: str) -> Claim:
    """Puts a claim under review on hold until the customer or agent supplies what `note` asks for."""
    person = _person(actor)
    with audit_context(actor=person, action="claim_request_info"), transaction.atomic():
        locked = _lock_one(claim)
        if not note.strip():
            raise _refuse(locked, RefusalCode.NOTE_REQUIRED, "say which information is needed")
        if not locked.can_request_info():
            raise _status_refusal(locked, "request information on")
        _record(locked, person=person, action=DecisionAction.REQUEST_INFO, status=ClaimStatus.INFO_REQUESTED, note=note)
        return locked


def claim_reopen(*, claim: Claim, actor: Actor, note: str) -> Claim:
    """Sends a claim waiting for information, or a rejected one, back to review (why: `note`)."""
    person = _person(actor)
    with audit_context(actor=person, action="claim_reopen"), transaction.atomic():
        locked = _lock_one(claim)
        if not note.strip():
            raise _refuse(locked, RefusalCode.NOTE_REQUIRED, "say why the claim is reopened")
        if not locked.can_reopen():
            raise _status_refusal(locked, "reopen")
        _record(locked, person=person, action=DecisionAction.REOPEN, status=ClaimStatus.PENDING_REVIEW, note=note)
        return locked


def claims_bulk_approve(
    *, claim_ids: Iterable[int], actor: Actor, rng: RandomSource | None = None
) -> BulkApproveResult:
    """Approves the listed claims that are eligible, pending and in their program's lowest band.

    The others are refused and listed (nothing changes for them). Each approved claim is drawn into
    the QA sample with probability program.qa_sample_percent / 100 (`rng` makes the draw
    deterministic in tests), in ascending claim id order.
    """
    person = _person(actor)
    rng = rng or random.SystemRandom()
    ids = sorted(set(claim_ids))
    approved: list[int] = []
    refused: list[Refusal] = []
    qa_flagged: list[int] = []
    with audit_context(actor=person, action="claims_bulk_approve"), transaction.atomic():
        claims = _lock(ids)
        for claim_id in ids:
            claim = claims.get(claim_id)
            if claim is None:
                refused.append(Refusal(claim_id, RefusalCode.NOT_FOUND, f"claim {claim_id}: does not exist"))
                continue
            try:
                _check_bulk_approvable(claim, person)
            except ClaimDecisionRefused as exc:
                refused.append(Refusal(claim_id, exc.code, exc.message))
                continue
            # Lowest band never needs a second approval (checked above): approved in one write.
            sampled = rng.random() * 100 < claim.program.qa_sample_percent
            _record(
                claim,
                person=person,
                action=DecisionAction.BULK_APPROVE,
                status=ClaimStatus.APPROVED,
                fields={"approved_amount_jpy": claim.amount_jpy, "qa_review": sampled},
            )
            coupon_remedies_apply_locked(claim, person=person)
            approved.append(claim_id)
            if sampled:
                qa_flagged.append(claim_id)
    return BulkApproveResult(approved=approved, refused=refused, qa_flagged=qa_flagged)


# -- autorenew-60day: the merge offer (SPEC: for duplicate_purchase the agent first offers a merge) --

MERGE_POLICY = "autorenew-60day"
MERGE_REASON = "duplicate_purchase"


def claim_merge_offer_record(
    *,
    claim: Claim,
    actor: Actor,
    outcome: str,
    other_subscription: Subscription | None = None,
    note: str = "",
) -> MergeOffer:
    """Records the outcome of the merge offer on an autorenew-60day duplicate-purchase claim.

    `refunded`: the refund goes on to review as computed. `merged`: the renewed licence's remaining days
    (its charge's period end − the request's JST date) are added to `other_subscription`'s end (the same
    customer's other fixed-term licence) instead of refunding. `declined`: the customer keeps both
    licences and withdraws. For `merged`/`declined` the program is then recomputed (program_run, set-based)
    so the claim becomes not eligible (`merged` / `merge_declined`) and its grant is released. Locks the
    program row, then the claim (the order of program_run); a decided claim or a second offer is refused.
    """
    from claims.services import program_run  # noqa: PLC0415 - services imports the engine

    person = _person(actor)
    with audit_context(actor=person, action="claim_merge_offer_record"), transaction.atomic():
        locked = _lock_one(claim)
        if locked.program.policy != MERGE_POLICY:
            raise _refuse(locked, RefusalCode.NOT_APPLICABLE, "a merge offer is only for autorenew-60day claims")
        submission = locked.official_submission
        if submission is None or submission.reason != MERGE_REASON:
            raise _refuse(locked, RefusalCode.NOT_APPLICABLE, "a merge is offered for duplicate purchases only")
        if outcome not in MergeOutcome.values:
            raise _refuse(locked, RefusalCode.UNKNOWN_REASON, f"unknown merge outcome {outcome!r}")
        if locked.status in ClaimStatus.decided():
            raise _status_refusal(locked, "record a merge offer on")
        if MergeOffer.objects.filter(claim=locked).exists():
            raise _refuse(locked, RefusalCode.ALREADY_RECORDED, "the merge offer's outcome is already recorded")
        days = 0
        if outcome == MergeOutcome.MERGED:
            charge = Charge.objects.select_related("subscription").filter(pk=locked.subject).first()
            if (
                charge is None
                or other_subscription is None
                or other_subscription.customer_id != charge.subscription.customer_id
                or other_subscription.pk == charge.subscription_id
                or other_subscription.ended_at is None
            ):
                raise _refuse(
                    locked,
                    RefusalCode.NOT_APPLICABLE,
                    "a merge needs the same customer's other licence with an end date",
                )
            days = max(0, (charge.period_end - jst_date(submission.submitted_at)).days)
            Subscription.objects.filter(pk=other_subscription.pk).update(
                ended_at=F("ended_at") + dt.timedelta(days=days)
            )
        offer = MergeOffer.objects.create(
            claim=locked,
            outcome=outcome,
            other_subscription=other_subscription if outcome == MergeOutcome.MERGED else None,
            days_added=days,
            note=note,
            recorded_by_id=person.pk,
            recorded_at=timezone.now(),
        )
        if outcome != MergeOutcome.REFUNDED and locked.program.can_run():
            program_run(program=locked.program, actor=person)
        return offer
