"""Payouts: one payment of an approved claim's amount through one payout method.

- `Payout` — one LIVE payout per (claim, method) (partial UNIQUE on created / issued / notified / settled)
  and one per idempotency key (UNIQUE); a re-offer after an unclaimed payout expired is the next `offer`
  (UNIQUE (claim, method, offer); key suffix `:<offer>`). Its status moves only along
  `PAYOUT_STATUS_TRANSITIONS` (created → issued → notified → settled, with expired / failed / cancelled as
  ends). Every move writes a `PayoutTransition` (who, when, from, to) and
  the row itself is under statement-level history triggers (`set_history()`, database triggers).
- `PayoutSecret` — what the customer needs to receive the money (ATM voucher code + PIN, or a receive URL),
  Fernet-encrypted at rest (payouts.crypto). Kept in its own table so the audit snapshots of `Payout`
  never copy it, and never printed: `__str__`/`repr` name the payout only, `masked()` shows the last digits.
- `SimulatorIssuance` — what the local provider simulators issued, one row per idempotency key (UNIQUE):
  the proof that a provider saw one issuance however often it was asked.
- `PayoutBatch` (+ `PayoutBatchTransition`) — a chunked, resumable run issuing many payouts (payouts.batches).
- `PayoutNotice` — the transactional outbox of customer notices, one per (payout, kind, sequence)
  (payouts.notices); `SimulatedSms` — what the SMS gateway simulator accepted, one per message key.
- `ProgramPayoutPolicy` — per-program payout settings (notice language, reminders, re-offers).
- `PayoutSecretReveal` — who revealed which code, when and why (the audited secret view).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from claims.models import Claim, PayoutMethod, Program
from payouts import crypto
from support_portal.core.audit import decision_history
from support_portal.core.masking import mask_secret
from support_portal.customers.models import Customer


class PayoutStatus(models.TextChoices):
    CREATED = "created", _("Created")
    ISSUED = "issued", _("Issued (code or URL obtained)")
    NOTIFIED = "notified", _("Notified to the customer")
    SETTLED = "settled", _("Settled (received)")
    EXPIRED = "expired", _("Expired (not received by the deadline)")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


PAYOUT_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    PayoutStatus.CREATED: frozenset(
        {PayoutStatus.ISSUED, PayoutStatus.EXPIRED, PayoutStatus.FAILED, PayoutStatus.CANCELLED}
    ),
    PayoutStatus.ISSUED: frozenset(
        {PayoutStatus.NOTIFIED, PayoutStatus.SETTLED, PayoutStatus.EXPIRED, PayoutStatus.FAILED}
    ),
    PayoutStatus.NOTIFIED: frozenset({PayoutStatus.SETTLED, PayoutStatus.EXPIRED, PayoutStatus.FAILED}),
    PayoutStatus.SETTLED: frozenset(),
    PayoutStatus.EXPIRED: frozenset(),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.CANCELLED: frozenset(),
}


LIVE_PAYOUT_STATUSES: tuple[str, ...] = (
    PayoutStatus.CREATED,
    PayoutStatus.ISSUED,
    PayoutStatus.NOTIFIED,
    PayoutStatus.SETTLED,
)


def payout_idempotency_key(*, claim_id: int, method: str, offer: int = 1) -> str:
    """The key sent to the provider; the same payout always gets the same key (SQL in services mirrors it).

    A re-offer (a new payout after the first expired unclaimed) is offer 2, 3…: its key gets the suffix.
    """
    base = f"payout:{claim_id}:{method}"
    return base if offer == 1 else f"{base}:{offer}"


def set_history() -> Any:
    """`decision_history()` with statement-level triggers: the same events (a snapshot on insert, on every
    update, on delete, with the audit context) written once per statement from its transition table, so
    a batch that creates or issues many payouts in one statement writes their history set-based (a
    row-level trigger attaches the audit context once per row: ~0.8 ms a row, 13 minutes at 1M)."""
    return pghistory.track(
        pghistory.InsertEvent("insert"),
        pghistory.UpdateEvent("update"),
        pghistory.DeleteEvent("delete"),
        level=pghistory.Statement,
    )


@set_history()
class Payout(models.Model):
    # No single-column indexes on claim / program / batch: the (claim, method, offer) UNIQUE and the
    # (program, status) index lead with the first two; batches are never deleted and their open rows are
    # found through payout_batch_todo_idx (fewer indexes to write per payout).
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="payouts", db_index=False)
    # The claim's program, copied so the admin and the sweep filter without joining claims.
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="payouts", db_index=False)
    method = models.CharField(_("method"), max_length=32, choices=PayoutMethod.choices)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    # Indexed by payout_payee_idx: an automatic index on a text key would come with a second, LIKE-pattern
    # index that no query uses (one more index to write per payout).
    payee = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", db_index=False)
    status = models.CharField(_("status"), max_length=16, choices=PayoutStatus.choices, default=PayoutStatus.CREATED)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    # The program's receipt deadline, 23:59:59.999999 JST; empty when the program has none.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=64, blank=True)
    provider_reference = models.CharField(_("provider reference"), max_length=128, blank=True)
    attempts = models.PositiveIntegerField(_("issue attempts"), default=0)
    # Provider error text only (never a code or URL).
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    # 1 = the first offer; a re-offer after an unclaimed payout expired is 2, 3… (same claim and method).
    offer = models.PositiveSmallIntegerField(_("offer"), default=1)
    # The batch that issues it; empty = issued on its own (approve-and-pay, sweep).
    batch = models.ForeignKey(
        "payouts.PayoutBatch", on_delete=models.PROTECT, null=True, blank=True, related_name="payouts", db_index=False
    )

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        permissions = [
            ("reveal_payout_secret", _("Can reveal a payout's code or receive URL (audited)")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="payout_idempotency_key_unique"),
            # At most one live payout per claim and method; expired / failed / cancelled ones stay as history
            # next to a re-offer, which is numbered (offer) so the key stays unique and deterministic.
            models.UniqueConstraint(
                fields=["claim", "method"],
                condition=models.Q(status__in=LIVE_PAYOUT_STATUSES),
                name="payout_claim_method_live_unique",
            ),
            models.UniqueConstraint(fields=["claim", "method", "offer"], name="payout_claim_method_offer_unique"),
            models.CheckConstraint(condition=models.Q(amount_jpy__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(condition=models.Q(status__in=PayoutStatus.values), name="payout_status_valid"),
        ]
        indexes = [
            models.Index(fields=["payee"], name="payout_payee_idx"),
            models.Index(fields=["program", "status"], name="payout_program_status_idx"),
            # Partial: only payouts still to issue are in them (a batch's rows leave as they are issued).
            # The sweep's look-up of unbatched due payouts, and a batch's next chunk in id order.
            models.Index(
                fields=["updated_at"],
                condition=models.Q(status="created", batch__isnull=True),
                name="payout_unbatched_due_idx",
            ),
            models.Index(fields=["batch", "id"], condition=models.Q(status="created"), name="payout_batch_todo_idx"),
        ]

    def __str__(self) -> str:
        return f"payout {self.pk} ({self.method}, ¥{self.amount_jpy}, {self.status})"

    def can_transition(self, status: str) -> bool:
        return status in PAYOUT_STATUS_TRANSITIONS.get(self.status, frozenset())

    def can_issue(self) -> bool:
        return self.status == PayoutStatus.CREATED

    def can_notify(self) -> bool:
        return self.can_transition(PayoutStatus.NOTIFIED)

    def can_settle(self) -> bool:
        return self.can_transition(PayoutStatus.SETTLED)

    def can_expire(self) -> bool:
        return self.can_transition(PayoutStatus.EXPIRED)

    def can_fail(self) -> bool:
        return self.can_transition(PayoutStatus.FAILED)

    def can_cancel(self) -> bool:
        return self.can_transition(PayoutStatus.CANCELLED)


class PayoutTransition(models.Model):
    """One status move of a payout: who (None = the system), when, from what to what, and why."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="transitions")
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status_before = models.CharField(_("status before"), max_length=16, choices=PayoutStatus.choices, blank=True)
    status_after = models.CharField(_("status after"), max_length=16, choices=PayoutStatus.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payout transition")
        verbose_name_plural = _("payout transitions")
        # Append-only: the database refuses UPDATE and DELETE, whoever asks (docs/audit.md).
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]
        ordering = ["payout", "at", "id"]

    def __str__(self) -> str:
        return f"payout {self.payout_id}: {self.status_before or '—'} → {self.status_after}"


def mask_payout_secret(value: str) -> str:
    """mask_secret (last 4 characters), at most 16 characters long so long receive URLs fit lists."""
    return mask_secret(value)[-16:]


@dataclasses.dataclass(frozen=True)
class RevealedSecret:
    """A decrypted secret; its repr never shows the values."""

    code: str = dataclasses.field(default="", repr=False)
    pin: str = dataclasses.field(default="", repr=False)
    url: str = dataclasses.field(default="", repr=False)

    def masked(self) -> str:
        return mask_payout_secret(self.code or self.url)


def secret_history() -> Any:
    """`set_history()` without the ciphertext: an event records that the secret of a payout was written,
    changed (any column, the ciphertext included: named in the condition) or deleted, with its masked
    value, but never copies the encrypted code into the event table."""
    return pghistory.track(
        pghistory.InsertEvent("insert"),
        pghistory.UpdateEvent("update", condition=pghistory.AnyChange("payout", "ciphertext", "masked", "created_at")),
        pghistory.DeleteEvent("delete"),
        exclude=["ciphertext"],
        level=pghistory.Statement,
    )


@secret_history()
class PayoutSecret(models.Model):
    """The voucher code / PIN / receive URL of an issued payout, encrypted (Fernet token, never plaintext)."""

    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, primary_key=True, related_name="secret")
    ciphertext = models.TextField(_("ciphertext"))
    # mask_secret of the code or URL, computed at issue time so lists never decrypt.
    masked = models.CharField(_("masked code"), max_length=64)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("payout secret")
        verbose_name_plural = _("payout secrets")

    def __str__(self) -> str:
        return f"secret of payout {self.payout_id}"

    @classmethod
    def seal(cls, *, code: str = "", pin: str = "", url: str = "") -> tuple[str, str]:
        """(ciphertext, masked) for a secret."""
        payload = json.dumps({"code": code, "pin": pin, "url": url}, separators=(",", ":"))
        return crypto.encrypt(payload), mask_payout_secret(code or url)

    def reveal(self) -> RevealedSecret:
        data = json.loads(crypto.decrypt(self.ciphertext))
        return RevealedSecret(code=data.get("code", ""), pin=data.get("pin", ""), url=data.get("url", ""))


class SimulatorIssuance(models.Model):
    """What a local provider simulator issued: one row per idempotency key, `requests` counts the asks."""

    provider = models.CharField(_("provider"), max_length=64)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    payee_ref = models.CharField(_("payee reference"), max_length=64)
    reference = models.CharField(_("reference"), max_length=128)
    requests = models.PositiveIntegerField(_("requests"), default=1)
    created_at = models.DateTimeField(_("created at"))
    last_requested_at = models.DateTimeField(_("last requested at"))

    class Meta:
        verbose_name = _("simulator issuance")
        verbose_name_plural = _("simulator issuances")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="simulator_issuance_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.reference}"


class BatchStatus(models.TextChoices):
    SCHEDULED = "scheduled", _("Scheduled")
    RUNNING = "running", _("Running")
    PAUSED = "paused", _("Paused")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")


# A batch in one of these holds its payouts: nothing issues them, sends their notices or writes them into
# a transfer file (not only its own run) until it runs; a cancelled batch holds its issued ones for good.
BATCH_HOLDING_STATUSES: tuple[str, ...] = (BatchStatus.SCHEDULED, BatchStatus.PAUSED, BatchStatus.CANCELLED)


BATCH_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    BatchStatus.SCHEDULED: frozenset({BatchStatus.RUNNING, BatchStatus.PAUSED, BatchStatus.CANCELLED}),
    BatchStatus.RUNNING: frozenset({BatchStatus.PAUSED, BatchStatus.CANCELLED, BatchStatus.COMPLETED}),
    BatchStatus.PAUSED: frozenset({BatchStatus.RUNNING, BatchStatus.CANCELLED}),
    BatchStatus.CANCELLED: frozenset(),
    BatchStatus.COMPLETED: frozenset(),
}


@decision_history()
class PayoutBatch(models.Model):
    """A run that issues many payouts of one program (optionally one method), chunk by chunk.

    Its payouts point at it (Payout.batch). The counters are bumped set-based per chunk, so the progress
    screen reads one row; `last_progress_at` tells the sweep whether a running batch has stalled (its
    worker died) and must be handed to a worker again.
    """

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="payout_batches")
    method = models.CharField(_("method"), max_length=32, choices=PayoutMethod.choices, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=BatchStatus.choices, default=BatchStatus.SCHEDULED)
    total_count = models.PositiveIntegerField(_("payouts"), default=0)
    issued_count = models.PositiveIntegerField(_("issued"), default=0)
    failed_count = models.PositiveIntegerField(_("failed"), default=0)
    expired_count = models.PositiveIntegerField(_("expired before issue"), default=0)
    cancelled_count = models.PositiveIntegerField(_("cancelled"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    last_progress_at = models.DateTimeField(_("last progress at"), null=True, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("payout batch")
        verbose_name_plural = _("payout batches")
        permissions = [
            ("start_payoutbatch", _("Can build and start payout batches")),
            ("pause_payoutbatch", _("Can pause payout batches")),
            ("cancel_payoutbatch", _("Can cancel payout batches")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(status__in=BatchStatus.values), name="payout_batch_status_valid"),
        ]
        indexes = [models.Index(fields=["status", "last_progress_at"], name="payoutbatch_status_prog_idx")]

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.program_id}, {self.status})"

    @property
    def done_count(self) -> int:
        return self.issued_count + self.failed_count + self.expired_count + self.cancelled_count

    def percent(self) -> int:
        """Whole percent of the payouts that reached an outcome (100 when there is nothing to do)."""
        if self.total_count == 0:
            return 100
        return min(100, self.done_count * 100 // self.total_count)

    def can_transition(self, status: str) -> bool:
        return status in BATCH_STATUS_TRANSITIONS.get(self.status, frozenset())

    def can_start(self) -> bool:
        return self.can_transition(BatchStatus.RUNNING)

    def can_pause(self) -> bool:
        return self.can_transition(BatchStatus.PAUSED)

    def can_cancel(self) -> bool:
        return self.can_transition(BatchStatus.CANCELLED)


class PayoutBatchTransition(models.Model):
    """One status move of a batch: who (None = the system / beat), when, from what to what."""

    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="transitions")
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status_before = models.CharField(_("status before"), max_length=16, choices=BatchStatus.choices, blank=True)
    status_after = models.CharField(_("status after"), max_length=16, choices=BatchStatus.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payout batch transition")
        verbose_name_plural = _("payout batch transitions")
        # Append-only: the database refuses UPDATE and DELETE, whoever asks (docs/audit.md).
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]
        ordering = ["batch", "at", "id"]

    def __str__(self) -> str:
        return f"batch {self.batch_id}: {self.status_before or '—'} → {self.status_after}"


class NoticeKind(models.TextChoices):
    ISSUED = "issued", _("Payout ready (code or receive URL)")
    REMINDER = "reminder", _("Reminder before the receipt deadline")


class NoticeChannel(models.TextChoices):
    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    NONE = "none", _("No contact")


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    BOUNCED = "bounced", _("Bounced")
    # A send attempt was claimed and never recorded (the sender died): the message may have reached the
    # provider. Never re-sent blindly; a provider check or a person says whether it went out.
    UNCERTAIN = "uncertain", _("Uncertain (provider check needed)")


class NoticeLanguage(models.TextChoices):
    JA = "ja", _("Japanese")
    EN = "en", _("English")


@set_history()
class PayoutNotice(models.Model):
    """The transactional outbox of customer notices: one row per (payout, kind, sequence).

    Written in the transaction that issues the payout (or, for reminders, by the reminder job), so a
    notice exists exactly when its payout does; the sender claims rows with a lease (SKIP LOCKED) and
    records the outcome. The code / URL is NOT stored here: it is decrypted from PayoutSecret only while
    the message is rendered. Sequence 1 is the original; a re-send is a new row with the next sequence,
    created by a person (`created_by`).
    """

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="notices")
    kind = models.CharField(_("kind"), max_length=16, choices=NoticeKind.choices)
    sequence = models.PositiveSmallIntegerField(_("sequence"), default=1)
    channel = models.CharField(_("channel"), max_length=8, choices=NoticeChannel.choices)
    language = models.CharField(_("language"), max_length=8, choices=NoticeLanguage.choices, default=NoticeLanguage.JA)
    # The email address or phone number the notice goes to (masked in the admin).
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=NoticeStatus.choices, default=NoticeStatus.PENDING)
    # A sender owns the row until then; after it another sender may take the row again.
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    send_attempts = models.PositiveIntegerField(_("send attempts"), default=0)
    message_id = models.CharField(_("message id"), max_length=200, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=200, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    bounced_at = models.DateTimeField(_("bounced at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout notice")
        verbose_name_plural = _("payout notices")
        permissions = [
            ("resend_payoutnotice", _("Can re-send a payout notice (audited)")),
            ("resolve_payoutnotice", _("Can resolve an uncertain payout notice after checking the provider")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["payout", "kind", "sequence"], name="payout_notice_once"),
            models.CheckConstraint(condition=models.Q(status__in=NoticeStatus.values), name="payout_notice_status"),
        ]
        indexes = [
            # The senders take pending rows in id order (skipping leased ones): only pending rows in it.
            models.Index(fields=["id"], condition=models.Q(status="pending"), name="payout_notice_todo_idx"),
        ]

    def __str__(self) -> str:
        return f"notice {self.pk} ({self.kind} #{self.sequence}, payout {self.payout_id}, {self.status})"


class AttemptStatus(models.TextChoices):
    CLAIMED = "claimed", _("Claimed (being sent)")
    SENT = "sent", _("Sent")
    NOT_SENT = "not_sent", _("Not sent (never reached the provider)")
    UNCERTAIN = "uncertain", _("Uncertain (may have reached the provider)")


OPEN_ATTEMPT_STATUSES = (AttemptStatus.CLAIMED, AttemptStatus.UNCERTAIN)


class NotSentReason(models.TextChoices):
    """Why a `not_sent` attempt did not go out; it decides what the attempt costs the notice. Only a
    provider's refusal of this message counts towards the five tries; a sender cut off (killed, its
    outcome found "not delivered") towards a wider cap that stops a message that kills every sender;
    a hand-over that never started (no connection, lease running out) costs nothing."""

    NONE = "", _("—")
    REFUSED = "refused", _("Refused by the provider")
    CUT_OFF = "cut_off", _("Sender cut off, found not delivered")
    NOT_HANDED_OVER = "not_handed_over", _("Never handed over")


@set_history()
class PayoutNoticeAttempt(models.Model):
    """One try at handing a notice to the mail server / SMS gateway, claimed (and committed) BEFORE the
    sender talks to it, with a unique attempt id the message carries (`X-Payout-Notice-Attempt`).

    `claimed` → `sent` (the provider took it), `not_sent` (known not to have reached it: refused before
    DATA, the gateway said no) or, when its sender never came back, `uncertain` (set by the sweep after
    `lease_until`): it may have gone out, so it is not sent again until a provider check or a person
    resolves it (`resolved_by`). At most one open (claimed / uncertain) attempt per notice (UNIQUE).
    """

    attempt_id = models.UUIDField(_("attempt id"), unique=True)
    notice = models.ForeignKey(PayoutNotice, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveIntegerField(_("attempt number"))
    channel = models.CharField(_("channel"), max_length=8, choices=NoticeChannel.choices)
    status = models.CharField(_("status"), max_length=16, choices=AttemptStatus.choices)
    claimed_at = models.DateTimeField(_("claimed at"))
    claimed_by = models.CharField(_("claimed by"), max_length=100)
    lease_until = models.DateTimeField(_("lease until"))
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=200, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    not_sent_reason = models.CharField(
        _("not sent because"), max_length=16, choices=NotSentReason.choices, blank=True, default=""
    )
    resolved_by = models.CharField(_("resolved by"), max_length=150, blank=True)

    class Meta:
        verbose_name = _("payout notice attempt")
        verbose_name_plural = _("payout notice attempts")
        constraints = [
            models.UniqueConstraint(
                fields=["notice"],
                condition=models.Q(status__in=OPEN_ATTEMPT_STATUSES),
                name="payout_notice_one_open_attempt",
            ),
            models.UniqueConstraint(fields=["notice", "number"], name="payout_notice_attempt_number"),
            models.CheckConstraint(
                condition=models.Q(status__in=AttemptStatus.values), name="payout_notice_attempt_status"
            ),
            models.CheckConstraint(
                condition=models.Q(not_sent_reason="")
                | models.Q(status=AttemptStatus.NOT_SENT, not_sent_reason__in=NotSentReason.values),
                name="payout_notice_attempt_not_sent_reason",
            ),
        ]
        indexes = [
            # The sweep looks for claimed attempts whose lease ran out, and for uncertain ones.
            models.Index(
                fields=["lease_until"],
                condition=models.Q(status__in=OPEN_ATTEMPT_STATUSES),
                name="payout_notice_attempt_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of notice {self.notice_id} ({self.status})"


class PayoutNoticeTransition(models.Model):
    """One status move of a notice (append-only): who — a person, or `system:<task>` —, when, from, to, why."""

    notice = models.ForeignKey(PayoutNotice, on_delete=models.PROTECT, related_name="transitions")
    attempt = models.ForeignKey(
        PayoutNoticeAttempt, on_delete=models.PROTECT, null=True, blank=True, related_name="transitions"
    )
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(_("actor"), max_length=150)
    status_before = models.CharField(_("status before"), max_length=16, choices=NoticeStatus.choices)
    status_after = models.CharField(_("status after"), max_length=16, choices=NoticeStatus.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payout notice transition")
        verbose_name_plural = _("payout notice transitions")
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]
        ordering = ["notice", "at", "id"]

    def __str__(self) -> str:
        return f"notice {self.notice_id}: {self.status_before} → {self.status_after}"


class SimulatedSms(models.Model):
    """What the local SMS gateway simulator accepted: one row per message key, `requests` counts the asks.

    Only the phone number and the length are kept — never the text, which carries the code.
    """

    message_key = models.CharField(_("message key"), max_length=128)
    phone = models.CharField(_("phone"), max_length=32)
    length = models.PositiveIntegerField(_("characters"))
    reference = models.CharField(_("reference"), max_length=64)
    requests = models.PositiveIntegerField(_("requests"), default=1)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("simulated SMS")
        verbose_name_plural = _("simulated SMS")
        constraints = [models.UniqueConstraint(fields=["message_key"], name="simulated_sms_key_unique")]

    def __str__(self) -> str:
        return self.reference


@decision_history()
class ProgramPayoutPolicy(models.Model):
    """Payout settings of one program (kept on the payouts side; absent = the defaults below)."""

    program = models.OneToOneField(Program, on_delete=models.PROTECT, primary_key=True, related_name="payout_policy")
    notice_language = models.CharField(
        _("notice language"), max_length=8, choices=NoticeLanguage.choices, default=NoticeLanguage.JA
    )
    reminder_days_before = models.PositiveSmallIntegerField(
        _("reminder (days before the receipt deadline)"), default=7, help_text=_("0 = no reminder")
    )
    reoffer_on_expiry = models.BooleanField(_("re-offer an unclaimed payout after it expires"), default=False)
    reoffer_receipt_days = models.PositiveSmallIntegerField(_("receipt period of a re-offer (days)"), default=30)
    max_offers = models.PositiveSmallIntegerField(_("offers at most (first + re-offers)"), default=2)

    class Meta:
        verbose_name = _("program payout policy")
        verbose_name_plural = _("program payout policies")

    def __str__(self) -> str:
        return f"payout policy of {self.program_id}"


class PayoutSecretReveal(models.Model):
    """Audit of the one screen that shows a code in clear: who revealed which payout's secret, when, why."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="secret_reveals")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("at"))
    reason = models.CharField(_("reason"), max_length=500)

    class Meta:
        verbose_name = _("payout secret reveal")
        verbose_name_plural = _("payout secret reveals")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"payout {self.payout_id} revealed by {self.actor_id}"


class ProviderCallback(models.Model):
    """One signed callback of a payout provider that moved (or found already moved) a payout, kept per
    (provider, event id) — the UNIQUE constraint makes a replayed callback change nothing."""

    provider = models.CharField(_("provider"), max_length=32)
    event_id = models.CharField(_("event id"), max_length=128)
    event_type = models.CharField(_("event type"), max_length=64)
    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="+", db_index=False)
    status_before = models.CharField(_("status before"), max_length=16, choices=PayoutStatus.choices)
    status_after = models.CharField(_("status after"), max_length=16, choices=PayoutStatus.choices)
    signed_at = models.DateTimeField(_("signed at"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("provider callback")
        verbose_name_plural = _("provider callbacks")
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="provider_callback_event_unique"),
        ]
        indexes = [models.Index(fields=["payout"], name="provider_callback_payout_idx")]
        # Append-only, like the transitions it explains.
        triggers = [pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete)]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_id} ({self.event_type})"
