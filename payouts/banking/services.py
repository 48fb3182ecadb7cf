"""Services of bank transfers, original-method refunds and reconciliation imports.

Keyword-only, each under `audit_context(actor=…)` and one transaction, each writing a `BankingEvent`.
Payout status moves go through payouts.services (`payout_issue`, `payouts_transition`; a transfer export
issues its file's payouts together); the one thing payouts.services has no public service for yet —
re-offering a single failed payout — is `payout_reoffer` here (a new payout, offer + 1, with its own
idempotency key and a `PayoutTransition`).

Lock order (as in payouts.services): claim rows, then payout rows, then this app's rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone

from claims.models import Claim, ClaimStatus, PayoutMethod
from payouts import crypto
from payouts.banking.conf import senders
from payouts.banking.models import (
    BankAccount,
    BankAccountStatus,
    BankingEvent,
    BankResultImport,
    EventAction,
    ExportStatus,
    ImportOutcome,
    LineResult,
    RefundOutcomeChoice,
    RefundRequest,
    SettlementImport,
    ZenginExport,
    ZenginExportDownload,
    ZenginExportLine,
    mask_account_number,
)
from payouts.banking.providers import BANK_TRANSFER_PROVIDER_NAME
from payouts.models import (
    BATCH_HOLDING_STATUSES,
    Payout,
    PayoutBatch,
    PayoutSecret,
    PayoutStatus,
    PayoutTransition,
    ProgramPayoutPolicy,
    payout_idempotency_key,
)
from payouts.notices import enqueue_send_on_commit, notices_queue_for_payouts
from payouts.reconciliation import (
    Expected,
    ReconciliationResult,
    SettlementFileError,
    SettlementStatus,
    parse_settlement_csv,
    reconcile,
)
from payouts.refunds import refund_due_date
from payouts.services import PayoutRefused, payout_issue, payouts_transition
from payouts.zengin import BankAccount as ZenginAccount
from payouts.zengin import (
    BankAccountError,
    TransferLine,
    TransferResult,
    TransferStatus,
    ZenginError,
    ZenginFormatError,
    customer_code_for,
    parse_transfer_results,
    zengin_export,
)
from support_portal.core.audit import audit_context
from support_portal.core.business_days import JST, BusinessCalendar, business_calendar, end_of_day_jst
from support_portal.customers.models import Customer

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

DEFAULT_REOFFER_DAYS = 30
MAX_EXPORT_TRANSFERS = 20_000  # per file, written in the request: 2,000 take 1.2 s (docs/bank_transfers.md)
REFUND_FLAG_BUSINESS_DAYS = 1  # flag unsent refund requests due by the end of the next business day


class BankingRefused(Exception):
    """A banking step that is not allowed; nothing was changed. `errors` (field → message) for forms."""

    def __init__(self, *, code: str, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.errors = errors or {}

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def _actor_id(actor: Actor) -> int | None:
    if actor is None or not actor.is_authenticated:
        return None
    return int(actor.pk)


def _require_person(actor: Actor, what: str) -> int:
    actor_id = _actor_id(actor)
    if actor_id is None:
        raise BankingRefused(code="no_actor", message=f"{what} needs a signed-in person")
    return actor_id


def _event(*, action: str, actor: Actor, now: dt.datetime, note: str = "", **refs: Any) -> BankingEvent:
    return BankingEvent.objects.create(at=now, actor_id=_actor_id(actor), action=action, note=note[:500], **refs)


# --- bank accounts ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AccountInput:
    """What a customer or agent typed (converted and validated by zengin.BankAccount.from_input)."""

    bank_code: str
    branch_code: str
    account_type: str
    account_number: str = dataclasses.field(repr=False)
    holder_name: str
    bank_name: str = ""
    branch_name: str = ""


ACCOUNT_SOURCES = ("customer", "agent")


def bank_account_record(
    *, customer: Customer, claim: Claim | None = None, account_input: AccountInput, actor: Actor, source: str = "agent"
) -> BankAccount:
    """Records a customer's account (for one claim, or for every payout when `claim` is None): converts
    the holder name to half-width kana, validates the format, encrypts the number, replaces the active
    account of the same (customer, claim). Refuses (BankingRefused with `errors`, nothing changed) when
    invalid."""
    if source not in ACCOUNT_SOURCES:
        raise ValueError(f"source must be one of {ACCOUNT_SOURCES}")
    if claim is not None and customer.pk not in (claim.payee_id or claim.customer_id, claim.customer_id):
        raise BankingRefused(code="not_payee", message="the claim is paid to another customer")
    try:
        account = ZenginAccount.from_input(**dataclasses.asdict(account_input))
    except BankAccountError as exc:
        raise BankingRefused(code="invalid", message="the bank account is not valid", errors=exc.errors) from exc
    with audit_context(actor=actor, action="bank_account_record"), transaction.atomic():
        now = timezone.now()
        Customer.objects.select_for_update().filter(pk=customer.pk).first()
        replaced = BankAccount.objects.filter(customer=customer, claim=claim, status=BankAccountStatus.ACTIVE).update(
            status=BankAccountStatus.REPLACED, closed_at=now
        )
        record = BankAccount.objects.create(
            customer=customer,
            claim=claim,
            bank_code=account.bank_code,
            bank_name_kana=account.bank_name_kana,
            branch_code=account.branch_code,
            branch_name_kana=account.branch_name_kana,
            account_type=account.account_type,
            account_number_ciphertext=crypto.encrypt(account.account_number),
            account_number_masked=mask_account_number(account.account_number),
            holder_kana=account.holder_kana,
            created_at=now,
            created_by_id=_actor_id(actor),
            source=source,
        )
        _event(
            action=EventAction.ACCOUNT_RECORDED,
            actor=actor,
            now=now,
            customer=customer,
            bank_account=record,
            note=f"via {source}" + (", replaced the previous account" if replaced else ""),
        )
    return record


def _zengin_account(record: BankAccount) -> ZenginAccount:
    return ZenginAccount(
        bank_code=record.bank_code,
        branch_code=record.branch_code,
        account_type=record.account_type,
        account_number=record.account_number(),
        holder_kana=record.holder_kana,
        bank_name_kana=record.bank_name_kana,
        branch_name_kana=record.branch_name_kana,
    )


# --- re-offer --------------------------------------------------------------------------------------


def payout_reoffer(*, payout_id: int, actor: Actor, reason: str, method: str = "") -> Payout | None:
    """A new payout for a failed or expired one (same claim and amount; `method` defaults to the same):
    offer + 1, key ``payout:<claim>:<method>:<offer>``, receipt period from the program's payout policy
    (30 days without one). Returns None (nothing changed) when the claim is no longer approved or a live
    payout of that method already exists; refuses when the payout is not failed / expired."""
    with audit_context(actor=actor, action="payout_reoffer"), transaction.atomic():
        claim_id = Payout.objects.filter(pk=payout_id).values_list("claim_id", flat=True).first()
        if claim_id is None:
            raise BankingRefused(code="not_found", message=f"payout {payout_id} does not exist")
        claim = Claim.objects.select_for_update().get(pk=claim_id)
        old = Payout.objects.select_for_update().get(pk=payout_id)
        if old.status not in (PayoutStatus.FAILED, PayoutStatus.EXPIRED):
            raise BankingRefused(code="status_not_allowed", message=f"payout {old.pk} is {old.status}, not re-offered")
        if claim.status != ClaimStatus.APPROVED:
            return None
        method = method or old.method
        same_method = Payout.objects.filter(claim_id=claim.pk, method=method)
        if same_method.filter(status__in=(PayoutStatus.CREATED, PayoutStatus.ISSUED, PayoutStatus.NOTIFIED)).exists():
            return None
        if Payout.objects.filter(claim_id=claim.pk, status=PayoutStatus.SETTLED).exists():
            return None
        offer = (same_method.aggregate(top=Max("offer"))["top"] or 0) + 1
        policy = ProgramPayoutPolicy.objects.filter(program_id=old.program_id).first()
        days = policy.reoffer_receipt_days if policy is not None else DEFAULT_REOFFER_DAYS
        now = timezone.now()
        new = Payout.objects.create(
            claim_id=claim.pk,
            program_id=old.program_id,
            method=method,
            amount_jpy=old.amount_jpy,
            payee_id=old.payee_id,
            status=PayoutStatus.CREATED,
            idempotency_key=payout_idempotency_key(claim_id=claim.pk, method=method, offer=offer),
            expires_at=end_of_day_jst(timezone.localdate(now, timezone=JST) + dt.timedelta(days=days)),
            created_at=now,
            updated_at=now,
            offer=offer,
        )
        PayoutTransition.objects.create(
            payout=new,
            at=now,
            actor_id=_actor_id(actor),
            status_before="",
            status_after=PayoutStatus.CREATED,
            note=f"re-offer of payout {old.pk}: {reason}"[:500],
        )
        _event(
            action=EventAction.REOFFERED,
            actor=actor,
            now=now,
            payout=new,
            customer_id=old.payee_id,
            note=f"re-offer of payout {old.pk} ({reason})",
        )
    logger.info("payout re-offered", extra={"payout_id": payout_id, "new_payout_id": new.pk})
    return new


# --- Zengin export ---------------------------------------------------------------------------------

_CANDIDATES_SQL = """
SELECT p.id, p.claim_id, p.amount_jpy, acc.id
FROM {payout} p
JOIN {claim} c ON c.id = p.claim_id
JOIN LATERAL (
    SELECT a.id FROM {account} a
    WHERE a.customer_id = p.payee_id AND a.status = 'active' AND (a.claim_id = p.claim_id OR a.claim_id IS NULL)
    ORDER BY a.claim_id NULLS LAST
    LIMIT 1
) acc ON TRUE
WHERE p.method = %(method)s AND p.status = 'created' AND c.status = 'approved'
  AND (p.expires_at IS NULL OR p.expires_at > %(now)s)
  AND (%(program_id)s::bigint IS NULL OR p.program_id = %(program_id)s::bigint)
  AND NOT EXISTS (SELECT 1 FROM {line} l WHERE l.payout_id = p.id)
  AND NOT EXISTS (SELECT 1 FROM {batch} b WHERE b.id = p.batch_id AND b.status = ANY(%(held)s))
ORDER BY p.id
LIMIT %(limit)s
"""


def bank_payouts_ready_for_export(*, program_id: int | None = None, limit: int = MAX_EXPORT_TRANSFERS) -> list[tuple]:
    """(payout id, claim id, amount, bank account id) of the bank-transfer payouts an export would write:
    created, claim approved, not past the deadline, not in a file yet, with an active account (the
    claim's own, else the customer's). One query."""
    sql = _CANDIDATES_SQL.format(
        payout=Payout._meta.db_table,
        claim=Claim._meta.db_table,
        account=BankAccount._meta.db_table,
        line=ZenginExportLine._meta.db_table,
        batch=PayoutBatch._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "method": PayoutMethod.BANK_TRANSFER,
                "now": timezone.now(),
                "program_id": program_id,
                "limit": limit,
                "held": list(BATCH_HOLDING_STATUSES),
            },
        )
        return [tuple(row) for row in cursor.fetchall()]


def zengin_export_create(
    *,
    actor: Actor,
    transfer_date: dt.date,
    sender_key: str,
    program_id: int | None = None,
    limit: int = MAX_EXPORT_TRANSFERS,
) -> ZenginExport:
    """Writes the 総合振込 file of every bank-transfer payout ready for it (set-based selection, claims and
    payouts locked in order), stores it (bytes, sha256, totals), and issues its payouts together
    (`_issue_exported`: status, transition with the actor, secret row, notice — set-based). All or
    nothing: a payout that cannot be issued rolls the whole export back. Refuses when there is nothing
    to write."""
    actor_id = _require_person(actor, "a transfer export")
    sender = senders().get(sender_key)
    if sender is None:
        raise BankingRefused(code="unknown_sender", message=f"no sender account {sender_key!r}")
    if transfer_date < timezone.localdate(timezone=JST):
        raise BankingRefused(code="date_past", message="the transfer date (取組日) is in the past")
    crypto.require_key()
    with audit_context(actor=actor, action="zengin_export_create"), transaction.atomic():
        candidates = bank_payouts_ready_for_export(program_id=program_id, limit=limit)
        claim_ids = sorted({row[1] for row in candidates})
        list(Claim.objects.select_for_update().filter(pk__in=claim_ids).order_by("pk").values_list("pk"))
        locked = set(
            Payout.objects.select_for_update()
            .filter(pk__in=[row[0] for row in candidates], status=PayoutStatus.CREATED)
            .values_list("pk", flat=True)
        )
        rows = [row for row in candidates if row[0] in locked]
        if not rows:
            raise BankingRefused(code="nothing_to_export", message="no bank-transfer payout is ready for a file")
        accounts = BankAccount.objects.in_bulk([row[3] for row in rows])
        lines = [
            TransferLine(
                account=_zengin_account(accounts[account_id]),
                amount_jpy=amount,
                customer_code=customer_code_for(payout_id),
            )
            for payout_id, _claim_id, amount, account_id in rows
        ]
        try:
            content = zengin_export(header=sender.header(transfer_date=transfer_date), lines=lines)
        except ZenginError as exc:
            raise BankingRefused(code="format", message=f"the transfer file cannot be written: {exc}") from exc
        now = timezone.now()
        export = ZenginExport.objects.create(
            transfer_date=transfer_date,
            sender_key=sender.key,
            sender_label=sender.label,
            file_name=f"sogo_furikomi_{transfer_date:%Y%m%d}_{now.astimezone(JST):%H%M%S}.txt",
            content_ciphertext=crypto.encrypt_bytes(content),
            sha256=hashlib.sha256(content).hexdigest(),
            total_count=len(rows),
            total_amount_jpy=sum(row[2] for row in rows),
            created_by_id=actor_id,
            created_at=now,
        )
        ZenginExportLine.objects.bulk_create(
            ZenginExportLine(
                export=export,
                payout_id=payout_id,
                bank_account_id=account_id,
                customer_code=customer_code_for(payout_id),
                amount_jpy=amount,
            )
            for payout_id, _claim_id, amount, account_id in rows
        )
        _issue_exported(export=export, payout_ids=[row[0] for row in rows], actor_id=actor_id, now=now)
        _event(
            action=EventAction.EXPORT_CREATED,
            actor=actor,
            now=now,
            export=export,
            note=f"{export.total_count} transfers, ¥{export.total_amount_jpy:,}, 取組日 {transfer_date}",
        )
    logger.info("zengin export written", extra={"export_id": export.pk, "transfers": export.total_count})
    return export


# Writing a transfer into the file is what issues it (payouts.banking.providers): the file's payouts move
# from created to issued together, each only if still created and its claim still approves its amount.
_ISSUE_EXPORTED_SQL = """
WITH issued AS (
    UPDATE {payout} p
       SET status = 'issued', attempts = p.attempts + 1, provider = %(provider)s,
           provider_reference = 'ZEN-' || l.export_id || '-' || l.customer_code,
           issued_at = %(now)s, last_error = '', updated_at = %(now)s
      FROM {line} l, {claim} c
     WHERE l.export_id = %(export)s AND p.id = l.payout_id AND c.id = p.claim_id
       AND p.status = 'created' AND l.amount_jpy = p.amount_jpy
       AND c.status = 'approved' AND c.approved_amount_jpy = p.amount_jpy
    RETURNING p.id
)
INSERT INTO {transition} (payout_id, at, actor_id, status_before, status_after, note)
SELECT id, %(now)s, %(actor)s, 'created', 'issued', '' FROM issued ORDER BY id
RETURNING payout_id
"""


def _issue_exported(*, export: ZenginExport, payout_ids: list[int], actor_id: int, now: dt.datetime) -> None:
    """Issues the export's payouts (locked by the caller) in a handful of statements: status and reference
    with one transition each (who, when), an (empty) secret row each — a transfer has no code — and
    their notices in the outbox, sent after commit. Refuses (the caller's transaction rolls back) unless
    every payout of the file was issued."""
    sql = _ISSUE_EXPORTED_SQL.format(
        payout=Payout._meta.db_table,
        line=ZenginExportLine._meta.db_table,
        claim=Claim._meta.db_table,
        transition=PayoutTransition._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {"provider": BANK_TRANSFER_PROVIDER_NAME, "export": export.pk, "now": now, "actor": actor_id}
        )
        issued = {row[0] for row in cursor.fetchall()}
    missing = sorted(set(payout_ids) - issued)
    if missing:
        raise BankingRefused(
            code="issue_failed",
            message=f"payout {missing[0]} could not be issued (no longer created, or its claim changed); "
            f"{len(missing)} in all; nothing was exported",
        )
    secrets = []
    for payout_id in sorted(issued):
        ciphertext, masked = PayoutSecret.seal()
        secrets.append(PayoutSecret(payout_id=payout_id, ciphertext=ciphertext, masked=masked, created_at=now))
    PayoutSecret.objects.bulk_create(secrets, batch_size=5_000)
    notices_queue_for_payouts(payout_ids=sorted(issued), now=now)
    enqueue_send_on_commit()


def zengin_export_download(*, export: ZenginExport, actor: Actor) -> bytes:
    """The file's bytes for a finance user; records who downloaded it and when (same transaction)."""
    actor_id = _require_person(actor, "downloading a transfer file")
    with audit_context(actor=actor, action="zengin_export_download"), transaction.atomic():
        now = timezone.now()
        ZenginExportDownload.objects.create(export=export, actor_id=actor_id, at=now)
        _event(action=EventAction.EXPORT_DOWNLOADED, actor=actor, now=now, export=export)
        ciphertext = ZenginExport.objects.values_list("content_ciphertext", flat=True).get(pk=export.pk)
    return crypto.decrypt_bytes(ciphertext)


# --- imports (bank results, settlement files) ------------------------------------------------------


def _differences(result: ReconciliationResult, conflicts: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "missing": list(result.missing),
        "unexpected": [{"reference": r.reference, "amount_jpy": r.amount_jpy} for r in result.unexpected],
        "amount_mismatches": [
            {"reference": m.reference, "expected_jpy": m.expected_jpy, "reported_jpy": m.reported_jpy}
            for m in result.amount_mismatches
        ],
        "status_mismatches": [
            {"reference": m.reference, "expected": m.expected_status, "reported": m.reported_status}
            for m in result.status_mismatches
        ],
        "duplicates": [r.reference for r in result.duplicates],
        "conflicts": conflicts,
    }


def _has_differences(differences: dict[str, Any]) -> bool:
    return any(differences.values())


@dataclasses.dataclass
class _Applied:
    settled: int = 0
    failed: int = 0
    expired: int = 0
    unchanged: int = 0
    reoffered: int = 0
    conflicts: list[dict[str, str]] = dataclasses.field(default_factory=list)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _move_and_count(
    *, notes: dict[int, str], to: str, reference_of: dict[int, str], actor: Actor, applied: _Applied
) -> list[int]:
    """Moves the payouts of an import's rows to `to` together (`payouts_transition`) and counts the outcome:
    moved ones by target, those already there unchanged, those that cannot move conflicts (reported, nothing
    changed). Returns the ids moved."""
    moved = payouts_transition(notes=notes, to=to, actor=actor)
    applied.unchanged += len(moved.unchanged)
    applied.conflicts.extend(
        {
            "reference": reference_of[pk],
            "reported": to,
            "payout_status": status,
            "error": f"payout {pk}: cannot move from {status} to {to}",
        }
        for pk, status in moved.refused.items()
    )
    if to == PayoutStatus.SETTLED:
        applied.settled += len(moved.moved)
    elif to == PayoutStatus.EXPIRED:
        applied.expired += len(moved.moved)
    else:
        applied.failed += len(moved.moved)
    return moved.moved


def _apply_returned_line(
    line: ZenginExportLine,
    transfer: TransferResult,
    *,
    record: BankResultImport,
    actor: Actor,
    now: dt.datetime,
    applied: _Applied,
) -> None:
    """A returned transfer (振込不能, few per file): payout failed with the reason, the account marked
    returned, a re-offer."""
    reason = f"振込不能 {transfer.reason_code} {transfer.reason_ja} ({transfer.reason_en})"
    note = f"bank result {record.pk}: {reason}"
    code = line.customer_code
    moved = _move_and_count(
        notes={line.payout_id: note},
        to=PayoutStatus.FAILED,
        reference_of={line.payout_id: code},
        actor=actor,
        applied=applied,
    )
    BankAccount.objects.filter(pk=line.bank_account_id, status=BankAccountStatus.ACTIVE).update(
        status=BankAccountStatus.RETURNED, closed_at=now, return_reason=reason[:100]
    )
    _event(
        action=EventAction.ACCOUNT_RETURNED,
        actor=actor,
        now=now,
        bank_account_id=line.bank_account_id,
        payout_id=line.payout_id,
        note=reason,
    )
    if moved and payout_reoffer(payout_id=line.payout_id, actor=actor, reason=reason) is not None:
        applied.reoffered += 1


def _apply_bank_results(
    matched: list[tuple[ZenginExportLine, TransferResult]],
    *,
    record: BankResultImport,
    actor: Actor,
    now: dt.datetime,
    applied: _Applied,
) -> None:
    """The matched transfers of a result file. Settled ones (nearly all) move their payouts together
    (`payouts_transition`); returned ones go one by one. A line that already has its result counts as
    unchanged; every other line records its result, reason code and this import."""
    settled: dict[int, str] = {}
    code_of: dict[int, str] = {}
    answered: list[ZenginExportLine] = []
    for line, transfer in matched:
        if line.result != LineResult.PENDING:
            applied.unchanged += 1
            continue
        if transfer.status == TransferStatus.SETTLED:
            settled[line.payout_id] = f"bank result {record.pk}: 振込済"
            code_of[line.payout_id] = line.customer_code
            line.result = LineResult.SETTLED
        else:
            _apply_returned_line(line, transfer, record=record, actor=actor, now=now, applied=applied)
            line.result = LineResult.RETURNED
        line.reason_code = transfer.reason_code
        line.result_import = record
        answered.append(line)
    if settled:
        _move_and_count(notes=settled, to=PayoutStatus.SETTLED, reference_of=code_of, actor=actor, applied=applied)
    ZenginExportLine.objects.bulk_update(answered, ["result", "reason_code", "result_import"], batch_size=5_000)


def bank_results_import(*, actor: Actor, data: bytes, file_name: str) -> BankResultImport:
    """Imports the bank's answer to one transfer file: settled → payout settled; returned (振込不能) →
    payout failed with the reason, the account marked returned, and a re-offer (a new bank-transfer
    payout that waits for a corrected account). Differences (transfers missing from the answer, unknown
    ones, other amounts) are recorded and shown. The same file twice is refused (sha256, nothing changes)."""
    actor_id = _require_person(actor, "importing a bank result")
    sha = _sha(data)
    if BankResultImport.objects.filter(sha256=sha).exists():
        raise BankingRefused(code="already_imported", message="this result file was imported already")
    try:
        results = parse_transfer_results(data)
    except ZenginFormatError as exc:
        raise BankingRefused(code="format", message=f"not a valid result file: {exc}") from exc
    codes = {result.customer_code for result in results}
    export_ids = set(ZenginExportLine.objects.filter(customer_code__in=codes).values_list("export_id", flat=True))
    if len(export_ids) != 1:
        raise BankingRefused(
            code="no_export",
            message="the result file matches no transfer export"
            if not export_ids
            else "the result file mixes transfers of several exports",
        )
    with audit_context(actor=actor, action="bank_results_import"), transaction.atomic():
        export = ZenginExport.objects.select_for_update().get(pk=export_ids.pop())
        lines = {line.customer_code: line for line in ZenginExportLine.objects.filter(export=export)}
        result = reconcile(expected={code: line.amount_jpy for code, line in lines.items()}, reported=results)
        now = timezone.now()
        try:
            with transaction.atomic():
                record = BankResultImport.objects.create(
                    export=export,
                    file_name=file_name[:200],
                    sha256=sha,
                    content_ciphertext=crypto.encrypt_bytes(data),
                    imported_by_id=actor_id,
                    imported_at=now,
                    rows=len(results),
                    outcome=ImportOutcome.CLEAN,
                )
        except IntegrityError as exc:  # the same file imported at the same moment
            raise BankingRefused(code="already_imported", message="this result file was imported already") from exc
        by_code = {r.customer_code: r for r in results}
        applied = _Applied()
        _apply_bank_results(
            [(lines[matched.reference], by_code[matched.reference]) for matched in result.matched],
            record=record,
            actor=actor,
            now=now,
            applied=applied,
        )
        differences = _differences(result, applied.conflicts)
        record.settled_count = applied.settled
        record.failed_count = applied.failed
        record.unchanged_count = applied.unchanged
        record.reoffered_count = applied.reoffered
        record.differences = differences
        record.outcome = ImportOutcome.DIFFERENCES if _has_differences(differences) else ImportOutcome.CLEAN
        record.save()
        if not ZenginExportLine.objects.filter(export=export, result=LineResult.PENDING).exists():
            export.status = ExportStatus.RESULTS_IMPORTED
            export.save(update_fields=["status"])
        note = f"{file_name}: {applied.settled} settled, {applied.failed} returned, {record.outcome}"
        _event(action=EventAction.RESULT_IMPORTED, actor=actor, now=now, export=export, note=note)
    logger.info("bank result imported", extra={"import_id": record.pk, "outcome": record.outcome})
    return record


_SETTLEMENT_TARGET = {
    SettlementStatus.PICKED_UP: PayoutStatus.SETTLED,
    SettlementStatus.EXPIRED: PayoutStatus.EXPIRED,
    SettlementStatus.RETURNED: PayoutStatus.FAILED,
}


def _apply_settlement_moves(
    *, notes: dict[str, dict[int, str]], reference_of: dict[int, str], actor: Actor, applied: _Applied
) -> None:
    """One set-based move per target status (`payouts_transition`); payouts that cannot move are conflicts,
    those already there unchanged; a returned payout is offered again (few, one by one)."""
    for target, payout_notes in notes.items():
        if not payout_notes:
            continue
        moved = _move_and_count(notes=payout_notes, to=target, reference_of=reference_of, actor=actor, applied=applied)
        if target == PayoutStatus.FAILED:
            for payout_id in moved:
                if payout_reoffer(payout_id=payout_id, actor=actor, reason="returned by the provider"):
                    applied.reoffered += 1


def settlement_import(*, actor: Actor, data: bytes, file_name: str) -> SettlementImport:
    """Imports a provider's settlement file: picked_up → settled, expired → expired, returned → failed and
    re-offered. Rows are matched on the payout's provider reference; unknown references and other amounts
    are recorded as differences and change nothing. The same file twice is refused (sha256). The moves
    are set-based (`payouts_transition`, one per target status); only re-offers go one by one."""
    actor_id = _require_person(actor, "importing a settlement file")
    sha = _sha(data)
    if SettlementImport.objects.filter(sha256=sha).exists():
        raise BankingRefused(code="already_imported", message="this settlement file was imported already")
    try:
        rows = parse_settlement_csv(data)
    except SettlementFileError as exc:
        raise BankingRefused(code="format", message=f"not a valid settlement file: {exc}") from exc
    with audit_context(actor=actor, action="settlement_import"), transaction.atomic():
        now = timezone.now()
        try:
            with transaction.atomic():
                record = SettlementImport.objects.create(
                    file_name=file_name[:200],
                    sha256=sha,
                    content_ciphertext=crypto.encrypt_bytes(data),
                    imported_by_id=actor_id,
                    imported_at=now,
                    rows=len(rows),
                    outcome=ImportOutcome.CLEAN,
                )
        except IntegrityError as exc:
            raise BankingRefused(code="already_imported", message="this settlement file was imported already") from exc
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT provider_reference, id, amount_jpy, provider FROM {Payout._meta.db_table}"
                " WHERE provider_reference = ANY(%s::text[])",
                [sorted({row.reference for row in rows})],
            )
            payouts = {reference: (pk, amount, provider) for reference, pk, amount, provider in cursor.fetchall()}
        result = reconcile(
            expected={ref: Expected(amount) for ref, (_pk, amount, _p) in payouts.items()}, reported=rows
        )
        by_reference = {row.reference: row for row in rows}
        applied = _Applied()
        # The matched rows by target status, each payout with its note; then one set-based move per target.
        notes: dict[str, dict[int, str]] = {to: {} for to in _SETTLEMENT_TARGET.values()}
        reference_of: dict[int, str] = {}
        for matched in result.matched:
            row = by_reference[matched.reference]
            payout_id, _amount, provider = payouts[matched.reference]
            if provider != row.provider:
                applied.conflicts.append(
                    {
                        "reference": row.reference,
                        "reported": row.provider,
                        "payout_status": provider,
                        "error": "reported by another provider",
                    }
                )
                continue
            notes[_SETTLEMENT_TARGET[row.status]][payout_id] = (
                f"settlement {record.pk}: {row.status} at {row.at:%Y-%m-%d %H:%M}"
            )
            reference_of[payout_id] = row.reference
        _apply_settlement_moves(notes=notes, reference_of=reference_of, actor=actor, applied=applied)
        differences = _differences(result, applied.conflicts)
        record.settled_count = applied.settled
        record.failed_count = applied.failed
        record.expired_count = applied.expired
        record.unchanged_count = applied.unchanged
        record.reoffered_count = applied.reoffered
        record.differences = differences
        record.outcome = ImportOutcome.DIFFERENCES if _has_differences(differences) else ImportOutcome.CLEAN
        record.save()
        note = f"{file_name}: {applied.settled} settled, {applied.expired} expired, {applied.failed} returned"
        _event(action=EventAction.SETTLEMENT_IMPORTED, actor=actor, now=now, note=note)
    logger.info("settlement imported", extra={"import_id": record.pk, "outcome": record.outcome})
    return record


# --- refunds to the original payment method --------------------------------------------------------


def _requested_at(claim: Claim) -> dt.datetime:
    """The customer's request: the official submission's submitted_at, else when the claim was computed."""
    if claim.official_submission_id:
        submitted = claim.official_submission.submitted_at if claim.official_submission else None
        if submitted is not None:
            return submitted
    return claim.computed_at


def refund_request_ensure(*, payout: Payout, calendar: BusinessCalendar | None = None) -> RefundRequest:
    """The payout's RefundRequest, created when missing (requested_at, due_at = refund_due_date)."""
    existing = RefundRequest.objects.filter(payout=payout).first()
    if existing is not None:
        return existing
    claim = Claim.objects.select_related("official_submission").get(pk=payout.claim_id)
    requested_at = _requested_at(claim)
    calendar = calendar or business_calendar()
    request, _created = RefundRequest.objects.get_or_create(
        payout=payout,
        defaults={
            "charge_id": claim.subject,
            "amount_jpy": payout.amount_jpy,
            "requested_at": requested_at,
            "due_at": refund_due_date(requested_at=requested_at, calendar=calendar),
        },
    )
    return request


def refund_requests_prepare(*, limit: int = 10_000) -> int:
    """Creates the RefundRequest of every original-method payout that has none (one calendar, bulk)."""
    payouts = list(
        Payout.objects.filter(method=PayoutMethod.ORIGINAL_METHOD, refund_request__isnull=True)
        .select_related("claim__official_submission")
        .order_by("pk")[:limit]
    )
    if not payouts:
        return 0
    calendar = business_calendar()
    rows = []
    for payout in payouts:
        requested_at = _requested_at(payout.claim)
        rows.append(
            RefundRequest(
                payout=payout,
                charge_id=payout.claim.subject,
                amount_jpy=payout.amount_jpy,
                requested_at=requested_at,
                due_at=refund_due_date(requested_at=requested_at, calendar=calendar),
            )
        )
    with audit_context(actor=None, action="refund_requests_prepare"):
        created = RefundRequest.objects.bulk_create(rows, ignore_conflicts=True)
    return len(created)


@dataclasses.dataclass(frozen=True)
class RefundRun:
    prepared: int
    sent: int
    failed: int
    flagged: int
    reoffered: int


def refund_requests_send(*, now: dt.datetime | None = None, limit: int = 1_000) -> RefundRun:
    """The beat job: prepares missing refund requests, sends the pending ones (earliest due first) through
    `payout_issue` (→ OriginalMethodProvider), re-offers as a bank transfer the refunds with no account to
    go back to, and flags unsent requests due by the end of the next business day (or already late)."""
    prepared = refund_requests_prepare()
    sent = failed = 0
    pending = list(
        RefundRequest.objects.filter(outcome=RefundOutcomeChoice.PENDING, payout__status=PayoutStatus.CREATED)
        .order_by("due_at", "pk")
        .values_list("payout_id", flat=True)[:limit]
    )
    for payout_id in pending:
        try:
            payout = payout_issue(payout_id=payout_id)
        except PayoutRefused as exc:
            logger.warning("refund not sent", extra={"payout_id": payout_id, "code": exc.code})
            continue
        except Exception:  # a temporary provider error: recorded on the payout, retried next run
            logger.warning("refund send failed temporarily", extra={"payout_id": payout_id}, exc_info=True)
            continue
        if payout is not None and payout.status == PayoutStatus.ISSUED:
            sent += 1
        elif payout is not None and payout.status == PayoutStatus.FAILED:
            failed += 1
    reoffered = _refunds_reoffer_as_bank_transfer()
    flagged = refund_requests_flag(now=now)
    logger.info("refund run", extra={"sent": sent, "failed": failed, "flagged": flagged})
    return RefundRun(prepared=prepared, sent=sent, failed=failed, flagged=flagged, reoffered=reoffered)


def _refunds_reoffer_as_bank_transfer() -> int:
    ids = list(
        RefundRequest.objects.filter(
            outcome=RefundOutcomeChoice.NEEDS_BANK_ACCOUNT, payout__status=PayoutStatus.FAILED
        ).values_list("payout_id", "payout__claim_id")
    )
    reoffered = 0
    for payout_id, claim_id in ids:
        if Payout.objects.filter(claim_id=claim_id, method=PayoutMethod.BANK_TRANSFER).exists():
            continue
        reason = "no account to refund the payment to: bank transfer"
        if payout_reoffer(payout_id=payout_id, actor=None, reason=reason, method=PayoutMethod.BANK_TRANSFER):
            reoffered += 1
    return reoffered


def refund_requests_flag(*, now: dt.datetime | None = None, calendar: BusinessCalendar | None = None) -> int:
    """Flags (flagged_at, an event each) the unsent refund requests due by the end of the next business
    day, late ones included; each is flagged once."""
    now = now or timezone.now()
    calendar = calendar or business_calendar()
    horizon = end_of_day_jst(
        calendar.add_business_days(timezone.localdate(now, timezone=JST), REFUND_FLAG_BUSINESS_DAYS)
    )
    with audit_context(actor=None, action="refund_requests_flag"), transaction.atomic():
        due = list(
            RefundRequest.objects.select_for_update()
            .filter(
                outcome=RefundOutcomeChoice.PENDING, sent_at__isnull=True, flagged_at__isnull=True, due_at__lte=horizon
            )
            .values_list("pk", "payout_id", "due_at")
        )
        if due:
            RefundRequest.objects.filter(pk__in=[row[0] for row in due]).update(flagged_at=now)
            BankingEvent.objects.bulk_create(
                BankingEvent(
                    at=now,
                    action=EventAction.REFUND_FLAGGED,
                    payout_id=payout_id,
                    note=("late: was due " if due_at < now else "due ")
                    + f"{due_at.astimezone(JST):%Y-%m-%d %H:%M} JST",
                )
                for _pk, payout_id, due_at in due
            )
    if due:
        logger.warning("refund requests due soon", extra={"count": len(due)})
    return len(due)


def active_bank_account_for(*, customer_id: str, claim_id: int | None = None) -> BankAccount | None:
    """The account an export would use: the claim's own, else the customer's (active only)."""
    accounts: Iterable[BankAccount] = BankAccount.objects.filter(
        customer_id=customer_id, status=BankAccountStatus.ACTIVE
    ).order_by("claim_id")
    by_claim = {account.claim_id: account for account in accounts}
    return by_claim.get(claim_id) or by_claim.get(None)
