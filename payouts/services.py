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
from zoneinfo import ZoneInfo

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from claims.models import Claim, ClaimStatus, Program, Submission
from claims.review import claim_approve
from payouts import crypto
from payouts.models import (
    BATCH_HOLDING_STATUSES,
    LIVE_PAYOUT_STATUSES,
    PAYOUT_STATUS_TRANSITIONS,
    Payout,
    PayoutBatch,
    PayoutNotice,
    PayoutSecret,
    PayoutSecretReveal,
    PayoutStatus,
    PayoutTransition,
    ProgramPayoutPolicy,
    RevealedSecret,
)
from payouts.notices import enqueue_send_on_commit, notices_queue_for_payouts
from payouts.providers import provider_for
from payouts.providers.base import ProviderNotRegistered, ProviderPermanentError, ProviderTemporaryError
from support_portal.core.audit import audit_context
from support_portal.core.enqueue import enqueue_on_commit

JST = ZoneInfo("Asia/Tokyo")

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

ERROR_MAX_LENGTH = 500


class RefusalCode:
    NOT_FOUND = "not_found"
    STATUS = "status_not_allowed"
    CLAIM_NOT_APPROVED = "claim_not_approved"
    AMOUNT_CHANGED = "amount_changed"
    METHOD_NOT_SUPPORTED = "method_not_supported"
    NO_ACTOR = "no_actor"
    REASON_REQUIRED = "reason_required"
    NO_SECRET = "no_secret"  # noqa: S105 - a refusal code, not a password
    BATCH_HELD = "batch_held"


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
# the program's default. Optional filters: one method (a batch for one method), one claim (approve-and-pay).
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
      AND (%(claim_id)s::bigint IS NULL OR c.id = %(claim_id)s::bigint)
      AND NOT EXISTS (SELECT 1 FROM {payout} x WHERE x.claim_id = c.id)
),
inserted AS (
    INSERT INTO {payout}
        (claim_id, program_id, method, amount_jpy, payee_id, status, idempotency_key, expires_at,
         provider, provider_reference, attempts, last_error, created_at, updated_at, issued_at, offer, batch_id)
    SELECT claim_id, program_id, method, amount_jpy, payee_id, %(created)s,
           'payout:' || claim_id || ':' || method, expires_at,
           '', '', 0, '', %(now)s, %(now)s, NULL, 1, %(batch_id)s
    FROM candidates
    WHERE method IS NOT NULL AND payee_id IS NOT NULL
      AND (%(method)s = '' OR method = %(method)s)
    ORDER BY claim_id
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO {transition} (payout_id, at, actor_id, status_before, status_after, note)
SELECT id, %(now)s, %(actor_id)s, '', %(created)s, 'created for the approved claim' FROM inserted
"""


def _insert_payouts(
    *, program: Program, actor: Actor, method: str = "", claim_id: int | None = None, batch_id: int | None = None
) -> int:
    """The INSERT … SELECT of payouts; the caller holds the program row lock inside its transaction."""
    sql = _CREATE_SQL.format(
        claim=Claim._meta.db_table,
        program=Program._meta.db_table,
        submission=Submission._meta.db_table,
        payout=Payout._meta.db_table,
        transition=PayoutTransition._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "program_id": program.pk,
                "approved": ClaimStatus.APPROVED,
                "created": PayoutStatus.CREATED,
                "now": timezone.now(),
                "actor_id": _actor_id(actor),
                "method": method,
                "claim_id": claim_id,
                "batch_id": batch_id,
            },
        )
        return int(cursor.rowcount)


def payouts_create_for_approved_claims(
    *, program: Program, actor: Actor, method: str = "", batch_id: int | None = None
) -> int:
    """Creates one payout for every approved claim of the program that has none; returns how many.

    `method` limits it to claims paid by that method; `batch_id` puts the new payouts in that batch.
    Claims without a usable method (none chosen, no program default) or without a payee are skipped and
    picked up by a later call once fixed. Running it twice creates nothing the second time.
    """
    with audit_context(actor=actor, action="payouts_create"), transaction.atomic():
        # Serialises creation per program (the same lock review and program runs take first).
        Program.objects.select_for_update().filter(pk=program.pk).first()
        created = _insert_payouts(program=program, actor=actor, method=method, batch_id=batch_id)
    logger.info("payouts created", extra={"program": program.slug, "payouts_created": created})
    return created


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


def _check_batch(payout: Payout) -> None:
    """A payout of a scheduled / paused / cancelled batch waits for its batch (issued by its run only)."""
    if payout.batch_id is None:
        return
    status = PayoutBatch.objects.filter(pk=payout.batch_id).values_list("status", flat=True).first()
    if status in BATCH_HOLDING_STATUSES:
        raise PayoutRefused(
            code=RefusalCode.BATCH_HELD,
            message=f"payout {payout.pk}: its batch {payout.batch_id} is {status}",
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
        _check_batch(payout)
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
        # The outbox row, in the transaction that issues: the notice exists exactly when the payout is issued.
        notices_queue_for_payouts(payout_ids=[payout.pk], now=now)
        enqueue_send_on_commit()
        logger.info("payout issued", extra={"payout_id": payout.pk, "reference": result.reference})
        return _IssueOutcome(payout=payout)


def payout_transition(*, payout_id: int, to: str, actor: Actor, note: str = "") -> Payout:
    """A manual or provider-driven move (notified, settled, expired, failed, cancelled) of one payout:
    `payouts_transition` for one, refused (PayoutRefused, nothing changed) unless it moved."""
    moved = payouts_transition(notes={payout_id: note}, to=to, actor=actor)
    if moved.missing:
        raise PayoutRefused(code=RefusalCode.NOT_FOUND, message=f"payout {payout_id} does not exist")
    if not moved.moved:
        raise PayoutRefused(
            code=RefusalCode.STATUS,
            message=f"payout {payout_id}: cannot move from {moved.refused.get(payout_id, to)} to {to}",
            payout_id=payout_id,
        )
    return Payout.objects.get(pk=payout_id)


# A coupon-outage payout received: the balance paid out leaves the coupon, one `cash_out` row in its
# ledger per payout (id cash-out:<payout>; settled is final, so a second call adds nothing).
_COUPON_CASH_OUT_SQL = """
INSERT INTO customers_coupontransaction (transaction_id, coupon_id, kind, amount_jpy, occurred_at, store_name)
SELECT 'cash-out:' || p.id, c.subject, 'cash_out', p.amount_jpy, %(at)s, ''
  FROM payouts_payout p
  JOIN claims_claim c ON c.id = p.claim_id
  JOIN claims_program pr ON pr.id = c.program_id
 WHERE p.id = ANY(%(ids)s::bigint[]) AND pr.policy = 'coupon-outage-2023'
 ORDER BY p.id
    ON CONFLICT (transaction_id) DO NOTHING
"""


def _coupons_cash_out(*, payout_ids: list[int], at: dt.datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_COUPON_CASH_OUT_SQL, {"ids": payout_ids, "at": at})


@dataclasses.dataclass(frozen=True)
class PayoutsTransitioned:
    moved: list[int]  # ascending ids
    unchanged: list[int]  # already in the target status
    refused: dict[int, str]  # id -> its status, from which the target cannot be reached
    missing: list[int]  # no such payout


_MOVE_MANY_SQL = """
WITH v AS (
    SELECT * FROM unnest(%(ids)s::bigint[], %(befores)s::text[], %(notes)s::text[]) AS v(id, before, note)
),
moved AS (
    UPDATE payouts_payout p SET status = %(to)s, updated_at = %(now)s FROM v WHERE p.id = v.id RETURNING p.id
)
INSERT INTO payouts_payouttransition (payout_id, at, actor_id, status_before, status_after, note)
SELECT v.id, %(now)s, %(actor)s, v.before, %(to)s, v.note FROM v JOIN moved ON moved.id = v.id ORDER BY v.id
"""


def payouts_transition(*, notes: dict[int, str], to: str, actor: Actor) -> PayoutsTransitioned:
    """Moves payouts (one, or a settlement file's many) along the transition table, set-based: one
    transition row each with its note and the actor; settling a coupon-outage payout also writes its
    `cash_out` row in the coupon's ledger.

    Locks the payouts' claims, then the payouts (ascending ids, the order of every payout service);
    payouts already in `to` are left alone, those that cannot move there are reported, nothing else
    changes for them.
    """
    if to == PayoutStatus.ISSUED:
        raise PayoutRefused(code=RefusalCode.STATUS, message="a payout is issued only through payout_issue")
    ids = sorted(notes)
    with audit_context(actor=actor, action="payouts_transition"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.id FROM claims_claim c WHERE c.id IN (SELECT claim_id FROM payouts_payout"
                " WHERE id = ANY(%s::bigint[])) ORDER BY c.id FOR UPDATE",
                [ids],
            )
            cursor.execute(
                "SELECT id, status FROM payouts_payout WHERE id = ANY(%s::bigint[]) ORDER BY id FOR UPDATE", [ids]
            )
            current = dict(cursor.fetchall())
        allowed = {status for status, targets in PAYOUT_STATUS_TRANSITIONS.items() if to in targets}
        movable = [pk for pk in ids if current.get(pk) in allowed]
        now = timezone.now()
        if movable:
            with connection.cursor() as cursor:
                cursor.execute(
                    _MOVE_MANY_SQL,
                    {
                        "ids": movable,
                        "befores": [current[pk] for pk in movable],
                        "notes": [notes[pk][:ERROR_MAX_LENGTH] for pk in movable],
                        "to": to,
                        "now": now,
                        "actor": _actor_id(actor),
                    },
                )
            if to == PayoutStatus.SETTLED:
                _coupons_cash_out(payout_ids=movable, at=now)
        return PayoutsTransitioned(
            moved=movable,
            unchanged=[pk for pk in ids if current.get(pk) == to],
            refused={
                pk: current[pk] for pk in ids if pk in current and current[pk] != to and current[pk] not in allowed
            },
            missing=[pk for pk in ids if pk not in current],
        )


def claim_approve_and_pay(*, claim: Claim, actor: Actor, note: str = "") -> Payout | None:
    """The reviewer's "approve and pay": approves the claim (claims.review, maker-checker and all) and, when
    that makes it approved, creates its payout and sends the issue task after commit — one transaction.

    Returns the payout, or None when the approval was the first of two. Pressed twice, the second press is
    refused by the review (the claim is no longer under review: ClaimDecisionRefused) and changes nothing;
    even a second path that got past it would find the UNIQUE constraints.
    """
    from payouts.tasks import payout_issue_task  # noqa: PLC0415 - cycle (tasks import this module)

    with audit_context(actor=actor, action="claim_approve_and_pay"), transaction.atomic():
        approved = claim_approve(claim=claim, actor=actor, note=note)  # locks program, then claim
        if approved.status != ClaimStatus.APPROVED:
            return None
        _insert_payouts(program=approved.program, actor=actor, claim_id=approved.pk)
        payout = Payout.objects.filter(claim_id=approved.pk, status__in=LIVE_PAYOUT_STATUSES).first()
        if payout is not None and payout.status == PayoutStatus.CREATED:
            enqueue_on_commit(payout_issue_task, payout.pk)
        return payout


def payout_secret_reveal(*, payout: Payout, actor: Actor, reason: str) -> RevealedSecret:
    """Decrypts a payout's code / URL for a finance user who asked deliberately, and records who, when and
    why (PayoutSecretReveal) in the same transaction. The caller checks the permission."""
    if actor is None or not actor.is_authenticated:
        raise PayoutRefused(code=RefusalCode.NO_ACTOR, message="revealing a code needs a signed-in person")
    if not reason.strip():
        raise PayoutRefused(code=RefusalCode.REASON_REQUIRED, message="say why the code is revealed")
    with audit_context(actor=actor, action="payout_secret_reveal"), transaction.atomic():
        secret = PayoutSecret.objects.filter(payout_id=payout.pk).first()
        if secret is None:
            raise PayoutRefused(
                code=RefusalCode.NO_SECRET, message=f"payout {payout.pk} has no code yet", payout_id=payout.pk
            )
        PayoutSecretReveal.objects.create(payout_id=payout.pk, actor_id=actor.pk, at=timezone.now(), reason=reason)
        logger.info("payout secret revealed", extra={"payout_id": payout.pk, "actor_id": actor.pk})
        return secret.reveal()


_EXPIRE_SQL = """
WITH due AS (
    SELECT id, status FROM {payout}
    WHERE status IN ('issued', 'notified') AND expires_at IS NOT NULL AND expires_at < %(now)s
      -- A transfer or a card refund is not picked up by the customer: the bank's / provider's answer
      -- settles it (payouts.banking), the receipt deadline does not apply.
      AND method NOT IN ('bank_transfer', 'original_method')
    ORDER BY id
    FOR UPDATE
),
expired AS (
    UPDATE {payout} p SET status = 'expired', updated_at = %(now)s
    FROM due WHERE p.id = due.id
    RETURNING p.id, due.status AS status_before
),
moved AS (
    INSERT INTO {transition} (payout_id, at, actor_id, status_before, status_after, note)
    SELECT id, %(now)s, NULL, status_before, 'expired', 'not received by the receipt deadline' FROM expired
),
closed_notices AS (
    UPDATE {notice} SET status = 'failed', lease_until = NULL, last_error = 'payout expired'
    WHERE status = 'pending' AND payout_id IN (SELECT id FROM expired)
)
SELECT id FROM expired ORDER BY id
"""

_REOFFER_SQL = """
WITH reoffered AS (
    INSERT INTO {payout}
        (claim_id, program_id, method, amount_jpy, payee_id, status, idempotency_key, expires_at,
         provider, provider_reference, attempts, last_error, created_at, updated_at, issued_at, offer, batch_id)
    SELECT e.claim_id, e.program_id, e.method, e.amount_jpy, e.payee_id, 'created',
           'payout:' || e.claim_id || ':' || e.method || ':' || (e.offer + 1),
           ((%(today_jst)s::date + pol.reoffer_receipt_days + 1)::timestamp AT TIME ZONE 'Asia/Tokyo')
               - interval '1 microsecond',
           '', '', 0, '', %(now)s, %(now)s, NULL, e.offer + 1, NULL
    FROM {payout} e
    JOIN {policy} pol ON pol.program_id = e.program_id
    JOIN {claim} c ON c.id = e.claim_id
    WHERE e.id = ANY(%(ids)s) AND pol.reoffer_on_expiry AND e.offer < pol.max_offers AND c.status = 'approved'
    ORDER BY e.id
    ON CONFLICT DO NOTHING
    RETURNING id
)
INSERT INTO {transition} (payout_id, at, actor_id, status_before, status_after, note)
SELECT id, %(now)s, NULL, '', 'created', 're-offer after the previous offer expired unclaimed' FROM reoffered
"""


def payouts_expire_unclaimed(*, now: dt.datetime | None = None) -> tuple[int, int]:
    """After the receipt deadline: issued / notified payouts nobody received move to `expired` (set-based,
    with transitions; their pending reminders are closed); where the program's payout policy says so
    (reoffer_on_expiry, offer < max_offers, claim still approved) a new payout (offer + 1, its own key and
    deadline) is created and picked up by the sweep, whose issue writes its notice. Returns
    (expired, re-offered)."""
    now = now or timezone.now()
    tables = {
        "payout": Payout._meta.db_table,
        "transition": PayoutTransition._meta.db_table,
        "notice": PayoutNotice._meta.db_table,
        "policy": ProgramPayoutPolicy._meta.db_table,
        "claim": Claim._meta.db_table,
    }
    with audit_context(actor=None, action="payouts_expire"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_EXPIRE_SQL.format(**tables), {"now": now})
        ids = [row[0] for row in cursor.fetchall()]
        reoffered = 0
        if ids:
            # A second statement: the first one's UPDATE must be visible to the live-payout UNIQUE check.
            cursor.execute(
                _REOFFER_SQL.format(**tables),
                {"now": now, "ids": ids, "today_jst": timezone.localdate(now, timezone=JST)},
            )
            reoffered = int(cursor.rowcount)
    expired = len(ids)
    logger.info("payouts expired", extra={"expired": expired, "reoffered": reoffered})
    return expired, reoffered
