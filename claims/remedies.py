"""`coupon-outage-2023` remedies in the coupon ledger, and the class-B2 duplicate payments agents confirm.

Remedies (SPEC: class A — expiry extended to `remedy_expiry_at`; class B — the erroneous payments restored
to the balance and the expiry extended) are written when a coupon-outage claim becomes **approved**:
the final approval (`claim_approve`, `claims_bulk_approve`, payouts' approve-and-pay) calls
`coupon_remedies_apply_locked` in its own transaction, so an approved claim always has its remedies
and a refused approval writes none. `coupon_remedies_apply(*, claim, actor)` is the same step for
one claim on its own (admin action "Apply coupon remedies": claims approved before remedies existed,
or after a duplicate was confirmed); it is idempotent.

Each remedy is one `CouponTransaction` ledger row (kind `expiry_extension` with `extended_to`, amount 0;
kind `restoration` with the restored amount) plus one `CouponRemedy` row naming the claim, the actor,
the time and (restorations) the payment given back. The database refuses a second live restoration
of a payment (`coupon_remedy_restored_once`, whatever the claim or program) and a second live extension
by a claim (`coupon_remedy_extended_once`); the service skips what exists, so running it twice adds
nothing.

Remedies follow the decision: rejecting a claim whose remedies were written (an approved claim sent
back to re-review by a run, then rejected) reverses them all, and a re-approval reverses the
restorations its lines no longer make — each reversal a `remedy_reversal` ledger row (a restoration's
amount leaves the balance again) recorded on the remedy with who and when. A reversed remedy no longer
counts as "restored once", so a later approval may restore that payment again (a new ledger row).
The engine never reads remedy rows (its balances use charge/payment/reversal only), so a re-run after
remedies changes no claim.

Duplicates: `coupon_duplicates_detect` finds every class-B2 payment (same coupon, store and amount
within `duplicate_interval_seconds` of the previous payment, in the outage window) in one
INSERT … SELECT … ON CONFLICT DO NOTHING over the ledger; every `program_run` of a coupon program calls
it first. Agents confirm (checked against the store's records) or reject (a genuine second purchase)
each one; the engine does not restore a rejected payment, and a payment already restored cannot be
rejected any more.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Collection
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from claims.models import (
    Claim,
    ClaimStatus,
    CouponDuplicatePayment,
    CouponRemedy,
    CouponRemedyKind,
    DuplicatePaymentStatus,
    Policy,
    Program,
)
from claims.parameters import CouponOutageParameters
from support_portal.core.audit import audit_context
from support_portal.customers.models import ID_LENGTH, CouponTransaction, CouponTransactionKind

Actor = AbstractBaseUser | AnonymousUser | None

RULE_RESTORE = "coupon-restore"  # claims.engine.coupon_outage.RULE_RESTORE (no import: the engine imports models)
RESTORE_KEY_PREFIX = "coupon-tx:"
ONE_SECOND = dt.timedelta(seconds=1)


class RemedyRefused(Exception):
    """A remedy or duplicate decision that is not allowed; nothing was changed."""

    NO_ACTOR = "no_actor"
    NOT_APPLICABLE = "not_applicable"
    STATUS = "status_not_allowed"
    ALREADY_RESTORED = "already_restored"

    def __init__(self, *, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def _person(actor: Actor) -> AbstractBaseUser:
    if actor is None or not actor.is_authenticated or isinstance(actor, AnonymousUser):
        raise RemedyRefused(code=RemedyRefused.NO_ACTOR, message="a remedy needs a signed-in person")
    return actor


def remedy_ledger_id(claim_id: int, kind: str, payment_id: str = "", generation: int = 1) -> str:
    """The ledger row's transaction id: readable and unique per (claim, kind, payment, generation).

    A remedy applied again after its reversal is the next generation (suffix `#2`, `#3`, …).
    """
    suffix = f"#{generation}" if generation > 1 else ""
    raw = f"remedy:{claim_id}:{kind}" + (f":{payment_id}" if payment_id else "") + suffix
    if len(raw) <= ID_LENGTH:
        return raw
    return f"remedy:{claim_id}:{kind}:" + hashlib.sha256((payment_id + suffix).encode()).hexdigest()[:32]


def reversal_ledger_id(remedy: CouponRemedy) -> str:
    """The reversing ledger row's id: one per remedy (a remedy is reversed at most once)."""
    return f"remedy-reversal:{remedy.pk}"


def _restorable_payments(claim: Claim) -> list[tuple[str, int]]:
    """(payment id, amount) of the claim's current restore lines that may be restored: payments of the
    claim's coupon as the ledger knows them (a stale line never restores a stranger's), not rejected as
    duplicates by an agent; in line order."""
    restore_lines = list(
        claim.lines.filter(rule=RULE_RESTORE, excluded_reason="", amount_jpy__gt=0)
        .order_by("position")
        .values_list("grant_key", "amount_jpy")
    )
    payment_ids = [key.removeprefix(RESTORE_KEY_PREFIX) for key, _amount in restore_lines]
    rejected = set(
        CouponDuplicatePayment.objects.filter(
            transaction_id__in=payment_ids, status=DuplicatePaymentStatus.REJECTED
        ).values_list("transaction_id", flat=True)
    )
    known = set(
        CouponTransaction.objects.filter(
            pk__in=payment_ids, coupon_id=claim.subject, kind=CouponTransactionKind.PAYMENT
        ).values_list("pk", flat=True)
    )
    return [
        (payment_id, amount)
        for payment_id, (_key, amount) in zip(payment_ids, restore_lines, strict=True)
        if payment_id in known and payment_id not in rejected
    ]


def coupon_remedies_apply_locked(claim: Claim, *, person: AbstractBaseUser) -> list[CouponRemedy]:
    """Brings the live remedies of an approved coupon-outage claim (locked by the caller, program first)
    in line with its current lines: writes the missing ones and reverses restorations the claim no
    longer makes (a re-approval after the lines changed).

    Returns the remedies written now (none for other policies, unapproved claims, or when all exist).
    """
    program = claim.program
    if program.policy != Policy.COUPON_OUTAGE_2023 or claim.status != ClaimStatus.APPROVED or not claim.eligible:
        return []
    params = program.typed_parameters()
    assert isinstance(params, CouponOutageParameters)
    restorable = _restorable_payments(claim)
    coupon_remedies_reverse_locked(claim, person=person, keep_payment_ids={payment for payment, _ in restorable})
    now = timezone.now()
    coupon_id = claim.subject
    # Earlier remedies of this claim, live or reversed: a remedy applied again is their next generation.
    earlier = list(CouponRemedy.objects.filter(claim=claim).values_list("kind", "restored_payment_id", "reversed_at"))

    def generation(kind: str, payment_id: str | None = None) -> int:
        return 1 + sum(1 for k, payment, _at in earlier if k == kind and payment == payment_id)

    ledger: list[CouponTransaction] = []
    remedies: list[CouponRemedy] = []
    if not any(k == CouponRemedyKind.EXPIRY_EXTENSION and at is None for k, _payment, at in earlier):
        entry = CouponTransaction(
            transaction_id=remedy_ledger_id(
                claim.pk, CouponRemedyKind.EXPIRY_EXTENSION, generation=generation(CouponRemedyKind.EXPIRY_EXTENSION)
            ),
            coupon_id=coupon_id,
            kind=CouponTransactionKind.EXPIRY_EXTENSION,
            amount_jpy=0,
            occurred_at=now,
            extended_to=params.remedy_expiry_at,
        )
        ledger.append(entry)
        remedies.append(
            CouponRemedy(
                claim=claim,
                kind=CouponRemedyKind.EXPIRY_EXTENSION,
                coupon_id=coupon_id,
                ledger_entry=entry,
                amount_jpy=0,
                applied_by_id=person.pk,
                applied_at=now,
            )
        )
    # Live restorations of these payments by any claim (the database allows one per payment).
    done = set(
        CouponRemedy.objects.filter(
            kind=CouponRemedyKind.RESTORATION,
            restored_payment_id__in=[payment for payment, _ in restorable],
            reversed_at__isnull=True,
        ).values_list("restored_payment_id", flat=True)
    )
    for payment_id, amount in restorable:
        if payment_id in done:
            continue
        entry = CouponTransaction(
            transaction_id=remedy_ledger_id(
                claim.pk,
                CouponRemedyKind.RESTORATION,
                payment_id,
                generation=generation(CouponRemedyKind.RESTORATION, payment_id),
            ),
            coupon_id=coupon_id,
            kind=CouponTransactionKind.RESTORATION,
            amount_jpy=amount,
            occurred_at=now,
        )
        ledger.append(entry)
        remedies.append(
            CouponRemedy(
                claim=claim,
                kind=CouponRemedyKind.RESTORATION,
                coupon_id=coupon_id,
                restored_payment_id=payment_id,
                ledger_entry=entry,
                amount_jpy=amount,
                applied_by_id=person.pk,
                applied_at=now,
            )
        )
    if ledger:
        CouponTransaction.objects.bulk_create(ledger)
        CouponRemedy.objects.bulk_create(remedies)
    return remedies


def coupon_remedies_reverse_locked(
    claim: Claim, *, person: AbstractBaseUser, keep_payment_ids: Collection[str] | None = None
) -> list[CouponRemedy]:
    """Takes back the live remedies of a locked coupon-outage claim that its decision no longer supports.

    `keep_payment_ids=None` (the claim was rejected): every live remedy. Otherwise (a re-approval) the
    restorations of payments outside `keep_payment_ids`; the expiry extension stays. Each reversal is a
    `remedy_reversal` ledger row (a restoration's amount leaves the balance again) and the remedy row
    records it, who and when. Returns the remedies reversed now.
    """
    if claim.program.policy != Policy.COUPON_OUTAGE_2023:
        return []
    live = CouponRemedy.objects.select_for_update().filter(claim=claim, reversed_at__isnull=True).order_by("pk")
    now = timezone.now()
    reversed_now = [
        remedy
        for remedy in live
        if keep_payment_ids is None
        or (remedy.kind == CouponRemedyKind.RESTORATION and remedy.restored_payment_id not in keep_payment_ids)
    ]
    if not reversed_now:
        return []
    entries = [
        CouponTransaction(
            transaction_id=reversal_ledger_id(remedy),
            coupon_id=remedy.coupon_id,
            kind=CouponTransactionKind.REMEDY_REVERSAL,
            amount_jpy=remedy.amount_jpy,
            occurred_at=now,
        )
        for remedy in reversed_now
    ]
    CouponTransaction.objects.bulk_create(entries)
    for remedy, entry in zip(reversed_now, entries, strict=True):
        remedy.reversal_entry = entry
        remedy.reversed_by_id = person.pk
        remedy.reversed_at = now
    CouponRemedy.objects.bulk_update(reversed_now, ["reversal_entry", "reversed_by", "reversed_at"])
    return reversed_now


def coupon_remedies_apply(*, claim: Claim, actor: Actor) -> list[CouponRemedy]:
    """Writes the missing ledger remedies of one approved coupon-outage claim; idempotent.

    Refused (nothing written): no signed-in actor, another policy, a claim that is not approved.
    Locks the program row, then the claim (the order of program_run and the review services).
    """
    person = _person(actor)
    with audit_context(actor=person, action="coupon_remedies_apply"), transaction.atomic():
        Program.objects.select_for_update().filter(pk=claim.program_id).first()
        locked = Claim.objects.select_for_update().select_related("program").filter(pk=claim.pk).first()
        if locked is None:
            raise RemedyRefused(code=RemedyRefused.NOT_APPLICABLE, message=f"claim {claim.pk} does not exist")
        if locked.program.policy != Policy.COUPON_OUTAGE_2023:
            raise RemedyRefused(
                code=RemedyRefused.NOT_APPLICABLE, message=f"claim {locked}: coupon remedies are for coupon claims"
            )
        if locked.status != ClaimStatus.APPROVED or not locked.eligible:
            raise RemedyRefused(
                code=RemedyRefused.STATUS,
                message=f"claim {locked}: remedies are applied to approved claims, not {locked.get_status_display()}",
            )
        return coupon_remedies_apply_locked(locked, person=person)


# --- class-B2 duplicates: detection (set-based) and the agents' queue ---

DETECT_DUPLICATES_SQL = """
INSERT INTO claims_couponduplicatepayment
       (transaction_id, previous_payment_id, program_id, coupon_id, amount_jpy, status, detected_at, note)
SELECT t.transaction_id, t.previous_id, %(program)s, t.coupon_id, t.amount_jpy, 'pending', %(now)s, ''
  FROM (
      SELECT p.transaction_id, p.coupon_id, p.amount_jpy, p.occurred_at,
             lag(p.occurred_at) OVER w AS previous_at, lag(p.transaction_id) OVER w AS previous_id
        FROM customers_coupontransaction p
       WHERE p.kind = 'payment'
         AND p.coupon_id IN (SELECT coupon_id FROM customers_coupontransaction
                              WHERE kind = 'payment' AND occurred_at >= %(start)s AND occurred_at < %(end)s)
      WINDOW w AS (PARTITION BY p.coupon_id, p.store_name, p.amount_jpy ORDER BY p.occurred_at, p.transaction_id)
  ) t
 WHERE t.occurred_at >= %(start)s AND t.occurred_at < %(end)s
   AND t.previous_at IS NOT NULL AND t.occurred_at - t.previous_at <= %(interval)s
 ORDER BY t.transaction_id
    ON CONFLICT (transaction_id) DO NOTHING
"""


def coupon_duplicates_detect_locked(program: Program) -> int:
    """Queues the program's undetected class-B2 payments (one statement); returns how many were new."""
    params = program.typed_parameters()
    assert isinstance(params, CouponOutageParameters)
    values: dict[str, Any] = {
        "program": program.pk,
        "now": timezone.now(),
        "start": params.outage_starts_at,
        "end": params.outage_ends_at + ONE_SECOND,
        "interval": dt.timedelta(seconds=params.duplicate_interval_seconds),
    }
    with connection.cursor() as cursor:
        cursor.execute(DETECT_DUPLICATES_SQL, values)
        return cursor.rowcount


def coupon_duplicates_detect(*, program: Program, actor: Actor) -> int:
    """Detects the class-B2 duplicate payments of a coupon-outage program for agents to confirm."""
    if program.policy != Policy.COUPON_OUTAGE_2023:
        raise RemedyRefused(
            code=RemedyRefused.NOT_APPLICABLE, message=f"program {program.slug}: duplicates are for coupon programs"
        )
    with audit_context(actor=actor, action="coupon_duplicates_detect", program=program.slug), transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        return coupon_duplicates_detect_locked(locked)


@dataclasses.dataclass(frozen=True)
class DuplicateDecision:
    decided: list[int]  # ids, ascending
    refused: list[tuple[int, str]]  # (id, message)


def coupon_duplicates_decide(
    *, duplicate_ids: list[int], actor: Actor, status: str, note: str = ""
) -> DuplicateDecision:
    """Confirms or rejects pending detected duplicates (ascending id); each refusal changes nothing.

    Rejecting needs a note (what the store's records showed) and is refused for a payment already
    restored in the ledger. A rejection takes effect at the program's next run (the line goes; a
    decided claim goes to re-review), and the remedies never restore a rejected payment meanwhile.
    """
    person = _person(actor)
    if status not in (DuplicatePaymentStatus.CONFIRMED, DuplicatePaymentStatus.REJECTED):
        raise RemedyRefused(code=RemedyRefused.STATUS, message=f"unknown decision {status!r}")
    if status == DuplicatePaymentStatus.REJECTED and not note.strip():
        raise RemedyRefused(code=RemedyRefused.NOT_APPLICABLE, message="say in the note why it is not a duplicate")
    decided: list[int] = []
    refused: list[tuple[int, str]] = []
    with audit_context(actor=person, action=f"coupon_duplicate_{status}"), transaction.atomic():
        rows = {
            row.pk: row
            for row in CouponDuplicatePayment.objects.select_for_update().filter(pk__in=duplicate_ids).order_by("pk")
        }
        restored = set(
            CouponRemedy.objects.filter(
                kind=CouponRemedyKind.RESTORATION,
                restored_payment_id__in=[r.transaction_id for r in rows.values()],
                reversed_at__isnull=True,
            ).values_list("restored_payment_id", flat=True)
        )
        now = timezone.now()
        for pk in sorted(set(duplicate_ids)):
            row = rows.get(pk)
            if row is None:
                refused.append((pk, f"duplicate {pk} does not exist"))
            elif not row.can_decide():
                refused.append((pk, f"payment {row.transaction_id} is already {row.get_status_display()}"))
            elif status == DuplicatePaymentStatus.REJECTED and row.transaction_id in restored:
                refused.append((pk, f"payment {row.transaction_id} is already restored in the ledger"))
            else:
                row.status = status
                row.decided_by_id = person.pk
                row.decided_at = now
                row.note = note
                row.save(update_fields=["status", "decided_by", "decided_at", "note"])
                decided.append(pk)
    return DuplicateDecision(decided=decided, refused=refused)
