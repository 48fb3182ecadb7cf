"""Bounced notices read from the bounce mailbox: delivery status reports (RFC 3464) recorded on their notice."""

import mailbox

import pghistory.models
import pytest
from django.core.management import CommandError, call_command

from payouts.bounces import Bounce, bounce_from_message, payout_notice_bounces_record
from payouts.models import NoticeStatus, PayoutNotice
from payouts.notices import payout_notices_send
from tests.payouts.test_notices import issued_payout

DIAGNOSTIC = "smtp; 550 5.1.1 <taro@example.jp>: Recipient address rejected: User unknown"
STORED = "smtp; 550 5.1.1 <t***@example.jp>: Recipient address rejected: User unknown"  # the address masked


def report(message_id: str, *, action: str = "failed", headers_part: str = "text/rfc822-headers") -> bytes:
    """A delivery status notification as Postfix writes it (human part, status part, original headers)."""
    original = (
        f"Message-ID: {message_id}\nFrom: notices@example.com\nTo: taro@example.jp\nSubject: =?utf-8?b?5pSv5omV?=\n"
    )
    return f"""Return-Path: <>
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: bounces@example.com
Subject: Undelivered Mail Returned to Sender
Message-Id: <20261204031500.AB12@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B1"

--B1
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not be delivered.

--B1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Fri,  4 Dec 2026 12:15:00 +0900 (JST)

Final-Recipient: rfc822; taro@example.jp
Original-Recipient: rfc822;taro@example.jp
Action: {action}
Status: 5.1.1
Remote-MTA: dns; mail.example.jp
Diagnostic-Code: {DIAGNOSTIC}

--B1
Content-Type: {headers_part}

{original}
--B1--
""".encode()


def sent_notice() -> PayoutNotice:
    issued_payout()
    payout_notices_send()
    notice = PayoutNotice.objects.get()
    assert notice.status == NoticeStatus.SENT
    return notice


def test_a_failure_report_gives_the_original_message_id_and_the_reason():
    expected = Bounce(message_id="<payout-notice-7@n.example>", reason=f"5.1.1; {STORED}")

    assert bounce_from_message(report("<payout-notice-7@n.example>")) == expected
    # The original returned whole (message/rfc822) names it too
    assert bounce_from_message(report("<payout-notice-7@n.example>", headers_part="message/rfc822")) == expected


def test_delays_auto_replies_and_reports_without_the_original_are_not_bounces():
    auto_reply = b"From: taro@example.jp\nSubject: Out of office\nContent-Type: text/plain\n\nAway until Monday.\n"

    assert bounce_from_message(report("<payout-notice-7@n.example>", action="delayed")) is None
    assert bounce_from_message(auto_reply) is None
    assert bounce_from_message(report("")) is None


@pytest.mark.django_db
def test_a_report_marks_its_notice_bounced_once():
    notice = sent_notice()

    reading = payout_notice_bounces_record(messages=[report(notice.message_id)])

    notice.refresh_from_db()
    assert (reading.recorded, reading.already, reading.unknown, reading.ignored) == (1, 0, 0, 0)
    assert (notice.status, notice.last_error) == (NoticeStatus.BOUNCED, f"bounced: 5.1.1; {STORED}")
    first_bounce = notice.bounced_at
    assert first_bounce is not None
    # The same report again: counted as known, the first bounce stands, no audit row added
    events = pghistory.models.Events.objects.tracks(notice).count()
    again = payout_notice_bounces_record(messages=[report(notice.message_id)])
    notice.refresh_from_db()
    assert (again.recorded, again.already) == (0, 1)
    assert notice.bounced_at == first_bounce
    assert pghistory.models.Events.objects.tracks(notice).count() == events


@pytest.mark.django_db
def test_reports_naming_no_sent_notice_of_ours_change_nothing():
    notice = sent_notice()
    pending_id = f"<payout-notice-{notice.pk + 1}@payout-notices.invalid>"  # no such notice
    foreign = "<20261201.123@other-system.example>"
    wrong_domain = notice.message_id.replace("@", "@x.")  # right id, not our Message-ID

    reading = payout_notice_bounces_record(messages=[report(pending_id), report(foreign), report(wrong_domain)])

    assert (reading.recorded, reading.already, reading.unknown, reading.ignored) == (0, 0, 3, 0)
    notice.refresh_from_db()
    assert (notice.status, notice.bounced_at, notice.last_error) == (NoticeStatus.SENT, None, "")


@pytest.mark.django_db
def test_the_command_reads_new_reports_once_and_files_them(tmp_path, capsys):
    notice = sent_notice()
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(mailbox.MaildirMessage(report(notice.message_id)))
    box.add(mailbox.MaildirMessage(b"From: a@b\nSubject: hello\n\nnot a report\n"))

    call_command("record_notice_bounces", "--maildir", str(tmp_path / "bounces"))

    assert capsys.readouterr().out.strip() == (
        "record_notice_bounces: 2 message(s): recorded=1, already=0, unknown=0, ignored=1"
    )
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.BOUNCED
    assert sorted(box.get_message(key).get_subdir() for key in box.iterkeys()) == ["cur", "cur"]
    # A second run finds nothing new
    call_command("record_notice_bounces", "--maildir", str(tmp_path / "bounces"))
    assert capsys.readouterr().out.strip() == (
        "record_notice_bounces: 0 message(s): recorded=0, already=0, unknown=0, ignored=0"
    )


def test_the_command_refuses_a_path_that_is_not_a_maildir(tmp_path):
    with pytest.raises(CommandError, match="is not a maildir"):
        call_command("record_notice_bounces", "--maildir", str(tmp_path))
