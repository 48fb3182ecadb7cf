"""The customer application page: signed links, the deadline window, web submissions, the email."""

import datetime as dt
import re
import uuid
from types import SimpleNamespace

import pghistory.models
import pytest
from django.contrib.auth.models import Group
from django.core import mail, signing
from django.core.mail import EmailMultiAlternatives

from claims.application import (
    ApplicationClosed,
    ApplicationInvalid,
    application_link_make,
    submission_create_from_application,
)
from claims.models import ApplicationDetails, Program, Submission
from claims.services import ProgramStatusRefused, program_set_status
from support_portal.core.masking import mask_email
from support_portal.core.roles import roles_sync
from tests.claims.factories import ReviewProgramFactory, jst
from tests.factories import ChargeFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

DEADLINE = dt.date(2025, 1, 31)


@pytest.fixture
def program():
    return ReviewProgramFactory.create(
        slug="apply-login",
        name="ログイン障害補償",
        status=Program.Status.OPEN,
        application_rule="required",
        application_deadline=DEADLINE,
        opens_at=jst(2024, 12, 1),
        payout_methods=["atm_cash", "bank_transfer"],
        default_payout_method="atm_cash",
    )


@pytest.fixture
def coupon_program():
    return ReviewProgramFactory.create(
        slug="apply-coupon",
        name="クーポン障害補償",
        policy="coupon-outage-2023",
        status=Program.Status.OPEN,
        application_deadline=None,
        payout_methods=["points:paypay", "bank_transfer"],
        default_payout_method="",
    )


def freeze(monkeypatch, instant):
    monkeypatch.setattr("django.utils.timezone.now", lambda: instant)


def create(program, **overrides):
    values = {
        "program": program,
        "subject": "C0000001",
        "contact_email": "taro@example.jp",
        "payout_method": "atm_cash",
        "now": jst(2025, 1, 10, 12),
    }
    return submission_create_from_application(**{**values, **overrides})


# --- The service ------------------------------------------------------------------------------------


def test_creates_a_web_submission_with_an_opaque_id(program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submission = create(program)

    submission.refresh_from_db()
    assert (submission.channel, submission.subject, submission.contact_email, submission.payout_method) == (
        "web",
        "C0000001",
        "taro@example.jp",
        "atm_cash",
    )
    assert submission.submitted_at == jst(2025, 1, 10, 12)
    assert submission.submission_id.startswith("W") and len(submission.submission_id) == 25
    events = pghistory.models.Events.objects.tracks(submission)
    assert [(e.pgh_label, e.pgh_context.get("channel"), e.pgh_context.get("user")) for e in events] == [
        ("insert", "web", None)
    ]


@pytest.mark.parametrize(
    ("now", "accepted"),
    [
        (jst(2025, 1, 31, 23, 59, 59), True),
        (jst(2025, 2, 1, 0, 0, 0), False),
        (jst(2024, 12, 1, 0, 0, 0), True),
        (jst(2024, 11, 30, 23, 59, 59), False),
    ],
)
def test_deadline_and_opening_boundaries(program, now, accepted):
    if accepted:
        create(program, now=now)
    else:
        with pytest.raises(ApplicationClosed):
            create(program, now=now)
    assert Submission.objects.count() == (1 if accepted else 0)


@pytest.mark.parametrize("status", ["draft", "preview", "closed"])
def test_program_not_open_accepts_nothing(program, status):
    Program.objects.filter(pk=program.pk).update(status=status)
    with pytest.raises(ApplicationClosed):
        create(program)
    assert Submission.objects.count() == 0


def test_payout_method_not_offered_is_refused(program):
    with pytest.raises(ApplicationInvalid) as info:
        create(program, payout_method="points:paypay")
    assert info.value.field == "payout_method"
    assert Submission.objects.count() == 0


def test_email_is_sent_once_after_commit_japanese_first(program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submission = create(program)
    assert mail.outbox == []  # nothing before the commit

    for callback in callbacks:
        callback()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert isinstance(message, EmailMultiAlternatives)
    assert message.to == ["taro@example.jp"]
    assert message.subject.startswith("【お申込み受付】ログイン障害補償")
    assert message.body.index("お申込みを受け付けました") < message.body.index("We have received your application")
    assert submission.submission_id in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and isinstance(html, str)
    assert "受付番号" in html and submission.submission_id in html


def test_rolled_back_application_sends_no_email(program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationClosed):
        create(program, now=jst(2025, 2, 1))
    assert mail.outbox == []


def test_coupon_details_are_kept(coupon_program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        submission = create(
            coupon_program,
            subject="Q00000001",
            payout_method="points:paypay",
            applicant_name="山田 花子",
            prefecture="長崎県",
            travel_date=dt.date(2023, 2, 24),
        )
    details = ApplicationDetails.objects.get(submission=submission)
    assert (details.applicant_name, details.prefecture, details.travel_date) == (
        "山田 花子",
        "長崎県",
        dt.date(2023, 2, 24),
    )


# --- The page ---------------------------------------------------------------------------------------


def test_page_offers_only_the_programs_methods_default_selected(client, program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    response = client.get(application_link_make(program=program, subject="C0000001"))

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "ja"
    html = response.text
    assert '<meta name="viewport"' in html and "<script" not in html
    # only our own stylesheet (a static file: the strict CSP refuses inline <style>), nothing external
    assert re.findall(r"<link[^>]*>", html) == ['<link rel="stylesheet" href="/static/claims/apply.css">']
    assert "<style" not in html and "style=" not in html
    assert "ご連絡先メールアドレス" in html
    assert 'value="atm_cash"' in html and 'value="bank_transfer"' in html and "points:paypay" not in html
    assert response.context["form"]["payout_method"].value() == "atm_cash"
    assert "checked" in html.split('value="atm_cash"')[1].split(">")[0]
    assert "C0000001" not in html and "apply-login" not in response.request["PATH_INFO"]


def test_post_creates_one_submission_and_redirects_to_the_confirmation(
    client, program, monkeypatch, django_capture_on_commit_callbacks
):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link, {"contact_email": "taro@example.jp", "payout_method": "bank_transfer"})

    assert response.status_code == 302
    submission = Submission.objects.get()
    assert (submission.channel, submission.payout_method, submission.subject) == ("web", "bank_transfer", "C0000001")
    assert len(mail.outbox) == 1
    done = client.get(response["Location"])
    assert done.status_code == 200
    assert "お申込みを受け付けました" in done.text and submission.submission_id in done.text


def test_reapplying_keeps_both_and_says_the_latest_counts(
    client, program, monkeypatch, django_capture_on_commit_callbacks
):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(link, {"contact_email": "taro@example.jp", "payout_method": "atm_cash"})

    form = client.get(link)
    assert "すでに 1 回お申込みいただいています" in form.text
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(link, {"contact_email": "new@example.jp", "payout_method": "atm_cash"})

    assert Submission.objects.filter(subject="C0000001").count() == 2
    assert "2 回目のお申込み" in client.get(response["Location"]).text
    # Two confirmations, and the address notices went to is told they now go elsewhere
    assert [m.to for m in mail.outbox] == [["taro@example.jp"], ["new@example.jp"], ["taro@example.jp"]]


def test_payout_method_not_offered_is_a_form_error(client, program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")

    response = client.post(link, {"contact_email": "taro@example.jp", "payout_method": "points:paypay"})

    assert response.status_code == 400
    assert "payout_method" in response.context["form"].errors
    assert Submission.objects.count() == 0
    assert mail.outbox == []


def test_missing_email_is_a_form_error(client, program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    response = client.post(application_link_make(program=program, subject="C1"), {"payout_method": "atm_cash"})
    assert response.status_code == 400
    assert "contact_email" in response.context["form"].errors
    assert Submission.objects.count() == 0


@pytest.mark.parametrize(("now", "closed"), [(jst(2025, 1, 31, 23, 59, 59), False), (jst(2025, 2, 1, 0, 0, 0), True)])
def test_page_after_the_deadline_says_closed_and_refuses_a_post(client, program, monkeypatch, now, closed):
    freeze(monkeypatch, now)
    link = application_link_make(program=program, subject="C0000001")

    page = client.get(link)
    response = client.post(link, {"contact_email": "taro@example.jp", "payout_method": "atm_cash"})

    assert ("受付は終了" in page.text) is closed
    assert response.status_code == (403 if closed else 302)
    assert Submission.objects.count() == (0 if closed else 1)


def test_closed_program_page_accepts_nothing(client, program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    Program.objects.filter(pk=program.pk).update(status=Program.Status.CLOSED)
    link = application_link_make(program=program, subject="C0000001")

    assert "受付は終了" in client.get(link).text
    assert client.post(link, {"contact_email": "a@example.jp", "payout_method": "atm_cash"}).status_code == 403
    assert Submission.objects.count() == 0


@pytest.mark.parametrize(
    "mangle",
    [
        lambda link: link[:-3] + ("A" if link[-3] != "A" else "B") + link[-2:],  # one character of the signature
        lambda link: link.replace("/apply/", "/apply/x"),
        lambda link: "/apply/not-a-token/",
    ],
)
def test_bad_token_is_a_plain_404_and_writes_nothing(client, program, monkeypatch, mangle):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = mangle(application_link_make(program=program, subject="C0000001"))

    get = client.get(link)
    post = client.post(link, {"contact_email": "a@example.jp", "payout_method": "atm_cash"})

    assert get.status_code == post.status_code == 404
    assert "apply-login" not in get.text and "C0000001" not in get.text
    assert Submission.objects.count() == 0


def test_token_of_another_salt_is_refused(client, program):
    token = signing.dumps({"p": program.slug, "s": "C0000001"}, compress=True)
    assert client.get(f"/apply/{token}/").status_code == 404


def test_coupon_page_asks_for_name_and_prefecture(client, coupon_program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=coupon_program, subject="Q00000001")

    form = client.get(link)
    assert "お名前" in form.text and "長崎県" in form.text and "旅行日（任意）" in form.text
    missing = client.post(link, {"contact_email": "a@example.jp", "payout_method": "points:paypay"})
    assert missing.status_code == 400 and set(missing.context["form"].errors) == {"applicant_name", "prefecture"}

    client.post(
        link,
        {
            "contact_email": "a@example.jp",
            "payout_method": "points:paypay",
            "applicant_name": "山田 花子",
            "prefecture": "長崎県",
        },
    )
    details = ApplicationDetails.objects.get()
    assert (details.submission.subject, details.prefecture, details.travel_date) == ("Q00000001", "長崎県", None)


# --- Program status transitions -----------------------------------------------------------------------


def test_program_status_walks_draft_preview_open_closed():
    manager = UserFactory.create(username="mgr-status")
    program = ReviewProgramFactory.create(status=Program.Status.DRAFT)

    for status in ("preview", "draft", "preview", "open", "closed"):
        program_set_status(program=program, status=status, actor=manager)
        program.refresh_from_db()
        assert program.status == status

    events = pghistory.models.Events.objects.tracks(program).filter(pgh_label="update")
    assert {(e.pgh_context or {}).get("user") for e in events} == {manager.pk}


@pytest.mark.parametrize(
    ("current", "wanted"),
    [
        ("draft", "open"),
        ("draft", "closed"),
        ("preview", "closed"),
        ("open", "preview"),
        ("closed", "open"),
        ("open", "bogus"),
    ],
)
def test_program_status_refuses_other_transitions(current, wanted):
    program = ReviewProgramFactory.create(status=current)
    with pytest.raises(ProgramStatusRefused):
        program_set_status(program=program, status=wanted, actor=None)
    program.refresh_from_db()
    assert program.status == current


def test_admin_open_for_applications_action(client):
    roles_sync()
    manager = UserFactory.create(username="mgr-admin")
    manager.groups.add(Group.objects.get(name="manager"))
    reviewer = UserFactory.create(username="rev-admin")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    program = ReviewProgramFactory.create(status=Program.Status.PREVIEW)
    data = {"action": "open_for_applications", "_selected_action": [program.pk]}

    client.force_login(reviewer)
    client.post("/admin/claims/program/", data)
    program.refresh_from_db()
    assert program.status == "preview"  # no change_program: the action is not even offered

    client.force_login(manager)
    client.post("/admin/claims/program/", data)
    program.refresh_from_db()
    assert program.status == "open"
    again = client.post("/admin/claims/program/", data, follow=True)
    assert "cannot go from open to open" in again.text


# --- Links expire, are single-purpose, and survive a key rotation only while the old key is a fallback ---


def at_signing_time(monkeypatch, instant: dt.datetime) -> None:
    # django.core.signing stamps and checks tokens with time.time(); only its view of the clock moves.
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=instant.timestamp))


MADE = jst(2025, 1, 2, 9)


@pytest.mark.parametrize(
    ("max_age_days", "age", "status"),
    [
        (14, dt.timedelta(days=14) - dt.timedelta(seconds=1), 200),
        (14, dt.timedelta(days=14, seconds=1), 410),
        (3, dt.timedelta(days=3, seconds=1), 410),
    ],
)
def test_a_link_works_until_its_max_age_then_answers_410_and_writes_nothing(
    client, program, monkeypatch, settings, max_age_days, age, status
):
    # Given a link made on 2 January, and links configured to last max_age_days
    settings.APPLICATION_LINK_MAX_AGE_DAYS = max_age_days
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    at_signing_time(monkeypatch, MADE)
    link = application_link_make(program=program, subject="C0000001")

    # When it is opened and posted `age` later
    at_signing_time(monkeypatch, MADE + age)
    get = client.get(link)
    post = client.post(link, {"contact_email": "a@example.jp", "payout_method": "atm_cash"})

    # Then it works until the max age and is refused after, with nothing written or mailed
    assert (get.status_code, post.status_code) == (status, 410 if status == 410 else 302)
    if status == 410:
        assert 'id="expired-notice"' in get.text and "C0000001" not in get.text
        assert Submission.objects.count() == 0
        assert mail.outbox == []
    else:
        assert Submission.objects.count() == 1


def test_the_default_link_lifetime_is_fourteen_days():
    from django.conf import settings as live_settings  # noqa: PLC0415

    assert live_settings.APPLICATION_LINK_MAX_AGE_DAYS == 14


@pytest.mark.parametrize(
    "payload",
    [
        {"p": "apply-login", "s": "C0000001"},  # no purpose
        {"u": "receipt", "p": "apply-login", "s": "C0000001"},  # another purpose
        {"u": "apply", "p": "apply-login", "s": ""},  # no subject
    ],
)
def test_a_token_signed_with_the_link_salt_but_not_for_applying_is_refused(client, program, payload):
    token = signing.dumps(payload, salt="claims.application.link", compress=True)

    response = client.get(f"/apply/{token}/")

    assert response.status_code == 404
    assert 'id="invalid-notice"' in response.text


def test_a_receipt_is_not_a_link_and_a_link_is_not_a_receipt(
    client, program, monkeypatch, django_capture_on_commit_callbacks
):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(link, {"contact_email": "taro@example.jp", "payout_method": "atm_cash"})["Location"]
    token, receipt = done.split("/")[2], done.split("/")[4]

    assert client.get(f"/apply/{receipt}/").status_code == 404
    assert client.get(f"/apply/{token}/done/{token}/").status_code == 404
    assert client.get(done).status_code == 200
    assert Submission.objects.count() == 1


def test_links_and_receipts_survive_a_key_rotation_while_the_old_key_is_a_fallback(
    client, program, monkeypatch, settings, django_capture_on_commit_callbacks
):
    # Given a link and a receipt made under the old key
    old_key = "old-" + "k" * 60
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = old_key, []
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(link, {"contact_email": "taro@example.jp", "payout_method": "atm_cash"})["Location"]

    # When the key is rotated with the old one as a fallback, both still open
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-" + "n" * 60, [old_key]
    assert (client.get(link).status_code, client.get(done).status_code) == (200, 200)

    # And once the fallback is dropped both answer the clean 404 page, not a 500, and accept nothing
    settings.SECRET_KEY_FALLBACKS = []
    refused = [
        client.get(link),
        client.get(done),
        client.post(link, {"contact_email": "x@example.jp", "payout_method": "atm_cash"}),
    ]
    assert [r.status_code for r in refused] == [404, 404, 404]
    assert all('id="invalid-notice"' in r.text for r in refused)
    assert Submission.objects.count() == 1


# --- A fresh link for an expired one goes only to the address on file --------------------------------


@pytest.fixture
def expired_link(program, monkeypatch, settings):
    """A link for a fresh subject (the resend throttle lives in the shared cache), made 15 days ago."""
    settings.APPLICATION_LINK_MAX_AGE_DAYS = 14
    freeze(monkeypatch, jst(2025, 1, 20, 12))
    subject = f"C{uuid.uuid4().hex[:9].upper()}"
    at_signing_time(monkeypatch, jst(2025, 1, 5, 11))
    link = application_link_make(program=program, subject=subject)
    at_signing_time(monkeypatch, jst(2025, 1, 20, 12))
    return SimpleNamespace(link=link, subject=subject, resend=link + "new-link/")


def test_an_expired_link_sends_a_fresh_one_to_the_registered_address_once(client, program, expired_link):
    # Given the subject's customer with an address in the billing system
    CustomerFactory.create(customer_id=expired_link.subject, email="owner@example.jp")

    # When the visitor asks for a new link, twice
    first = client.post(expired_link.resend, {"contact_email": "attacker@example.com"})
    second = client.post(expired_link.resend)

    # Then one email went out, to the registered address only, and the pages say the same either way
    assert [r.status_code for r in (first, second)] == [410, 410]
    assert all('id="link-sent"' in r.text and "owner@" not in r.text for r in (first, second))
    assert [m.to for m in mail.outbox] == [["owner@example.jp"]]
    # and its link opens the form (the old one stays expired), with nothing written
    found = re.search(r"http://testserver(/apply/[^/\s]+/)", str(mail.outbox[0].body))
    assert found is not None
    fresh = found.group(1)
    assert fresh != expired_link.link
    assert client.get(fresh).status_code == 200
    assert client.get(expired_link.link).status_code == 410
    assert Submission.objects.count() == 0


def test_without_an_address_on_file_the_resend_page_is_the_same_and_sends_nothing(client, program, expired_link):
    response = client.post(expired_link.resend)

    assert response.status_code == 410 and 'id="link-sent"' in response.text
    assert mail.outbox == []


def test_the_resend_uses_the_latest_applications_address_when_billing_has_none(client, program, expired_link):
    Submission.objects.create(
        submission_id="W1",
        program=program,
        subject=expired_link.subject,
        submitted_at=jst(2025, 1, 6),
        channel="web",
        contact_email="applied@example.jp",
        payout_method="atm_cash",
    )

    client.post(expired_link.resend)

    assert [m.to for m in mail.outbox] == [["applied@example.jp"]]


def test_a_resend_for_a_closed_program_or_a_bad_token_sends_nothing(client, program, expired_link):
    CustomerFactory.create(customer_id=expired_link.subject, email="owner@example.jp")
    program.status = Program.Status.CLOSED
    program.save(update_fields=["status"])

    closed = client.post(expired_link.resend)
    bad = client.post("/apply/not-a-token/new-link/")

    assert (closed.status_code, bad.status_code) == (410, 404)
    assert mail.outbox == []


def test_a_resend_for_a_link_still_valid_goes_to_the_form_and_sends_nothing(client, program, monkeypatch):
    freeze(monkeypatch, jst(2025, 1, 10, 12))
    link = application_link_make(program=program, subject="C0000001")
    CustomerFactory.create(customer_id="C0000001", email="owner@example.jp")

    response = client.post(link + "new-link/")

    assert (response.status_code, response["Location"]) == (302, link)
    assert mail.outbox == []


# --- Changing where notices go tells the previous address --------------------------------------------


def test_a_first_application_with_another_address_tells_the_registered_one(program, django_capture_on_commit_callbacks):
    # Given a customer whose notices would go to the billing system's address
    CustomerFactory.create(customer_id="C0000001", email="owner@example.jp")

    # When an application names another address
    with django_capture_on_commit_callbacks(execute=True):
        submission = create(program, contact_email="someone.else@example.com")

    # Then the confirmation goes to the new address and the registered one is told, masked
    assert [m.to for m in mail.outbox] == [["someone.else@example.com"], ["owner@example.jp"]]
    change = mail.outbox[1]
    assert change.subject.startswith("通知先のメールアドレスが変更されました")
    assert submission.submission_id in change.body
    assert "someone.else@example.com" not in change.body and mask_email("someone.else@example.com") in change.body
    assert isinstance(change, EmailMultiAlternatives)
    html = str(change.alternatives[0][0])
    assert "someone.else@example.com" not in html and submission.submission_id in html


@pytest.mark.parametrize("new_email", ["owner@example.jp", "Owner@Example.JP"])
def test_the_same_address_again_tells_nobody(program, django_capture_on_commit_callbacks, new_email):
    CustomerFactory.create(customer_id="C0000001", email="owner@example.jp")

    with django_capture_on_commit_callbacks(execute=True):
        create(program, contact_email=new_email)

    assert [m.to for m in mail.outbox] == [[new_email]]


def test_with_no_earlier_address_only_the_confirmation_is_sent(program, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        create(program, contact_email="first@example.jp")

    assert [m.to for m in mail.outbox] == [["first@example.jp"]]


def test_a_refused_application_tells_nobody(program, django_capture_on_commit_callbacks):
    CustomerFactory.create(customer_id="C0000001", email="owner@example.jp")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationInvalid):
        create(program, contact_email="someone.else@example.com", payout_method="points:paypay")

    assert mail.outbox == []
    assert Submission.objects.count() == 0


def test_a_charge_subjects_previous_address_is_its_customers(django_capture_on_commit_callbacks):
    # Given a refund program whose subjects are charges, and a charge of a customer with an address
    charge = ChargeFactory.create(subscription__customer__email="payer@example.jp")
    refund = ReviewProgramFactory.create(
        slug="apply-refund",
        policy="overpayment",
        status=Program.Status.OPEN,
        application_deadline=None,
        opens_at=jst(2024, 12, 1),
        payout_methods=["bank_transfer"],
        default_payout_method="bank_transfer",
    )

    with django_capture_on_commit_callbacks(execute=True):
        create(refund, subject=charge.charge_id, contact_email="other@example.jp", payout_method="bank_transfer")

    assert [m.to for m in mail.outbox] == [["other@example.jp"], ["payer@example.jp"]]
