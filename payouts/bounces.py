"""Bounced payout notices: delivery status notifications (RFC 3464) read from the bounce mailbox.

Notices go out with a Message-ID naming the notice (`notices.message_id_for`) and the return path of a
mailbox the operator reads; a receiving server that cannot deliver answers there with a
`multipart/report; report-type=delivery-status` message holding the failed recipient's status and the
original message's headers. `bounce_from_message` finds in such a report the original Message-ID and
the reason (status, diagnostic); `payout_notice_bounces_record` records each on its notice
(`payout_notice_record_bounce`: status `bounced`, the first bounce's time and reason kept). Reports of
delays (`Action: delayed`) and mail that is not a delivery report (auto-replies, spam) change nothing.
A bounce is recorded, not acted on: a re-send is a person's explicit, audited action (the admin's
"Re-send" on the notice, e.g. after the customer gave a new address).
"""

from __future__ import annotations

import dataclasses
import email
import email.message
import email.policy
from collections.abc import Iterable

from django.utils import timezone

from payouts.models import NoticeStatus
from payouts.notices import Actor, payout_notice_record_bounce
from support_portal.accounts.logging import mask_text

REASON_MAX_LENGTH = 300


@dataclasses.dataclass(frozen=True)
class Bounce:
    message_id: str  # the bounced notice's Message-ID, angle brackets included
    reason: str  # e.g. "5.1.1 smtp; 550 5.1.1 <x@example.jp>: user unknown"


def _status_fields(report: email.message.Message) -> list[email.message.Message]:
    """The per-recipient field groups of a message/delivery-status part (the first group is per message).

    Python's parser gives the groups as sub-messages of the part; a part it could not split is read as
    one text block."""
    payload = report.get_payload()
    if isinstance(payload, list):
        groups = [group for group in payload if isinstance(group, email.message.Message)]
        return groups[1:] or groups[:1]
    text = payload if isinstance(payload, str) else ""
    return [email.message_from_string(block) for block in text.strip().split("\n\n")[1:]]


def _original_message_id(part: email.message.Message) -> str:
    """The Message-ID of the returned original (message/rfc822) or of its headers (text/rfc822-headers)."""
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        return str(inner.get("Message-ID", "")).strip() if isinstance(inner, email.message.Message) else ""
    decoded = part.get_payload(decode=True)
    if not isinstance(decoded, bytes):
        return ""
    return str(email.message_from_bytes(decoded).get("Message-ID", "")).strip()


def bounce_from_message(raw: bytes) -> Bounce | None:
    """The failed delivery a delivery-status report describes, or None (not a report, only delays, or
    no original Message-ID in it)."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report" or message.get_param("report-type") != "delivery-status":
        return None
    failures: list[str] = []
    message_id = ""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type == "message/delivery-status":
            for group in _status_fields(part):
                if str(group.get("Action", "")).strip().lower() != "failed":
                    continue
                status = str(group.get("Status", "")).strip()
                diagnostic = " ".join(str(group.get("Diagnostic-Code", "")).split())
                # The diagnostic names the recipient: masked before it is stored (shown in the admin).
                failures.append(mask_text("; ".join(item for item in (status, diagnostic) if item)) or "failed")
        elif content_type in ("message/rfc822", "text/rfc822-headers") and not message_id:
            message_id = _original_message_id(part)
    if not failures or not message_id:
        return None
    return Bounce(message_id=message_id, reason=" | ".join(failures)[:REASON_MAX_LENGTH])


@dataclasses.dataclass
class BounceReading:
    recorded: int = 0  # notices marked bounced now
    already: int = 0  # notices that had bounced before (first bounce kept)
    unknown: int = 0  # reports naming no notice of ours (or one never sent)
    ignored: int = 0  # not a failure report


def payout_notice_bounces_record(*, messages: Iterable[bytes], actor: Actor = None) -> BounceReading:
    """Records the bounces the given raw messages report, each on its notice (one transaction per report)."""
    reading = BounceReading()
    for raw in messages:
        bounce = bounce_from_message(raw)
        if bounce is None:
            reading.ignored += 1
            continue
        started = timezone.now()
        notice = payout_notice_record_bounce(message_id=bounce.message_id, reason=bounce.reason, actor=actor)
        if notice is None or notice.status != NoticeStatus.BOUNCED or notice.bounced_at is None:
            reading.unknown += 1
        elif notice.bounced_at >= started:
            reading.recorded += 1
        else:
            reading.already += 1
    return reading
