"""Notices through the transactional outbox: written with the issue, sent once, re-sent only on purpose."""

import datetime as dt
import smtplib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payouts.models import (
    NoticeStatus,
    Payout,
    PayoutNotice,
    PayoutNoticeAttempt,
    PayoutNoticeTransition,
    PayoutSecretReveal,
    PayoutStatus,
    PayoutTransition,
    ProgramPayoutPolicy,
    SimulatedSms,
)
from payouts.notices import (
    MAX_CUT_OFF_ATTEMPTS,
    NoticeRefused,
    message_id_for,
    payout_notice_attempts_recover,
    payout_notice_record_bounce,
    payout_notice_resend,
    payout_notice_resolve,
    payout_notices_send,
    payout_reminders_queue,
)
from payouts.services import (
    PayoutRefused,
    payout_issue,
    payout_secret_reveal,
    payouts_create_for_approved_claims,
    payouts_expire_unclaimed,
)
from tests.factories import CustomerFactory, UserFactory
from tests.payouts.conftest import approved_claim, make_program
from tests.payouts.test_batches import finance


@contextmanager
def freeze(at: dt.datetime) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def issued_payout(program=None, **claim_overrides) -> Payout:
    program = program or make_program()
    claim = approved_claim(program, **claim_overrides)
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = Payout.objects.get(claim=claim)
    payout_issue(payout_id=payout.pk)
    payout.refresh_from_db()
    return payout


@pytest.mark.django_db
def test_the_notice_is_written_in_the_transaction_that_issues(django_capture_on_commit_callbacks):
    program = make_program()
    approved_claim(program)
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = Payout.objects.get()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        payout_issue(payout_id=payout.pk)

    notice = PayoutNotice.objects.get()
    assert (notice.payout, notice.kind, notice.sequence, notice.status, notice.channel, notice.language) == (
        payout,
        "issued",
        1,
        "pending",
        "email",
        "ja",
    )
    assert [cb.func.__self__.name for cb in callbacks] == ["payouts.send_notices"]
    # The code is not in the outbox row
    code = payout.secret.reveal().code
    assert all(code not in str(value) for value in PayoutNotice.objects.values().get().values())

    # Issuing again adds nothing
    payout_issue(payout_id=payout.pk)
    assert PayoutNotice.objects.count() == 1


@pytest.mark.django_db
def test_the_sender_sends_html_and_text_with_a_stable_message_id_and_marks_notified(caplog):
    payout = issued_payout()
    code, pin = payout.secret.reveal().code, payout.secret.reveal().pin
    notice = PayoutNotice.objects.get()

    caplog.set_level("DEBUG")
    result = payout_notices_send()

    assert (result.claimed, result.sent, result.failed) == (1, 1, 0)
    [message] = mail.outbox
    assert message.to == [payout.payee.email]
    assert message.extra_headers["Message-ID"] == message_id_for(notice.pk)
    assert "お支払いのご案内" in message.subject and "5,000円" in message.subject
    assert code in message.body and pin in message.body
    assert "日本時間" in message.body  # the deadline in JST
    assert isinstance(message, EmailMultiAlternatives)
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and code in str(html)
    notice.refresh_from_db()
    assert (notice.status, notice.message_id, notice.lease_until) == ("sent", message_id_for(notice.pk), None)
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.NOTIFIED
    assert PayoutTransition.objects.filter(payout=payout, status_after="notified").count() == 1
    assert code not in caplog.text and pin not in caplog.text

    # Nothing more to send
    assert payout_notices_send().claimed == 0
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_customers_without_email_get_an_sms_once():
    payee = CustomerFactory.create(email="", phone="080-1111-2222")
    payout = issued_payout(payee=payee)
    notice = PayoutNotice.objects.get()
    assert (notice.channel, notice.recipient) == ("sms", "080-1111-2222")

    payout_notices_send()

    assert mail.outbox == []
    sms = SimulatedSms.objects.get()
    assert (sms.message_key, sms.phone, sms.requests) == (f"payout-notice-{notice.pk}", "080-1111-2222", 1)
    notice.refresh_from_db()
    assert (notice.status, notice.provider_id) == ("sent", sms.reference)
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.NOTIFIED


def sender_killed_before_recording(monkeypatch) -> None:
    """The next sender hands its messages to the provider and dies before recording any outcome."""
    monkeypatch.setattr("payouts.notices._Recorder.flush", lambda self, force=False: None)


@pytest.mark.django_db
def test_a_sender_that_died_after_sending_is_never_resent_blindly(monkeypatch):
    # Given an email notice and an SMS notice, and a sender killed after sending both, before recording
    email_payout = issued_payout()
    sms_payout = issued_payout(payee=CustomerFactory.create(email=""))
    with monkeypatch.context() as patch:
        sender_killed_before_recording(patch)
        payout_notices_send(lease=dt.timedelta(seconds=30))
    email_notice, sms_notice = PayoutNotice.objects.order_by("pk")
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == [message_id_for(email_notice.pk)]
    attempts = {a.notice_id: a for a in PayoutNoticeAttempt.objects.all()}
    assert {(a.number, a.status, a.claimed_by) for a in attempts.values()} == {
        (1, "claimed", "system:payouts.send_notices")
    }
    assert mail.outbox[0].extra_headers["X-Payout-Notice-Attempt"] == str(attempts[email_notice.pk].attempt_id)

    # When other senders run after the lease has run out
    later = timezone.now() + dt.timedelta(minutes=1)
    with freeze(later):
        assert payout_notices_send().claimed == 0  # the open attempt holds the notice: nothing sent again

        # And the sweep recovers the attempts
        result = payout_notice_attempts_recover()

    # Then the email attempt is uncertain (SMTP cannot be asked) and the SMS one was found at the gateway
    assert (result.uncertain, result.delivered, result.not_delivered, result.unresolved) == (2, 1, 0, 1)
    email_notice.refresh_from_db()
    sms_notice.refresh_from_db()
    sms = SimulatedSms.objects.get()
    assert (email_notice.status, sms_notice.status, sms_notice.provider_id) == ("uncertain", "sent", sms.reference)
    assert sms.requests == 1 and len(mail.outbox) == 1
    assert list(
        PayoutNoticeTransition.objects.order_by("notice_id", "id").values_list(
            "notice_id", "status_before", "status_after", "actor_label", "actor"
        )
    ) == [
        (email_notice.pk, "pending", "uncertain", "system:payouts.sweep", None),
        (sms_notice.pk, "pending", "uncertain", "system:payouts.sweep", None),
        (sms_notice.pk, "uncertain", "sent", "system:payouts.sweep", None),
    ]
    assert Payout.objects.get(pk=sms_payout.pk).status == PayoutStatus.NOTIFIED
    assert Payout.objects.get(pk=email_payout.pk).status == PayoutStatus.ISSUED
    # Still nothing re-sent by later senders and sweeps
    with freeze(later):
        assert payout_notices_send().claimed == 0
        assert payout_notice_attempts_recover().unresolved == 1
    assert len(mail.outbox) == 1

    # When a person checked the mail server's log and found the message delivered
    person = UserFactory.create(username="finance-check")
    payout_notice_resolve(notice=email_notice, delivered=True, actor=person)

    # Then the notice is sent, the payout notified, once, and the trail names the person
    email_notice.refresh_from_db()
    assert (email_notice.status, email_notice.message_id) == ("sent", message_id_for(email_notice.pk))
    assert Payout.objects.get(pk=email_payout.pk).status == PayoutStatus.NOTIFIED
    assert PayoutNoticeAttempt.objects.get(notice=email_notice).status == "sent"
    last = PayoutNoticeTransition.objects.filter(notice=email_notice).latest("id")
    assert (last.status_before, last.status_after, last.actor, last.actor_label) == (
        "uncertain",
        "sent",
        person,
        "user:finance-check",
    )
    assert len(mail.outbox) == 1
    with pytest.raises(NoticeRefused):
        payout_notice_resolve(notice=email_notice, delivered=False, actor=person)  # no longer uncertain


@pytest.mark.django_db
def test_an_uncertain_notice_found_not_delivered_is_sent_again_with_a_new_attempt(monkeypatch):
    # Given an email notice whose sender died before it could record anything, now uncertain
    issued_payout()
    with monkeypatch.context() as patch:
        sender_killed_before_recording(patch)
        payout_notices_send(lease=dt.timedelta(seconds=30))
    mail.outbox.clear()  # the provider never received it (e.g. the process died before DATA)
    payout_notice_attempts_recover(now=timezone.now() + dt.timedelta(minutes=1))
    notice = PayoutNotice.objects.get()
    assert notice.status == "uncertain"

    # When a person finds it missing at the provider, and the sender runs
    payout_notice_resolve(notice=notice, delivered=False, actor=UserFactory.create(username="finance-miss"))
    assert PayoutNotice.objects.get().status == "pending"
    payout_notices_send()

    # Then it goes out once more, under a second attempt id
    first, second = PayoutNoticeAttempt.objects.order_by("number")
    assert [(a.number, a.status) for a in (first, second)] == [(1, "not_sent"), (2, "sent")]
    assert first.resolved_by == "user:finance-miss"
    [message] = mail.outbox
    assert message.extra_headers["X-Payout-Notice-Attempt"] == str(second.attempt_id)
    assert PayoutNotice.objects.get().status == "sent"


class RefusingConnection:
    """An email connection whose server refuses (or drops) as told."""

    def __init__(self, *, on_open: Exception | None = None, on_send: Exception | None = None) -> None:
        self.on_open, self.on_send = on_open, on_send

    def open(self) -> None:
        if self.on_open:
            raise self.on_open

    def close(self) -> None:
        pass

    def send_messages(self, messages) -> int:
        if self.on_send:
            raise self.on_send
        mail.outbox.extend(messages)
        return len(messages)


@pytest.mark.django_db
def test_only_attempts_known_not_to_have_reached_the_server_are_retried():
    issued_payout()

    # A refused connection: nothing reached the server — the notice waits for the next sender
    result = payout_notices_send(email_connection=RefusingConnection(on_open=ConnectionRefusedError(111, "refused")))
    assert (result.sent, result.retry, result.uncertain) == (0, 1, 0)
    assert PayoutNotice.objects.get().status == "pending"
    # The server refused the recipient (before DATA): not sent, retried
    refused = smtplib.SMTPRecipientsRefused({"x@example.jp": (550, b"no")})
    assert payout_notices_send(email_connection=RefusingConnection(on_send=refused)).retry == 1

    # The connection dropped after DATA: it may be there — uncertain, not retried
    dropped = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    result = payout_notices_send(email_connection=RefusingConnection(on_send=dropped))
    assert (result.sent, result.retry, result.uncertain) == (0, 0, 1)
    notice = PayoutNotice.objects.get()
    assert (notice.status, notice.last_error) == ("uncertain", "email: SMTPServerDisconnected")
    assert payout_notices_send().claimed == 0
    assert mail.outbox == []
    assert list(
        PayoutNoticeAttempt.objects.order_by("number").values_list("number", "status", "not_sent_reason", "error")
    ) == [
        (1, "not_sent", "not_handed_over", "email: ConnectionRefusedError"),
        (2, "not_sent", "refused", "email: SMTPRecipientsRefused"),
        (3, "uncertain", "", "email: SMTPServerDisconnected"),
    ]


@pytest.mark.django_db
def test_only_the_providers_refusals_use_up_the_five_tries():
    # Given a notice, and a mail server that is down for six sender runs
    payout = issued_payout()
    down = RefusingConnection(on_open=ConnectionRefusedError(111, "refused"))
    for _ in range(6):
        assert payout_notices_send(email_connection=down).retry == 1
    # Then the outage cost the notice nothing: it still waits
    assert (PayoutNotice.objects.get().status, mail.outbox) == ("pending", [])

    # When the server refuses the recipient four times, the notice still waits; the fifth refusal fails it
    refusing = RefusingConnection(on_send=smtplib.SMTPRecipientsRefused({"x@example.jp": (550, b"no")}))
    for _ in range(4):
        result = payout_notices_send(email_connection=refusing)
        assert (result.retry, result.failed) == (1, 0)
    result = payout_notices_send(email_connection=refusing)
    assert (result.claimed, result.retry, result.failed) == (1, 0, 1)

    # Then it is failed, nothing more is tried or sent, and the payout is not notified
    notice = PayoutNotice.objects.get()
    assert (notice.status, notice.send_attempts) == ("failed", 11)
    assert payout_notices_send().claimed == 0
    assert mail.outbox == []
    assert Payout.objects.get(pk=payout.pk).status == PayoutStatus.ISSUED
    assert list(PayoutNoticeAttempt.objects.values_list("not_sent_reason").order_by("number")) == [
        *[("not_handed_over",)] * 6,
        *[("refused",)] * 5,
    ]
    assert list(PayoutNoticeTransition.objects.filter(notice=notice).values_list("status_before", "status_after")) == [
        ("pending", "failed")
    ]


@pytest.mark.django_db
def test_senders_cut_off_again_and_again_do_not_fail_the_notice_until_the_wide_cap(monkeypatch):
    # Given a notice whose senders are killed after handing it over, and each time found not delivered
    issued_payout()
    person = UserFactory.create(username="finance-miss")

    def cut_off() -> None:
        with monkeypatch.context() as patch:
            sender_killed_before_recording(patch)
            assert payout_notices_send(lease=dt.timedelta(seconds=30)).claimed == 1
        mail.outbox.clear()  # it never reached the mailbox
        assert payout_notice_attempts_recover(now=timezone.now() + dt.timedelta(minutes=1)).uncertain == 1
        payout_notice_resolve(notice=PayoutNotice.objects.get(), delivered=False, actor=person)

    # When that happens MAX_CUT_OFF_ATTEMPTS - 1 times (more than the five tries refusals get)
    for _ in range(MAX_CUT_OFF_ATTEMPTS - 1):
        cut_off()

    # Then the notice still waits, and a sender that survives sends it once
    assert PayoutNotice.objects.get().status == "pending"
    with transaction.atomic():
        savepoint = transaction.savepoint()
        assert payout_notices_send().sent == 1
        assert len(mail.outbox) == 1 and PayoutNotice.objects.get().status == "sent"
        transaction.savepoint_rollback(savepoint)
    mail.outbox.clear()

    # And a message that brings down every sender fails at the cap, sending nothing more
    cut_off()
    assert PayoutNotice.objects.get().status == "failed"
    assert payout_notices_send().claimed == 0
    assert mail.outbox == []
    assert PayoutNoticeAttempt.objects.filter(not_sent_reason="cut_off").count() == MAX_CUT_OFF_ATTEMPTS


@pytest.mark.django_db
def test_a_sender_hands_nothing_over_past_half_its_lease():
    # Given an email notice and an SMS notice, and a sender whose lease is already used up
    issued_payout()
    issued_payout(payee=CustomerFactory.create(email=""))

    # When it runs
    result = payout_notices_send(lease=dt.timedelta(0))

    # Then it gave nothing to the provider (the sweep may take its attempts over): both wait, not sent
    assert (result.claimed, result.sent, result.retry, result.uncertain) == (2, 0, 2, 0)
    assert mail.outbox == [] and not SimulatedSms.objects.exists()
    assert set(PayoutNoticeAttempt.objects.values_list("status", "error")) == {
        ("not_sent", "lease running out: not handed over")
    }
    # And the next sender with time in hand sends each once
    assert payout_notices_send().sent == 2
    assert len(mail.outbox) == 1 and SimulatedSms.objects.get().requests == 1


@pytest.mark.django_db
def test_the_database_allows_one_open_attempt_per_notice():
    issued_payout()
    notice = PayoutNotice.objects.get()
    values = {"notice": notice, "channel": "email", "claimed_at": timezone.now(), "lease_until": timezone.now()}
    PayoutNoticeAttempt.objects.create(attempt_id=uuid.uuid4(), number=1, status="claimed", claimed_by="x", **values)
    PayoutNoticeAttempt.objects.create(attempt_id=uuid.uuid4(), number=2, status="sent", claimed_by="x", **values)

    with pytest.raises(IntegrityError), transaction.atomic():
        PayoutNoticeAttempt.objects.create(
            attempt_id=uuid.uuid4(), number=3, status="uncertain", claimed_by="x", **values
        )
    assert PayoutNoticeAttempt.objects.count() == 2


@pytest.mark.django_db
def test_resolving_in_the_admin_needs_the_permission(client, monkeypatch):
    issued_payout()
    with monkeypatch.context() as patch:
        sender_killed_before_recording(patch)
        payout_notices_send(lease=dt.timedelta(seconds=30))
    payout_notice_attempts_recover(now=timezone.now() + dt.timedelta(minutes=1))
    notice = PayoutNotice.objects.get()
    url = reverse("admin:payouts_payoutnotice_changelist")
    client.force_login(UserFactory.create(username="no-perms-resolve"))
    response = client.post(url, {"action": "resolve_delivered", "_selected_action": [notice.pk]})
    assert response.status_code == 403
    assert PayoutNotice.objects.get().status == "uncertain"

    client.force_login(finance())
    response = client.post(url, {"action": "resolve_delivered", "_selected_action": [notice.pk]}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["不確定な通知 1 件を確定しました。"]
    assert PayoutNotice.objects.get().status == "sent"
    assert PayoutNoticeTransition.objects.latest("id").actor_label == "user:finance-1"


@pytest.mark.django_db
def test_a_leased_notice_is_not_taken_by_a_second_sender():
    issued_payout()
    PayoutNotice.objects.update(lease_until=timezone.now() + dt.timedelta(minutes=5))
    assert payout_notices_send().claimed == 0
    assert mail.outbox == []


@pytest.mark.django_db
def test_the_sender_batches_its_writes(django_assert_max_num_queries):
    program = make_program()
    for _ in range(20):
        approved_claim(program)
    payouts_create_for_approved_claims(program=program, actor=None)
    for payout in Payout.objects.all():
        payout_issue(payout_id=payout.pk)

    with CaptureQueriesContext(connection) as queries:
        assert payout_notices_send().sent == 20
    assert len(queries.captured_queries) <= 12  # claim, load, sent, notified, savepoints — not per notice


@pytest.mark.django_db
def test_a_resend_is_an_explicit_new_notice_with_its_actor():
    payout = issued_payout()
    payout_notices_send()
    original = PayoutNotice.objects.get()
    actor = UserFactory.create(username="finance-resend")

    again = payout_notice_resend(notice=original, actor=actor)

    assert (again.kind, again.sequence, again.status, again.created_by) == ("issued", 2, "pending", actor)
    payout_notices_send()
    assert len(mail.outbox) == 2
    assert mail.outbox[1].extra_headers["Message-ID"] == message_id_for(again.pk)
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.NOTIFIED
    assert PayoutTransition.objects.filter(payout=payout, status_after="notified").count() == 1

    # Refused without a person, and for a payout already received
    with pytest.raises(NoticeRefused):
        payout_notice_resend(notice=original, actor=None)
    Payout.objects.filter(pk=payout.pk).update(status="settled")
    with pytest.raises(NoticeRefused):
        payout_notice_resend(notice=original, actor=actor)
    assert PayoutNotice.objects.count() == 2


@pytest.mark.django_db
def test_resend_in_the_admin_needs_the_permission(client):
    issued_payout()
    notice = PayoutNotice.objects.get()
    client.force_login(UserFactory.create(username="no-perms"))
    response = client.post(
        reverse("admin:payouts_payoutnotice_changelist"), {"action": "resend_notices", "_selected_action": [notice.pk]}
    )
    assert response.status_code == 403
    assert PayoutNotice.objects.count() == 1

    client.force_login(finance())
    client.post(
        reverse("admin:payouts_payoutnotice_changelist"), {"action": "resend_notices", "_selected_action": [notice.pk]}
    )
    assert list(PayoutNotice.objects.order_by("sequence").values_list("sequence", "created_by__username")) == [
        (1, None),
        (2, "finance-1"),
    ]


@pytest.mark.django_db
def test_a_bounce_is_recorded_by_message_id():
    issued_payout()
    payout_notices_send()
    notice = PayoutNotice.objects.get()

    payout_notice_record_bounce(message_id=notice.message_id, reason="550 user unknown")

    notice.refresh_from_db()
    assert (notice.status, notice.last_error) == (NoticeStatus.BOUNCED, "bounced: 550 user unknown")
    assert notice.bounced_at is not None
    assert payout_notice_record_bounce(message_id="<unknown@x>", reason="x") is None


@pytest.mark.django_db
def test_english_notices_when_the_program_says_so():
    program = make_program()
    ProgramPayoutPolicy.objects.create(program=program, notice_language="en")
    issued_payout(program, payout_method="points:amazon")
    payout_notices_send()
    [message] = mail.outbox
    assert "is ready" in message.subject
    assert "https://points.simulator.invalid/amazon/receive/" in message.body
    assert "Japan time" in message.body


@pytest.mark.django_db
def test_reminders_go_once_per_payout_n_days_before_the_deadline():
    soon = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=3))
    later = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=30))
    no_reminders = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=3))
    ProgramPayoutPolicy.objects.create(program=no_reminders, reminder_days_before=0)
    due = issued_payout(soon)
    issued_payout(later)
    issued_payout(no_reminders)
    payout_notices_send()

    assert payout_reminders_queue() == 1
    assert payout_reminders_queue() == 0
    reminder = PayoutNotice.objects.get(kind="reminder")
    assert reminder.payout == due
    payout_notices_send()
    assert "お受け取り期限が近づいています" in mail.outbox[-1].subject
    assert len(mail.outbox) == 4


@pytest.mark.django_db
def test_unclaimed_payouts_expire_and_are_reoffered_where_the_program_says_so():
    plain = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=1))
    reoffering = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=1))
    ProgramPayoutPolicy.objects.create(program=reoffering, reoffer_on_expiry=True, reoffer_receipt_days=30)
    gone = issued_payout(plain)
    again = issued_payout(reoffering)
    settled = issued_payout(reoffering)
    Payout.objects.filter(pk=settled.pk).update(status="settled")
    after_deadline = timezone.now() + dt.timedelta(days=3)

    assert payouts_expire_unclaimed(now=after_deadline) == (2, 1)

    assert set(Payout.objects.filter(status="expired").values_list("pk", flat=True)) == {gone.pk, again.pk}
    new = Payout.objects.get(claim=again.claim, offer=2)
    assert (new.status, new.method, new.amount_jpy, new.batch) == ("created", again.method, again.amount_jpy, None)
    assert new.idempotency_key == f"{again.idempotency_key}:2"
    assert new.expires_at is not None and new.expires_at > after_deadline
    assert list(PayoutTransition.objects.filter(payout=gone, status_after="expired").values_list("status_before")) == [
        ("issued",)
    ]
    # Running again changes nothing; the re-offer is issued (with its own notice) like any payout
    assert payouts_expire_unclaimed(now=after_deadline) == (0, 0)
    payout_issue(payout_id=new.pk)
    assert PayoutNotice.objects.filter(payout=new, kind="issued").count() == 1


@pytest.mark.django_db
def test_transfers_and_card_refunds_get_no_reminder_and_never_expire():
    # Given issued payouts past (and near) the receipt deadline, one per method family
    program = make_program(receipt_deadline=timezone.localdate() + dt.timedelta(days=1))
    code = issued_payout(program)
    transfer = issued_payout(program)
    refund = issued_payout(program)
    Payout.objects.filter(pk=transfer.pk).update(method="bank_transfer")
    Payout.objects.filter(pk=refund.pk).update(method="original_method")
    # When reminders are queued and, after the deadline, unclaimed payouts expire
    assert payout_reminders_queue() == 1
    assert payouts_expire_unclaimed(now=timezone.now() + dt.timedelta(days=3)) == (1, 0)
    # Then only the code (which the customer must pick up) was reminded and expired
    assert list(PayoutNotice.objects.filter(kind="reminder").values_list("payout_id", flat=True)) == [code.pk]
    assert dict(Payout.objects.values_list("pk", "status")) == {
        code.pk: "expired",
        transfer.pk: "issued",
        refund.pk: "issued",
    }


@pytest.mark.django_db
def test_revealing_a_code_is_audited_and_needs_the_permission(client):
    payout = issued_payout()
    url = reverse("admin:payouts_payout_reveal", args=[payout.pk])
    code = payout.secret.reveal().code

    client.force_login(UserFactory.create(username="nosy"))
    assert client.post(url, {"reason": "curious"}).status_code == 403
    assert PayoutSecretReveal.objects.count() == 0

    user = finance()
    client.force_login(user)
    page = client.get(reverse("admin:payouts_payout_change", args=[payout.pk])).content.decode()
    assert code not in page and payout.secret.masked in page
    assert code not in client.get(url).content.decode()
    response = client.post(url, {"reason": "customer lost the email (ticket 42)"})
    assert code in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    reveal = PayoutSecretReveal.objects.get()
    assert (reveal.payout, reveal.actor, reveal.reason) == (payout, user, "customer lost the email (ticket 42)")

    with pytest.raises(PayoutRefused):
        payout_secret_reveal(payout=payout, actor=user, reason=" ")
    assert PayoutSecretReveal.objects.count() == 1


@pytest.mark.django_db
def test_managers_can_read_the_notice_templates(client):
    user = finance()
    manager = UserFactory.create(username="manager-1")
    manager.groups.add(Group.objects.get(name="manager"))
    client.force_login(manager)
    body = client.get(reverse("admin:payouts_payoutnotice_templates")).content.decode()
    assert "payouts/notices/issued.ja.txt" in body and "payouts/notices/reminder.en.html" in body
    assert "0000111122223333" in body  # the sample's made-up code
    client.force_login(UserFactory.create(username="agent-2"))
    assert client.get(reverse("admin:payouts_payoutnotice_templates")).status_code == 403
    assert user.has_perm("payouts.view_payoutnotice")


@pytest.mark.django_db
def test_the_notice_page_shows_each_attempt_with_why_it_was_not_sent_and_the_transitions(client):
    # Given a notice whose mail server was down once, then refused the recipient five times
    issued_payout()
    payout_notices_send(email_connection=RefusingConnection(on_open=ConnectionRefusedError(111, "refused")))
    refusing = RefusingConnection(on_send=smtplib.SMTPRecipientsRefused({"x@example.jp": (550, b"no")}))
    for _ in range(5):
        payout_notices_send(email_connection=refusing)
    notice = PayoutNotice.objects.get()

    # When finance opens the notice
    client.force_login(finance())
    response = client.get(reverse("admin:payouts_payoutnotice_change", args=[notice.pk]))

    # Then its six attempts are listed with their reasons, and the one move to failed with who made it
    assert response.status_code == 200
    attempts, transitions = (
        formset
        for formset in response.context["inline_admin_formsets"]
        if formset.formset.prefix in {"attempts", "transitions"}
    )
    assert [form.original.not_sent_reason for form in attempts] == ["not_handed_over", *["refused"] * 5]
    assert [
        (form.original.status_before, form.original.status_after, form.original.actor_label) for form in transitions
    ] == [("pending", "failed", "system:payouts.send_notices")]
    page = response.content.decode()
    assert page.count("送信先が拒否") == 5 and page.count("受け渡し前に中止") == 1
