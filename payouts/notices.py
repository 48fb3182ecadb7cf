"""Customer notices of payouts through a transactional outbox (PayoutNotice rows).

- `notices_queue_for_payouts` — one INSERT … SELECT of outbox rows for a set of payouts, run in the same
  transaction that marks them issued (so a notice exists exactly when its payout is issued), UNIQUE per
  (payout, kind, sequence): queueing twice adds nothing.
- `payout_notices_send` — a sender claims pending rows with a lease (UPDATE … WHERE id IN (SELECT … FOR
  UPDATE SKIP LOCKED)), decrypts the codes of the whole chunk, renders each notice from the templates
  (compiled once per process), sends email (HTML + text, a Message-ID derived from the notice id) or SMS
  (an SmsGateway, keyed by the notice id), then records the outcome with bulk UPDATEs and moves the
  payouts issued → notified. A sender that dies after sending and before recording leaves the lease to
  expire; the next sender sends the same message again with the same Message-ID / SMS key, which the
  mail system and the SMS gateway de-duplicate — the customer gets one notice.
- `payout_notice_resend` (explicit, by a person, a new sequence), `payout_notice_record_bounce`,
  `payout_reminders_queue` (once per payout, N days before the receipt deadline).

Codes and URLs are never written to the outbox, to logs or to exceptions; they exist in clear only in
the rendered message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import re
import smtplib
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.template import loader
from django.utils import timezone, translation
from django.utils.module_loading import import_string

from claims.models import Claim, PayoutMethod, Program, Submission
from payouts import crypto
from payouts.models import (
    BATCH_HOLDING_STATUSES,
    AttemptStatus,
    NoticeChannel,
    NoticeKind,
    NoticeLanguage,
    NoticeStatus,
    NotSentReason,
    Payout,
    PayoutBatch,
    PayoutNotice,
    PayoutNoticeAttempt,
    PayoutNoticeTransition,
    PayoutSecret,
    PayoutStatus,
    PayoutTransition,
    ProgramPayoutPolicy,
)
from payouts.sms import SmsError, sms_gateway
from support_portal.core.audit import audit_context
from support_portal.core.enqueue import enqueue_on_commit
from support_portal.customers.models import Customer

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

JST = ZoneInfo("Asia/Tokyo")
DEFAULT_LEASE = dt.timedelta(minutes=5)
SEND_CHUNK = 500
MAX_SEND_ATTEMPTS = 5  # provider refusals of one notice before it is `failed`
# Senders cut off on one notice (killed mid-chunk, found not delivered) before it is `failed`: only a
# message that brings its sender down every time reaches it, not an outage (chaos runs: ≤ 9).
MAX_CUT_OFF_ATTEMPTS = 20
NOTICE_TEMPLATE_DIR = "payouts/notices"
# The parts of one notice: <kind>.<lang>.<part> under templates/payouts/notices/.
TEMPLATE_PARTS = ("subject.txt", "txt", "html", "sms.txt")


class NoticeRefused(Exception):
    def __init__(self, *, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Channel and recipient: the email of the official application, else the payee's email; without an
# email the phone (application's, else the payee's) gets an SMS; without either nothing can be sent.
_QUEUE_SQL = """
INSERT INTO {notice}
    (payout_id, kind, sequence, channel, language, recipient, status, lease_until, send_attempts,
     message_id, provider_id, last_error, created_by_id, created_at, sent_at, bounced_at)
SELECT p.id, %(kind)s, {sequence},
       CASE WHEN x.email IS NOT NULL THEN 'email' WHEN x.phone IS NOT NULL THEN 'sms' ELSE 'none' END,
       COALESCE(pol.notice_language, 'ja'),
       COALESCE(x.email, x.phone, ''),
       CASE WHEN x.email IS NULL AND x.phone IS NULL THEN 'failed' ELSE 'pending' END,
       NULL, 0, '', '',
       CASE WHEN x.email IS NULL AND x.phone IS NULL THEN 'no email address or phone number' ELSE '' END,
       %(actor_id)s, %(now)s, NULL, NULL
FROM {payout} p
JOIN {claim} c ON c.id = p.claim_id
JOIN {customer} cu ON cu.customer_id = p.payee_id
LEFT JOIN {submission} s ON s.submission_id = c.official_submission_id
LEFT JOIN {policy} pol ON pol.program_id = p.program_id
CROSS JOIN LATERAL (
    SELECT COALESCE(NULLIF(s.contact_email, ''), NULLIF(cu.email, '')) AS email,
           COALESCE(NULLIF(s.contact_phone, ''), NULLIF(cu.phone, '')) AS phone
) x
WHERE {where}
ORDER BY p.id
ON CONFLICT (payout_id, kind, sequence) DO NOTHING
RETURNING id
"""


def _queue_sql(*, where: str, sequence: str = "1") -> str:
    return _QUEUE_SQL.format(
        notice=PayoutNotice._meta.db_table,
        payout=Payout._meta.db_table,
        claim=Claim._meta.db_table,
        customer=Customer._meta.db_table,
        submission=Submission._meta.db_table,
        policy=ProgramPayoutPolicy._meta.db_table,
        where=where,
        sequence=sequence,
    )


def notices_queue_for_payouts(*, payout_ids: Sequence[int], kind: str = NoticeKind.ISSUED, now: dt.datetime) -> int:
    """Writes the outbox row (sequence 1) of each payout in one statement; returns how many were new.

    Call it inside the transaction that issues the payouts.
    """
    if not payout_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _queue_sql(where="p.id = ANY(%(ids)s)"),
            {"kind": kind, "actor_id": None, "now": now, "ids": list(payout_ids)},
        )
        return int(cursor.rowcount)


def enqueue_send_on_commit() -> None:
    from payouts.tasks import payout_notices_send_task  # noqa: PLC0415 - cycle (tasks import this module)

    enqueue_on_commit(payout_notices_send_task)


def payout_reminders_queue(*, now: dt.datetime | None = None) -> int:
    """Queues one reminder per issued / notified payout whose receipt deadline is within its program's
    `reminder_days_before` (default 7; 0 = none); set-based, never twice for a payout. Returns how many."""
    now = now or timezone.now()
    where = """p.status IN ('issued', 'notified')
      AND p.method NOT IN ('bank_transfer', 'original_method')
      AND p.expires_at IS NOT NULL AND p.expires_at > %(now)s
      AND COALESCE(pol.reminder_days_before, 7) > 0
      AND p.expires_at <= %(now)s + make_interval(days => COALESCE(pol.reminder_days_before, 7))"""
    with audit_context(actor=None, action="payout_reminders"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_queue_sql(where=where), {"kind": NoticeKind.REMINDER, "actor_id": None, "now": now})
            queued = int(cursor.rowcount)
        if queued:
            enqueue_send_on_commit()
    logger.info("payout reminders queued", extra={"count": queued})
    return queued


def payout_notice_resend(*, notice: PayoutNotice, actor: Actor) -> PayoutNotice:
    """A person asks for the notice to be sent again: a new outbox row (next sequence, same kind, the
    contact as it is now), `created_by` = the person. Only for payouts still waiting to be received."""
    if actor is None or not actor.is_authenticated:
        raise NoticeRefused(code="no_actor", message="a re-send needs a signed-in person")
    with audit_context(actor=actor, action="payout_notice_resend"), transaction.atomic():
        payout = Payout.objects.select_for_update().filter(pk=notice.payout_id).first()
        if payout is None or payout.status not in (PayoutStatus.ISSUED, PayoutStatus.NOTIFIED):
            raise NoticeRefused(
                code="status_not_allowed",
                message=f"payout {notice.payout_id} is not waiting to be received; nothing to re-send",
            )
        last = (
            PayoutNotice.objects.filter(payout=payout, kind=notice.kind)
            .order_by("-sequence")
            .values_list("sequence", flat=True)
            .first()
        ) or 0
        with connection.cursor() as cursor:
            cursor.execute(
                _queue_sql(where="p.id = %(payout_id)s", sequence="%(sequence)s"),
                {
                    "kind": notice.kind,
                    "actor_id": actor.pk,
                    "now": timezone.now(),
                    "payout_id": payout.pk,
                    "sequence": last + 1,
                },
            )
            row = cursor.fetchone()
        assert row is not None  # the payout is locked and the sequence is new
        enqueue_send_on_commit()
        created = PayoutNotice.objects.get(pk=row[0])
    logger.info("payout notice re-send queued", extra={"notice_id": created.pk, "payout_id": payout.pk})
    return created


def payout_notice_record_bounce(
    *, notice_id: int | None = None, message_id: str = "", reason: str, actor: Actor = None
) -> PayoutNotice | None:
    """Records that a sent notice bounced (by id or by its Message-ID); returns it, None when unknown."""
    with audit_context(actor=actor, action="payout_notice_bounce"), transaction.atomic():
        queryset = PayoutNotice.objects.select_for_update()
        if notice_id is not None:
            notice = queryset.filter(pk=notice_id).first()
        else:
            # The Message-ID names the notice (message_id_for): found by primary key, then compared whole.
            match = MESSAGE_ID_PATTERN.fullmatch(message_id.strip())
            notice = queryset.filter(pk=int(match[1]), message_id=message_id.strip()).first() if match else None
        if notice is None or notice.status != NoticeStatus.SENT:
            return notice  # unknown, never sent, or bounced already (the first bounce's time and reason stand)
        notice.status = NoticeStatus.BOUNCED
        notice.bounced_at = timezone.now()
        notice.last_error = f"bounced: {reason}"[:500]
        notice.save(update_fields=["status", "bounced_at", "last_error"])
        return notice


# ---------------------------------------------------------------------------------------------------------
# Rendering


@dataclasses.dataclass(frozen=True)
class RenderedNotice:
    subject: str
    text: str
    html: str
    sms: str = dataclasses.field(default="", repr=False)


@functools.cache
def _templates(kind: str, language: str) -> tuple[Any, ...]:
    """The compiled templates of one kind and language (subject, text, HTML, SMS), loaded once."""
    return tuple(loader.get_template(f"{NOTICE_TEMPLATE_DIR}/{kind}.{language}.{part}") for part in TEMPLATE_PARTS)


def template_names() -> list[str]:
    return [
        f"{NOTICE_TEMPLATE_DIR}/{kind}.{language}.{part}"
        for kind in NoticeKind.values
        for language in NoticeLanguage.values
        for part in TEMPLATE_PARTS
    ]


def format_deadline(value: dt.datetime | None, language: str) -> str:
    if value is None:
        return "なし" if language == NoticeLanguage.JA else "none"
    local = value.astimezone(JST)
    if language == NoticeLanguage.JA:
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}（日本時間）"
    return f"{local:%d %b %Y, %H:%M} (Japan time, JST)"


@functools.cache
def _method_label(method: str, language: str) -> str:
    with translation.override(language):
        return str(PayoutMethod(method).label) if method in PayoutMethod.values else method


def render_notice(
    *,
    kind: str,
    language: str,
    program_name: str,
    amount_jpy: int,
    method: str,
    expires_at: dt.datetime | None,
    code: str = "",
    pin: str = "",
    url: str = "",
    reference: str = "",
    channel: str = "",
) -> RenderedNotice:
    """Renders one notice; `channel` email renders subject, text and HTML only, sms the SMS text only
    (empty: every part, e.g. for the templates page)."""
    subject_t, text_t, html_t, sms_t = _templates(kind, language)
    context = {
        "program_name": program_name,
        "amount": f"{amount_jpy:,}",
        "method": method,
        "method_label": _method_label(method, language),
        "deadline": format_deadline(expires_at, language),
        "code": code,
        "pin": pin,
        "url": url,
        "reference": reference,
    }
    email = channel != NoticeChannel.SMS
    return RenderedNotice(
        subject=" ".join(subject_t.render(context).split()) if email else "",
        text=text_t.render(context) if email else "",
        html=html_t.render(context) if email else "",
        sms=sms_t.render(context).strip() if channel != NoticeChannel.EMAIL else "",
    )


def sample_notice(kind: str, language: str) -> RenderedNotice:
    """A rendering with made-up values, for the managers' template page (no real code)."""
    return render_notice(
        kind=kind,
        language=language,
        program_name="サンプル補償プログラム" if language == NoticeLanguage.JA else "Sample compensation program",
        amount_jpy=12345,
        method=PayoutMethod.ATM_CASH,
        expires_at=dt.datetime(2025, 5, 31, 14, 59, 59, tzinfo=dt.UTC),
        code="0000111122223333",
        pin="0000",
        reference="SBA-SAMPLE",
    )


MESSAGE_ID_PATTERN = re.compile(r"<payout-notice-(\d{1,18})@[^<>@\s]+>")


def message_id_for(notice_id: int) -> str:
    domain = str(getattr(settings, "PAYOUT_NOTICE_MESSAGE_ID_DOMAIN", "") or "payout-notices.invalid")
    return f"<payout-notice-{notice_id}@{domain}>"


# ---------------------------------------------------------------------------------------------------------
# Sending: each try is an attempt claimed (and committed) before the provider is asked


SENDER = "system:payouts.send_notices"
SWEEPER = "system:payouts.sweep"
ATTEMPT_HEADER = "X-Payout-Notice-Attempt"
# Outcomes are recorded every this many messages (and at the end of the chunk): a sender killed mid-chunk
# leaves at most this many attempts `claimed` that really went out (uncertain until checked).
RECORD_EVERY = 50


@dataclasses.dataclass
class SendResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    uncertain: int = 0


# The notices of a scheduled / paused / cancelled batch's payouts wait for the batch to run.
_HELD_BY_BATCH_SQL = f"""
SELECT 1 FROM {Payout._meta.db_table} hp JOIN {PayoutBatch._meta.db_table} hb ON hb.id = hp.batch_id
WHERE hp.id = {PayoutNotice._meta.db_table}.payout_id AND hb.status = ANY(%(held)s)
"""

# Pending notices without an open attempt: lease the notice, count the try and write its attempt
# (`claimed`, a fresh attempt id) — one statement, committed before anything is sent.
_CLAIM_SQL = f"""
WITH picked AS (
    SELECT id FROM {PayoutNotice._meta.db_table}
    WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < %(now)s)
      AND NOT EXISTS ({_HELD_BY_BATCH_SQL})
      AND NOT EXISTS (
          SELECT 1 FROM {PayoutNoticeAttempt._meta.db_table} oa
          WHERE oa.notice_id = {PayoutNotice._meta.db_table}.id AND oa.status IN ('claimed', 'uncertain')
      )
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE {PayoutNotice._meta.db_table} n SET lease_until = %(until)s, send_attempts = n.send_attempts + 1
    FROM picked WHERE n.id = picked.id
    RETURNING n.id, n.send_attempts, n.channel
)
INSERT INTO {PayoutNoticeAttempt._meta.db_table}
    (attempt_id, notice_id, number, channel, status, claimed_at, claimed_by, lease_until, finished_at,
     provider_id, error, not_sent_reason, resolved_by)
SELECT gen_random_uuid(), id, send_attempts, channel, 'claimed', %(now)s, %(actor)s, %(until)s, NULL, '', '', '', ''
FROM leased
RETURNING notice_id, attempt_id
"""


def _claim(*, limit: int, lease: dt.timedelta, now: dt.datetime, actor: str) -> dict[int, str]:
    """notice id → attempt id of the notices this sender now holds (committed on return)."""
    with (
        audit_context(actor=None, action="payout_notices_claim", job=actor),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            _CLAIM_SQL,
            {
                "until": now + lease,
                "now": now,
                "limit": limit,
                "held": list(BATCH_HOLDING_STATUSES),
                "actor": actor,
            },
        )
        return {row[0]: str(row[1]) for row in cursor.fetchall()}


_LOAD_SQL = """
SELECT n.id, n.kind, n.channel, n.language, n.recipient, n.send_attempts,
       p.id, p.amount_jpy, p.method, p.expires_at, p.provider_reference, pr.name, sec.ciphertext
FROM {notice} n
JOIN {payout} p ON p.id = n.payout_id
JOIN {program} pr ON pr.id = p.program_id
LEFT JOIN {secret} sec ON sec.payout_id = p.id
WHERE n.id = ANY(%(ids)s)
ORDER BY n.id
"""


@dataclasses.dataclass
class _Outcome:
    # (attempt id, message id, provider id)
    sent: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    # (attempt id, error): the provider refused it — tried again (or failed at MAX_SEND_ATTEMPTS)
    not_sent: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # (attempt id, error): never handed over (no connection, lease running out) — tried again, costs nothing
    not_handed_over: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # (attempt id, error): may have reached the provider — uncertain, never re-sent blindly
    uncertain: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sent) + len(self.not_sent) + len(self.not_handed_over) + len(self.uncertain)


def _decrypt_all(ciphertexts: Iterable[str | None]) -> list[dict[str, str]]:
    return [json.loads(crypto.decrypt(c)) if c else {} for c in ciphertexts]


# SMTP answers that mean the server refused the message: it was not accepted, so it can be tried again.
# Anything else during a send (a dropped connection after DATA, a timeout, an unknown error) may have
# left the message with the server: uncertain.
_SMTP_REFUSALS: tuple[type[BaseException], ...] = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
    smtplib.SMTPHeloError,
    smtplib.SMTPNotSupportedError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPConnectError,
    ConnectionRefusedError,
)


def email_error_reached_provider(exc: BaseException) -> bool:
    """False when the mail server certainly did not take the message (refused, never connected)."""
    return not isinstance(exc, _SMTP_REFUSALS)


class _Recorder:
    """Collects attempt outcomes and records them every RECORD_EVERY messages (and at the end)."""

    def __init__(self, *, actor: str, hand_over_until: dt.datetime) -> None:
        self.actor = actor
        self.hand_over_until = hand_over_until
        self.pending = _Outcome()
        self.totals = _Outcome()

    def may_hand_over(self, attempt_id: str) -> bool:
        """Whether there is still time to give a message to the provider. Past half the lease the rest of
        the chunk is not handed over (recorded not sent, for the next sender): the sweep, which acts only
        after the whole lease, must never find an attempt open whose sender could still send it."""
        if timezone.now() < self.hand_over_until:
            return True
        self.not_handed_over(attempt_id, "lease running out: not handed over")
        return False

    def sent(self, attempt_id: str, message_id: str, provider_id: str) -> None:
        self.pending.sent.append((attempt_id, message_id, provider_id))
        self.flush()

    def not_sent(self, attempt_id: str, error: str) -> None:
        self.pending.not_sent.append((attempt_id, error[:500]))
        self.flush()

    def not_handed_over(self, attempt_id: str, error: str) -> None:
        self.pending.not_handed_over.append((attempt_id, error[:500]))
        self.flush()

    def uncertain(self, attempt_id: str, error: str) -> None:
        self.pending.uncertain.append((attempt_id, error[:500]))
        self.flush()

    def flush(self, *, force: bool = False) -> None:
        if len(self.pending) and (force or len(self.pending) >= RECORD_EVERY):
            _record(self.pending, now=timezone.now(), actor=self.actor)
            for name in ("sent", "not_sent", "not_handed_over", "uncertain"):
                getattr(self.totals, name).extend(getattr(self.pending, name))
            self.pending = _Outcome()


def _send_emails(recorder: _Recorder, emails: list[tuple[str, EmailMultiAlternatives]], email_connection: Any) -> None:
    mail = email_connection or get_connection(fail_silently=False)
    try:
        mail.open()
    except Exception as exc:  # no connection: nothing reached the server
        for attempt_id, _ in emails:
            recorder.not_handed_over(attempt_id, f"email: {type(exc).__name__}")
        return
    try:
        for attempt_id, message in emails:
            if not recorder.may_hand_over(attempt_id):
                continue
            try:
                mail.send_messages([message])
            except Exception as exc:  # classified: refused (tried again) or uncertain
                error = f"email: {type(exc).__name__}"
                if email_error_reached_provider(exc):
                    recorder.uncertain(attempt_id, error)
                else:
                    recorder.not_sent(attempt_id, error)
            else:
                recorder.sent(attempt_id, message.extra_headers["Message-ID"], "")
    finally:
        mail.close()


def _send_sms(recorder: _Recorder, gateway: Any, *, attempt_id: str, notice_id: int, phone: str, text: str) -> None:
    if not recorder.may_hand_over(attempt_id):
        return
    try:
        provider_id = gateway.send(message_key=sms_message_key(notice_id), phone=phone, text=text)
    except SmsError as exc:  # the gateway refused it: not sent
        recorder.not_sent(attempt_id, f"sms: {exc}")
    except Exception as exc:  # a timeout or a dropped connection: it may have gone out
        recorder.uncertain(attempt_id, f"sms: {type(exc).__name__}")
    else:
        recorder.sent(attempt_id, message_id_for(notice_id), provider_id)


def _load(notice_ids: list[int]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            _LOAD_SQL.format(
                notice=PayoutNotice._meta.db_table,
                payout=Payout._meta.db_table,
                program=Program._meta.db_table,
                secret=PayoutSecret._meta.db_table,
            ),
            {"ids": notice_ids},
        )
        return list(cursor.fetchall())


def payout_notices_send(
    *,
    limit: int = SEND_CHUNK,
    lease: dt.timedelta = DEFAULT_LEASE,
    email_connection: Any = None,
    actor: str = SENDER,
) -> SendResult:
    """Claims up to `limit` due notices (an attempt each, committed), sends them and records the outcome
    every RECORD_EVERY messages; returns the counts. `actor` names the job in the attempts and transitions."""
    claimed_at = timezone.now()
    attempts = _claim(limit=limit, lease=lease, now=claimed_at, actor=actor)
    result = SendResult(claimed=len(attempts))
    if not attempts:
        return result
    rows = _load(list(attempts))
    secrets = _decrypt_all(row[12] for row in rows)
    recorder = _Recorder(actor=actor, hand_over_until=claimed_at + lease / 2)
    emails: list[tuple[str, EmailMultiAlternatives]] = []
    gateway = None
    for row, secret in zip(rows, secrets, strict=True):
        notice_id, kind, channel, language, recipient = row[:5]
        amount, method, expires_at, reference, program_name = row[7:12]
        attempt_id = attempts[notice_id]
        rendered = render_notice(
            kind=kind,
            language=language,
            program_name=program_name,
            amount_jpy=amount,
            method=method,
            expires_at=expires_at,
            code=secret.get("code", ""),
            pin=secret.get("pin", ""),
            url=secret.get("url", ""),
            reference=reference,
            channel=channel,
        )
        if channel == NoticeChannel.EMAIL:
            message = EmailMultiAlternatives(
                subject=rendered.subject,
                body=rendered.text,
                to=[recipient],
                headers={"Message-ID": message_id_for(notice_id), ATTEMPT_HEADER: attempt_id},
            )
            message.attach_alternative(rendered.html, "text/html")
            emails.append((attempt_id, message))
        elif channel == NoticeChannel.SMS:
            gateway = gateway or sms_gateway()
            _send_sms(recorder, gateway, attempt_id=attempt_id, notice_id=notice_id, phone=recipient, text=rendered.sms)
        else:
            recorder.not_sent(attempt_id, "no email address or phone number")
    if emails:
        _send_emails(recorder, emails, email_connection)
    recorder.flush(force=True)
    totals = recorder.totals
    result.sent, result.uncertain = len(totals.sent), len(totals.uncertain)
    if totals.not_sent:
        result.failed = PayoutNoticeAttempt.objects.filter(
            attempt_id__in=[a for a, _ in totals.not_sent], notice__status=NoticeStatus.FAILED
        ).count()
    result.retry = len(totals.not_sent) + len(totals.not_handed_over) - result.failed
    logger.info(
        "payout notices sent",
        extra={"sent": result.sent, "failed": result.failed, "retry": result.retry, "uncertain": result.uncertain},
    )
    return result


def sms_message_key(notice_id: int) -> str:
    """The SMS gateway's de-duplication key of a notice (the same for every attempt)."""
    return f"payout-notice-{notice_id}"


# Attempt outcomes, set-based. Each statement moves attempts that are still open (claimed, or uncertain
# when a slow sender comes back after the sweep gave up on it: the provider's answer wins), moves their
# notices, writes the notices' transitions, and (for sent `issued` notices) moves the payouts to notified.
_FINISH_SQL = f"""
WITH v AS (
    SELECT * FROM unnest(%(attempt_ids)s::uuid[], %(errors)s::text[], %(message_ids)s::text[],
                         %(provider_ids)s::text[]) AS v(attempt_id, error, message_id, provider_id)
), attempts AS (
    UPDATE {PayoutNoticeAttempt._meta.db_table} a
    SET status = %(attempt_status)s, finished_at = %(now)s, error = v.error, provider_id = v.provider_id,
        not_sent_reason = %(reason)s,
        resolved_by = CASE WHEN a.status = 'uncertain' THEN %(actor)s ELSE a.resolved_by END
    FROM v WHERE a.attempt_id = v.attempt_id AND a.status IN ('claimed', 'uncertain')
    RETURNING a.id, a.notice_id, v.error, v.message_id, v.provider_id
), before AS (
    SELECT n.id, n.status FROM {PayoutNotice._meta.db_table} n JOIN attempts ON attempts.notice_id = n.id
    WHERE n.status IN ('pending', 'uncertain')
), notices AS (
    UPDATE {PayoutNotice._meta.db_table} n
    SET status = CASE
            WHEN %(attempt_status)s = 'sent' THEN 'sent'
            WHEN %(attempt_status)s = 'uncertain' THEN 'uncertain'
            WHEN %(reason)s IN ('refused', 'cut_off') AND (
                SELECT count(*) FROM {PayoutNoticeAttempt._meta.db_table} earlier
                WHERE earlier.notice_id = n.id AND earlier.not_sent_reason = %(reason)s
            ) + 1 >= CASE %(reason)s WHEN 'refused' THEN %(max_refused)s
                                     WHEN 'cut_off' THEN %(max_cut_off)s END THEN 'failed'
            ELSE 'pending' END,
        lease_until = NULL,
        last_error = attempts.error,
        sent_at = CASE WHEN %(attempt_status)s = 'sent' THEN %(now)s ELSE n.sent_at END,
        message_id = CASE WHEN %(attempt_status)s = 'sent' THEN attempts.message_id ELSE n.message_id END,
        provider_id = CASE WHEN %(attempt_status)s = 'sent' THEN attempts.provider_id ELSE n.provider_id END
    FROM attempts WHERE n.id = attempts.notice_id AND n.status IN ('pending', 'uncertain')
    RETURNING n.id, n.payout_id, n.kind, n.status, attempts.id AS attempt_pk, attempts.error
), transitions AS (
    INSERT INTO {PayoutNoticeTransition._meta.db_table}
        (notice_id, attempt_id, at, actor_id, actor_label, status_before, status_after, note)
    SELECT notices.id, notices.attempt_pk, %(now)s, %(actor_id)s, %(actor)s, before.status, notices.status,
           left(%(note)s || notices.error, 500)
    FROM notices JOIN before ON before.id = notices.id
    WHERE before.status <> notices.status
), moved AS (
    UPDATE {Payout._meta.db_table} p SET status = 'notified', updated_at = %(now)s
    FROM notices
    WHERE p.id = notices.payout_id AND notices.status = 'sent' AND notices.kind = 'issued' AND p.status = 'issued'
    RETURNING p.id
)
INSERT INTO {PayoutTransition._meta.db_table} (payout_id, at, actor_id, status_before, status_after, note)
SELECT id, %(now)s, %(actor_id)s, 'issued', 'notified', 'notice sent' FROM moved
"""


def _finish(
    cursor: Any,
    *,
    attempt_status: str,
    rows: Sequence[tuple[str, str, str, str]],
    now: dt.datetime,
    actor: str,
    actor_id: int | None = None,
    note: str = "",
    reason: NotSentReason = NotSentReason.NONE,
) -> None:
    """Moves the attempts in `rows` to `attempt_status` (with `reason` when not sent) and their notices."""
    if not rows:
        return
    attempt_ids, errors, message_ids, provider_ids = (list(column) for column in zip(*rows, strict=True))
    cursor.execute(
        _FINISH_SQL,
        {
            "attempt_ids": attempt_ids,
            "errors": errors,
            "message_ids": message_ids,
            "provider_ids": provider_ids,
            "attempt_status": attempt_status,
            "reason": reason.value,
            "max_refused": MAX_SEND_ATTEMPTS,
            "max_cut_off": MAX_CUT_OFF_ATTEMPTS,
            "now": now,
            "actor": actor,
            "actor_id": actor_id,
            "note": note,
        },
    )


def _record(outcome: _Outcome, *, now: dt.datetime, actor: str) -> None:
    """The outcome of some attempts in a few statements (one transaction)."""
    with (
        audit_context(actor=None, action="payout_notices_send", job=actor),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        _finish(
            cursor,
            attempt_status=AttemptStatus.SENT,
            rows=[(a, "", m, p) for a, m, p in outcome.sent],
            now=now,
            actor=actor,
        )
        _finish(
            cursor,
            attempt_status=AttemptStatus.NOT_SENT,
            rows=[(a, e, "", "") for a, e in outcome.not_sent],
            now=now,
            actor=actor,
            reason=NotSentReason.REFUSED,
        )
        _finish(
            cursor,
            attempt_status=AttemptStatus.NOT_SENT,
            rows=[(a, e, "", "") for a, e in outcome.not_handed_over],
            now=now,
            actor=actor,
            reason=NotSentReason.NOT_HANDED_OVER,
        )
        _finish(
            cursor,
            attempt_status=AttemptStatus.UNCERTAIN,
            rows=[(a, e, "", "") for a, e in outcome.uncertain],
            now=now,
            actor=actor,
        )


# ---------------------------------------------------------------------------------------------------------
# Recovery: attempts whose sender never came back


@dataclasses.dataclass(frozen=True)
class AttemptToCheck:
    attempt_id: str
    notice_id: int
    channel: str
    message_id: str  # email Message-ID
    message_key: str  # SMS gateway key


@dataclasses.dataclass(frozen=True)
class ProviderAnswer:
    """What a provider check found: delivered True (it went out), False (certainly not), None (unknown)."""

    delivered: bool | None
    provider_id: str = ""


def default_provider_check(attempt: AttemptToCheck) -> ProviderAnswer:
    """SMS: asks the gateway by message key when it can be asked (`lookup`; the simulator can).
    Email: SMTP has no look-up, so the answer is unknown (a person checks the mail server's log)."""
    if attempt.channel == NoticeChannel.SMS:
        gateway = sms_gateway()
        lookup = getattr(gateway, "lookup", None)
        if lookup is not None:
            provider_id = lookup(message_key=attempt.message_key)
            return ProviderAnswer(delivered=provider_id is not None, provider_id=provider_id or "")
    return ProviderAnswer(delivered=None)


def provider_check() -> Any:
    """The configured check (`PAYOUT_NOTICE_PROVIDER_CHECK`, a dotted path), else the default."""
    path = getattr(settings, "PAYOUT_NOTICE_PROVIDER_CHECK", "")
    return import_string(path) if path else default_provider_check


@dataclasses.dataclass
class RecoveryResult:
    uncertain: int = 0  # claimed attempts whose lease ran out, now uncertain
    delivered: int = 0  # resolved by the provider check: it went out (sent)
    not_delivered: int = 0  # resolved: it did not (tried again)
    unresolved: int = 0  # still uncertain: for a person


_EXPIRE_SQL = f"""
SELECT attempt_id FROM {PayoutNoticeAttempt._meta.db_table}
WHERE status = 'claimed' AND lease_until < %(now)s
ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""


def payout_notice_attempts_recover(
    *, now: dt.datetime | None = None, actor: str = SWEEPER, limit: int = 10_000
) -> RecoveryResult:
    """The sweep's part of the outbox: a `claimed` attempt past its lease (its sender died or hung) may
    have reached the provider, so it becomes `uncertain` (its notice too) and is NOT sent again; then
    every uncertain attempt is put to the provider check — delivered → sent, certainly not delivered →
    pending (a new attempt follows), unknown → stays for a person (admin *Resolve*)."""
    now = now or timezone.now()
    result = RecoveryResult()
    with (
        audit_context(actor=None, action="payout_notice_attempts_recover", job=actor),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(_EXPIRE_SQL, {"now": now, "limit": limit})
        expired = [str(row[0]) for row in cursor.fetchall()]
        _finish(
            cursor,
            attempt_status=AttemptStatus.UNCERTAIN,
            rows=[(a, "sender did not record the outcome before its lease ran out", "", "") for a in expired],
            now=now,
            actor=actor,
        )
    result.uncertain = len(expired)
    open_attempts = list(
        PayoutNoticeAttempt.objects.filter(status=AttemptStatus.UNCERTAIN)
        .order_by("pk")
        .values_list("attempt_id", "notice_id", "channel")[:limit]
    )
    if not open_attempts:
        return result
    check = provider_check()
    delivered: list[tuple[str, str, str, str]] = []
    not_delivered: list[tuple[str, str, str, str]] = []
    for attempt_id, notice_id, channel in open_attempts:
        answer = check(
            AttemptToCheck(
                attempt_id=str(attempt_id),
                notice_id=notice_id,
                channel=channel,
                message_id=message_id_for(notice_id),
                message_key=sms_message_key(notice_id),
            )
        )
        if answer.delivered is True:
            delivered.append((str(attempt_id), "", message_id_for(notice_id), answer.provider_id))
        elif answer.delivered is False:
            not_delivered.append((str(attempt_id), "provider check: not delivered", "", ""))
    with (
        audit_context(actor=None, action="payout_notice_attempts_recover", job=actor),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        _finish(
            cursor,
            attempt_status=AttemptStatus.SENT,
            rows=delivered,
            now=now,
            actor=actor,
            note="provider check: delivered",
        )
        _finish(
            cursor,
            attempt_status=AttemptStatus.NOT_SENT,
            rows=not_delivered,
            now=now,
            actor=actor,
            reason=NotSentReason.CUT_OFF,
        )
    result.delivered, result.not_delivered = len(delivered), len(not_delivered)
    result.unresolved = len(open_attempts) - result.delivered - result.not_delivered
    if result.not_delivered:
        enqueue_send_on_commit()
    if expired or result.unresolved:
        logger.warning(
            "payout notice attempts uncertain",
            extra={
                "new": result.uncertain,
                "delivered": result.delivered,
                "not_delivered": result.not_delivered,
                "unresolved": result.unresolved,
            },
        )
    return result


def payout_notice_resolve(*, notice: PayoutNotice, delivered: bool, actor: Actor, note: str = "") -> PayoutNotice:
    """A person checked the provider (the mail server's log, the SMS gateway's console) for an uncertain
    notice: delivered → sent (the payout notified), not delivered → pending (sent again, new attempt)."""
    if actor is None or not actor.is_authenticated:
        raise NoticeRefused(code="no_actor", message="resolving a notice needs a signed-in person")
    label = f"user:{actor.get_username()}"
    with audit_context(actor=actor, action="payout_notice_resolve"), transaction.atomic():
        locked = PayoutNotice.objects.select_for_update().filter(pk=notice.pk).first()
        attempt = PayoutNoticeAttempt.objects.filter(notice_id=notice.pk, status=AttemptStatus.UNCERTAIN).first()
        if locked is None or locked.status != NoticeStatus.UNCERTAIN or attempt is None:
            raise NoticeRefused(code="not_uncertain", message=f"notice {notice.pk} is not waiting for a provider check")
        text = (f"resolved by a person: {'delivered' if delivered else 'not delivered'}. {note}").strip()[:500]
        with connection.cursor() as cursor:
            _finish(
                cursor,
                attempt_status=AttemptStatus.SENT if delivered else AttemptStatus.NOT_SENT,
                rows=[(str(attempt.attempt_id), "" if delivered else text, message_id_for(notice.pk), "")],
                now=timezone.now(),
                actor=label,
                actor_id=actor.pk,
                note=text + " " if delivered else "",
                reason=NotSentReason.NONE if delivered else NotSentReason.CUT_OFF,
            )
        if not delivered:
            enqueue_send_on_commit()
        locked.refresh_from_db()
    logger.info("payout notice resolved", extra={"notice_id": notice.pk, "delivered": delivered})
    return locked
