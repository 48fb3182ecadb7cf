"""Payout services: create payouts for approved claims, issue them through the provider, move their status.

Every service is keyword-only, runs under `audit_context(actor=…)` and one transaction, and is safe to
run twice: creation is one `INSERT … SELECT … ON CONFLICT DO NOTHING` (the UNIQUE idempotency key and
(claim, method) decide), issuing re-reads the payout under a row lock and returns quietly when it is no
longer `created`, and the provider is asked with the payout's deterministic idempotency key.

Lock order, everywhere: the claim row, then the payout row (review locks program then claims, so no cycle).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from claims.models import Claim, ClaimStatus, Program, Submission
from payouts import crypto
from payouts.models import Payout, PayoutSecret, PayoutStatus, PayoutTransition
from payouts.providers import provider_for
from payouts.providers.base import ProviderNotRegistered, ProviderPermanentError, ProviderTemporaryError
from support_portal.core.audit import audit_context

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

ERROR_MAX_LENGTH = 500


class RefusalCode:
    NOT_FOUND = "not_found"
    STATUS = "status_not_allowed"
    CLAIM_NOT_APPROVED = "claim_not_approved"
    AMOUNT_CHANGED = "amount_changed"
    METHOD_NOT_SUPPORTED = "method_not_supported"


class PayoutRefused(Exception):
    """A payout step that is not allowed; nothing was changed."""

    def __init__(self, *, code: str, message: str, payout_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.payout_id = payout_id

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def _actor_id(actor: Actor) -> int | None:
    if actor is None or not actor.is_authenticated:
        return None
    return int(actor.pk)


def _move(
    payout: Payout, *, to: str, actor: Actor, note: str = "", now: dt.datetime, fields: tuple[str, ...] = ()
) -> None:
    """Moves a locked payout along the transition table and records who and when; refuses otherwise."""
    if not payout.can_transition(to):
        raise PayoutRefused(
            code=RefusalCode.STATUS,
            message=f"payout {payout.pk}: cannot move from {payout.status} to {to}",
            payout_id=payout.pk,
        )
    before = payout.status
    payout.status = to
    payout.updated_at = now
    payout.save(update_fields=["status", "updated_at", *fields])
    PayoutTransition.objects.create(
        payout=payout,
        at=now,
        actor_id=_actor_id(actor),
        status_before=before,
        status_after=to,
        note=note[:ERROR_MAX_LENGTH],
    )


# The method rule of claims.engine.common.payout_method_for, set-based: the method the engine recorded on
# the claim (refunds: original_method), else the official submission's when the program allows it, else
# the program's default.
_CREATE_SQL = """
WITH candidates AS (
    SELECT c.id AS claim_id,
           c.program_id,
           c.approved_amount_jpy AS amount_jpy,
           COALESCE(c.payee_id, c.customer_id) AS payee_id,
           COALESCE(
               NULLIF(c.payout_method, ''),
               CASE WHEN s.payout_method <> '' AND p.payout_methods @> jsonb_build_array(s.payout_method)
                    THEN s.payout_method END,
               NULLIF(p.default_payout_method, '')
           ) AS method,
           CASE WHEN p.receipt_deadline IS NULL THEN NULL
                ELSE (p.receipt_deadline + 1)::timestamp AT TIME ZONE 'Asia/Tokyo' - interval '1 microsecond'
           END AS expires_at
    FROM {claim} c
    JOIN {program} p ON p.id = c.program_id
    LEFT JOIN {submission} s ON s.submission_id = c.official_submission_id
    WHERE c.program_id = %(program_id)s
      AND c.status = %(approved)s
      AND c.approved_amount_jpy > 0
      AND NOT EXISTS (SELECT 1 FROM {payout} x WHERE x.claim_id = c.id)
),
inserted AS (
    INSERT INTO {payout}
        (claim_id, program_id, method, amount_jpy, payee_id, status, idempotency_key, expires_at,
         provider, provider_reference, attempts, last_error, created_at, updated_at, issued_at)
    SELECT claim_id, program_id, method, amount_jpy, payee_id, %(created)s,
           'payout:' || claim_id || ':' || method, expires_at,
           '', '', 0, '', %(now)s, %(now)s, NULL
    FROM candidates
    WHERE method IS NOT NULL AND payee_id IS NOT NULL
    ORDER BY claim_id
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO {transition} (payout_id, at, actor_id, status_before, status_after, note)
SELECT id, %(now)s, %(actor_id)s, '', %(created)s, 'created for the approved claim' FROM inserted
"""


def payouts_create_for_approved_claims(*, program: Program, actor: Actor) -> int:
    """Creates one payout for every approved claim of the program that has none; returns how many.

    Claims without a usable method (none chosen, no program default) or without a payee are skipped and
    picked up by a later call once fixed. Running it twice creates nothing the second time.
    """
    sql = _CREATE_SQL.format(
        claim=Claim._meta.db_table,
        program=Program._meta.db_table,
        submission=Submission._meta.db_table,
        payout=Payout._meta.db_table,
        transition=PayoutTransition._meta.db_table,
    )
    with audit_context(actor=actor, action="payouts_create"), transaction.atomic():
        # Serialises creation per program (the same lock review and program runs take first).
        Program.objects.select_for_update().filter(pk=program.pk).first()
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                {
                    "program_id": program.pk,
                    "approved": ClaimStatus.APPROVED,
                    "created": PayoutStatus.CREATED,
                    "now": timezone.now(),
                    "actor_id": _actor_id(actor),
                },
            )
            created = cursor.rowcount
    logger.info("payouts created", extra={"program": program.slug, "payouts_created": created})
    return int(created)


@dataclasses.dataclass(frozen=True)
class _IssueOutcome:
    payout: Payout | None
    temporary_error: ProviderTemporaryError | None = None


def payout_issue(*, payout_id: int, actor: Actor = None) -> Payout | None:
    """Issues a `created` payout through its method's provider and stores the encrypted code; idempotent.

    Returns quietly (the payout, or None when it is gone) when the payout is no longer `created`.
    A `ProviderTemporaryError` is recorded (attempts, last_error) and re-raised after commit so the task
    retries; a permanent provider error moves the payout to `failed`. Refuses (PayoutRefused, nothing
    changed) when the claim is no longer approved, its approved amount changed, or the method has no
    provider yet.
    """
    crypto.require_key()  # production without PAYOUT_ENCRYPTION_KEY stops here, before any provider call
    outcome = _issue_in_transaction(payout_id=payout_id, actor=actor)
    if outcome.temporary_error is not None:
        raise outcome.temporary_error
    return outcome.payout


def _check_claim(claim: Claim, payout: Payout) -> None:
    if claim.status != ClaimStatus.APPROVED:
        raise PayoutRefused(
            code=RefusalCode.CLAIM_NOT_APPROVED,
            message=f"payout {payout.pk}: claim {claim.pk} is {claim.status}, not approved",
            payout_id=payout.pk,
        )
    if claim.approved_amount_jpy != payout.amount_jpy:
        raise PayoutRefused(
            code=RefusalCode.AMOUNT_CHANGED,
            message=f"payout {payout.pk}: the claim's approved amount changed since the payout was created",
            payout_id=payout.pk,
        )


def _issue_in_transaction(*, payout_id: int, actor: Actor) -> _IssueOutcome:
    with audit_context(actor=actor, action="payout_issue"), transaction.atomic():
        claim_id = Payout.objects.filter(pk=payout_id).values_list("claim_id", flat=True).first()
        if claim_id is None:
            return _IssueOutcome(payout=None)
        claim = Claim.objects.select_for_update().filter(pk=claim_id).first()
        payout = Payout.objects.select_for_update().filter(pk=payout_id).first()
        if payout is None or claim is None or not payout.can_issue():
            return _IssueOutcome(payout=payout)
        _check_claim(claim, payout)
        now = timezone.now()
        if payout.expires_at is not None and now > payout.expires_at:
            _move(payout, to=PayoutStatus.EXPIRED, actor=actor, now=now, note="receipt deadline passed before issue")
            return _IssueOutcome(payout=payout)
        try:
            provider = provider_for(payout.method)
        except ProviderNotRegistered as exc:
            raise PayoutRefused(
                code=RefusalCode.METHOD_NOT_SUPPORTED, message=f"payout {payout.pk}: {exc}", payout_id=payout.pk
            ) from exc

        payout.attempts += 1
        payout.provider = provider.name
        try:
            result = provider.issue(
                idempotency_key=payout.idempotency_key,
                amount_jpy=payout.amount_jpy,
                expires_at=payout.expires_at,
                payee_ref=str(payout.payee_id),
            )
        except ProviderTemporaryError as exc:
            payout.last_error = f"temporary: {exc}"[:ERROR_MAX_LENGTH]
            payout.updated_at = now
            payout.save(update_fields=["attempts", "provider", "last_error", "updated_at"])
            logger.warning("payout issue failed temporarily", extra={"payout_id": payout.pk, "error": str(exc)})
            return _IssueOutcome(payout=payout, temporary_error=exc)
        except ProviderPermanentError as exc:
            payout.last_error = f"permanent: {exc}"[:ERROR_MAX_LENGTH]
            _move(
                payout,
                to=PayoutStatus.FAILED,
                actor=actor,
                now=now,
                note=payout.last_error,
                fields=("attempts", "provider", "last_error"),
            )
            logger.warning("payout issue failed", extra={"payout_id": payout.pk, "error": str(exc)})
            return _IssueOutcome(payout=payout)

        ciphertext, masked = PayoutSecret.seal(code=result.code, pin=result.pin, url=result.url)
        PayoutSecret.objects.create(payout=payout, ciphertext=ciphertext, masked=masked, created_at=now)
        payout.provider_reference = result.reference
        payout.issued_at = now
        payout.last_error = ""
        _move(
            payout,
            to=PayoutStatus.ISSUED,
            actor=actor,
            now=now,
            fields=("attempts", "provider", "provider_reference", "issued_at", "last_error"),
        )
        logger.info("payout issued", extra={"payout_id": payout.pk, "reference": result.reference})
        return _IssueOutcome(payout=payout)


def payout_transition(*, payout_id: int, to: str, actor: Actor, note: str = "") -> Payout:
    """A manual or provider-driven move (notified, settled, expired, failed, cancelled); refuses otherwise."""
    with audit_context(actor=actor, action="payout_transition"), transaction.atomic():
        claim_id = Payout.objects.filter(pk=payout_id).values_list("claim_id", flat=True).first()
        if claim_id is None:
            raise PayoutRefused(code=RefusalCode.NOT_FOUND, message=f"payout {payout_id} does not exist")
        Claim.objects.select_for_update().filter(pk=claim_id).first()
        payout = Payout.objects.select_for_update().get(pk=payout_id)
        if to == PayoutStatus.ISSUED:
            raise PayoutRefused(
                code=RefusalCode.STATUS, message="a payout is issued only through payout_issue", payout_id=payout_id
            )
        _move(payout, to=to, actor=actor, note=note, now=timezone.now())
        return payout
