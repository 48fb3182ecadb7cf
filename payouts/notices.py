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
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.template import loader
from django.utils import timezone, translation

from claims.models import Claim, PayoutMethod, Program, Submission
from payouts import crypto
from payouts.models import (
    BATCH_HOLDING_STATUSES,
    NoticeChannel,
    NoticeKind,
    NoticeLanguage,
    NoticeStatus,
    Payout,
    PayoutBatch,
    PayoutNotice,
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
MAX_SEND_ATTEMPTS = 5
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
# Sending


@dataclasses.dataclass
class SendResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0


# The notices of a scheduled / paused / cancelled batch's payouts wait for the batch to run.
_HELD_BY_BATCH_SQL = f"""
SELECT 1 FROM {Payout._meta.db_table} hp JOIN {PayoutBatch._meta.db_table} hb ON hb.id = hp.batch_id
WHERE hp.id = {PayoutNotice._meta.db_table}.payout_id AND hb.status = ANY(%(held)s)
"""


def _claim(*, limit: int, lease: dt.timedelta, now: dt.datetime) -> list[int]:
    table = PayoutNotice._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET lease_until = %(until)s, send_attempts = send_attempts + 1
            WHERE id IN (
                SELECT id FROM {table}
                WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < %(now)s)
                  AND NOT EXISTS ({_HELD_BY_BATCH_SQL})
                ORDER BY id LIMIT %(limit)s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            {"until": now + lease, "now": now, "limit": limit, "held": list(BATCH_HOLDING_STATUSES)},
        )
        return sorted(row[0] for row in cursor.fetchall())


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
    sent: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # notice id, message id, provider id
    failed: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    retry: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    notified_payouts: list[int] = dataclasses.field(default_factory=list)


def _decrypt_all(ciphertexts: Iterable[str | None]) -> list[dict[str, str]]:
    return [json.loads(crypto.decrypt(c)) if c else {} for c in ciphertexts]


def payout_notices_send(
    *, limit: int = SEND_CHUNK, lease: dt.timedelta = DEFAULT_LEASE, email_connection: Any = None
) -> SendResult:
    """Claims up to `limit` due notices, sends them and records the outcome; returns the counts."""
    now = timezone.now()
    ids = _claim(limit=limit, lease=lease, now=now)
    result = SendResult(claimed=len(ids))
    if not ids:
        return result
    with connection.cursor() as cursor:
        cursor.execute(
            _LOAD_SQL.format(
                notice=PayoutNotice._meta.db_table,
                payout=Payout._meta.db_table,
                program=Program._meta.db_table,
                secret=PayoutSecret._meta.db_table,
            ),
            {"ids": ids},
        )
        rows = cursor.fetchall()
    secrets = _decrypt_all(row[12] for row in rows)
    outcome = _Outcome()
    emails: list[tuple[int, int, str, int, EmailMultiAlternatives]] = []
    gateway = None
    for row, secret in zip(rows, secrets, strict=True):
        notice_id, kind, channel, language, recipient, attempts, payout_id = row[:7]
        amount, method, expires_at, reference, program_name = row[7:12]
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
        message_id = message_id_for(notice_id)
        if channel == NoticeChannel.EMAIL:
            message = EmailMultiAlternatives(
                subject=rendered.subject,
                body=rendered.text,
                to=[recipient],
                headers={"Message-ID": message_id},
            )
            message.attach_alternative(rendered.html, "text/html")
            emails.append((notice_id, payout_id, kind, attempts, message))
        elif channel == NoticeChannel.SMS:
            gateway = gateway or sms_gateway()
            try:
                provider_id = gateway.send(message_key=f"payout-notice-{notice_id}", phone=recipient, text=rendered.sms)
            except SmsError as exc:
                _retry_or_fail(outcome, notice_id, attempts, f"sms: {exc}")
                continue
            outcome.sent.append((notice_id, message_id, provider_id))
            if kind == NoticeKind.ISSUED:
                outcome.notified_payouts.append(payout_id)
        else:
            outcome.failed.append((notice_id, "no email address or phone number"))
    if emails:
        mail = email_connection or get_connection(fail_silently=False)
        with mail:
            for notice_id, payout_id, kind, attempts, message in emails:
                try:
                    mail.send_messages([message])
                except Exception as exc:  # any transport error: retry later
                    _retry_or_fail(outcome, notice_id, attempts, f"email: {type(exc).__name__}")
                    continue
                outcome.sent.append((notice_id, message_id_for(notice_id), message_id_for(notice_id)))
                if kind == NoticeKind.ISSUED:
                    outcome.notified_payouts.append(payout_id)
    _record(outcome, now=timezone.now())
    result.sent, result.failed, result.retry = len(outcome.sent), len(outcome.failed), len(outcome.retry)
    logger.info("payout notices sent", extra={"sent": result.sent, "failed": result.failed, "retry": result.retry})
    return result


def _retry_or_fail(outcome: _Outcome, notice_id: int, attempts: int, error: str) -> None:
    if attempts >= MAX_SEND_ATTEMPTS:
        outcome.failed.append((notice_id, error))
    else:
        outcome.retry.append((notice_id, error))


def _record(outcome: _Outcome, *, now: dt.datetime) -> None:
    """The outcome of one chunk in a few statements: sent / failed / retry rows, payouts → notified."""
    notice_table = PayoutNotice._meta.db_table
    payout_table = Payout._meta.db_table
    with audit_context(actor=None, action="payout_notices_send"), transaction.atomic(), connection.cursor() as cursor:
        if outcome.sent:
            ids, message_ids, provider_ids = (list(column) for column in zip(*outcome.sent, strict=True))
            cursor.execute(
                f"""
                UPDATE {notice_table} n
                SET status = 'sent', sent_at = %(now)s, lease_until = NULL, message_id = v.message_id,
                    provider_id = v.provider_id, last_error = ''
                FROM unnest(%(ids)s::bigint[], %(message_ids)s::text[], %(provider_ids)s::text[])
                     AS v(id, message_id, provider_id)
                WHERE n.id = v.id AND n.status = 'pending'
                """,
                {"now": now, "ids": ids, "message_ids": message_ids, "provider_ids": provider_ids},
            )
        for status, rows in ((NoticeStatus.FAILED, outcome.failed), (NoticeStatus.PENDING, outcome.retry)):
            if not rows:
                continue
            ids, errors = (list(column) for column in zip(*rows, strict=True))
            cursor.execute(
                f"""
                UPDATE {notice_table} n SET status = %(status)s, lease_until = NULL, last_error = v.error
                FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS v(id, error)
                WHERE n.id = v.id AND n.status = 'pending'
                """,
                {"status": status, "ids": ids, "errors": errors},
            )
        if outcome.notified_payouts:
            cursor.execute(
                f"""
                WITH moved AS (
                    UPDATE {payout_table} SET status = 'notified', updated_at = %(now)s
                    WHERE id = ANY(%(ids)s) AND status = 'issued'
                    RETURNING id
                )
                INSERT INTO {PayoutTransition._meta.db_table}
                    (payout_id, at, actor_id, status_before, status_after, note)
                SELECT id, %(now)s, NULL, 'issued', 'notified', 'notice sent' FROM moved
                """,
                {"now": now, "ids": outcome.notified_payouts},
            )
