"""Notices through the transactional outbox: written with the issue, sent once, re-sent only on purpose."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from payouts.models import (
    NoticeStatus,
    Payout,
    PayoutNotice,
    PayoutSecretReveal,
    PayoutStatus,
    PayoutTransition,
    ProgramPayoutPolicy,
    SimulatedSms,
)
from payouts.notices import (
    NoticeRefused,
    message_id_for,
    payout_notice_record_bounce,
    payout_notice_resend,
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


@pytest.mark.django_db
def test_a_sender_that_died_after_sending_leaves_a_resend_with_the_same_ids():
    email_payout = issued_payout()
    sms_payout = issued_payout(payee=CustomerFactory.create(email=""))
    # A first sender claimed both, sent them and died before recording (lease still on the rows)
    payout_notices_send(lease=dt.timedelta(seconds=0))
    PayoutNotice.objects.update(status="pending", lease_until=timezone.now() - dt.timedelta(seconds=1))
    first_ids = [m.extra_headers["Message-ID"] for m in mail.outbox]

    payout_notices_send()

    # The same Message-ID again (de-duplicable by the mail system), the SMS gateway absorbed the repeat
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == first_ids * 2
    assert list(SimulatedSms.objects.values_list("requests", flat=True)) == [2]
    assert SimulatedSms.objects.count() == 1
    assert PayoutNotice.objects.filter(status="sent").count() == 2
    assert {email_payout.pk, sms_payout.pk} == set(
        Payout.objects.filter(status="notified").values_list("pk", flat=True)
    )


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
