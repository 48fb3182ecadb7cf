"""The customer application page's service: signed links, the deadline window, web submissions.

A customer reaches the form through a link carrying a signed token (`django.core.signing`, own salt):
the program slug and the subject (customer id, coupon inquiry number or charge id) travel inside it,
so nothing in the URL can be enumerated or edited. A tampered or foreign token is simply not found.

A link is good for APPLICATION_LINK_MAX_AGE_DAYS (default 14) after it was made, and for applying only
(its own salt and purpose; a receipt or any other signed value is not a link). An expired link cannot
be used, but its page sends a fresh one to the address on file, never to one typed in. An application
that changes where notices go also tells the previous address, so a leaked link cannot quietly divert
a payout. Rotating SECRET_KEY keeps links working while the old key is in SECRET_KEY_FALLBACKS.

Every application is a new Submission (channel `web`); all are kept and the latest one is official
(SPEC "Submission"). The confirmation email is sent after the transaction commits, once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
from collections.abc import Callable

from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from claims.models import ApplicationDetails, Channel, Policy, Program, Submission
from support_portal.core.audit import audit_context
from support_portal.core.masking import mask_email
from support_portal.customers.models import Charge, Coupon, Customer

logger = logging.getLogger(__name__)

LINK_SALT = "claims.application.link"
LINK_PURPOSE = "apply"
RECEIPT_SALT = "claims.application.receipt"
# A fresh link for an expired one goes out at most once per subject and program in this many seconds.
LINK_RESEND_INTERVAL_SECONDS = 15 * 60
# Languages of the confirmation email, in order: Japanese first, then English.
EMAIL_LANGUAGES = ("ja", "en")


class ApplicationLinkInvalid(Exception):
    """The token is not one we signed (tampered, truncated, other salt or purpose) or its program is gone."""


class ApplicationLinkExpired(ApplicationLinkInvalid):
    """The token is ours but older than APPLICATION_LINK_MAX_AGE_DAYS; `target` is whom it was made for."""

    def __init__(self, *, target: ApplicationTarget) -> None:
        super().__init__(f"application link for {target.program.slug} expired")
        self.target = target


class ApplicationClosed(Exception):
    """The program does not accept applications now (status, opens_at or deadline)."""


class ApplicationInvalid(Exception):
    """A value the program does not allow (e.g. a payout method it does not offer); nothing was written."""

    def __init__(self, *, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclasses.dataclass(frozen=True)
class ApplicationTarget:
    program: Program
    subject: str


def application_link_max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.APPLICATION_LINK_MAX_AGE_DAYS)


def application_token_make(*, program: Program, subject: str) -> str:
    return signing.dumps({"u": LINK_PURPOSE, "p": program.slug, "s": subject}, salt=LINK_SALT, compress=True)


def application_link_make(*, program: Program, subject: str) -> str:
    """The path of the application page for one subject of one program (prefix the site's origin)."""
    return reverse("claims:apply", kwargs={"token": application_token_make(program=program, subject=subject)})


def application_target_read(*, token: str) -> ApplicationTarget:
    """The program and subject a token names; ApplicationLinkInvalid when it is not ours."""
    try:
        payload = signing.loads(token, salt=LINK_SALT, max_age=application_link_max_age())
    except signing.SignatureExpired as exc:
        # Signed by us, only too old: the page can offer a fresh link to the address on file.
        raise ApplicationLinkExpired(target=_target_of(signing.loads(token, salt=LINK_SALT))) from exc
    except signing.BadSignature as exc:
        raise ApplicationLinkInvalid from exc
    return _target_of(payload)


def _target_of(payload: object) -> ApplicationTarget:
    if (
        not isinstance(payload, dict)
        or payload.get("u") != LINK_PURPOSE
        or not isinstance(payload.get("p"), str)
        or not isinstance(payload.get("s"), str)
        or not payload["s"]
    ):
        raise ApplicationLinkInvalid
    program = Program.objects.filter(slug=payload["p"]).first()
    if program is None:
        raise ApplicationLinkInvalid
    return ApplicationTarget(program=program, subject=payload["s"])


def receipt_make(*, submission: Submission) -> str:
    """A signed reference to a submission for the confirmation page's URL (not guessable)."""
    return signing.dumps(submission.submission_id, salt=RECEIPT_SALT)


def receipt_read(*, receipt: str, target: ApplicationTarget) -> Submission:
    """The submission a receipt names, if it belongs to the link's program and subject."""
    try:
        submission_id = signing.loads(receipt, salt=RECEIPT_SALT, max_age=application_link_max_age())
    except signing.BadSignature as exc:
        raise ApplicationLinkInvalid from exc
    submission = Submission.objects.filter(
        submission_id=submission_id, program_id=target.program.slug, subject=target.subject
    ).first()
    if submission is None:
        raise ApplicationLinkInvalid
    return submission


def registered_email(*, program: Program, subject: str) -> str:
    """The billing system's email of the customer the subject belongs to ('' when none is known)."""
    kind = Policy.subject_kind(program.policy)
    if kind == "customer":
        customers = Customer.objects.filter(customer_id=subject)
    elif kind == "charge":
        customers = Customer.objects.filter(
            customer_id__in=Charge.objects.filter(charge_id=subject).values("subscription__customer_id")
        )
    else:
        customers = Customer.objects.filter(
            customer_id__in=Coupon.objects.filter(inquiry_number=subject).values("customer_id")
        )
    return customers.values_list("email", flat=True).first() or ""


def notice_email(*, program: Program, subject: str) -> str:
    """Where payout notices for the subject go today: the latest application's address, else the registered
    one (the rule of payouts.notices' outbox query)."""
    latest = Submission.objects.filter(program_id=program.slug, subject=subject).order_by("-submitted_at").first()
    if latest is not None and latest.contact_email:
        return latest.contact_email
    return registered_email(program=program, subject=subject)


def submissions_count(*, program: Program, subject: str) -> int:
    return Submission.objects.filter(program_id=program.slug, subject=subject).count()


def _new_submission_id() -> str:
    # Opaque and unguessable; the W marks the web channel for people reading exports.
    return f"W{secrets.token_hex(12).upper()}"


def submission_create_from_application(
    *,
    program: Program,
    subject: str,
    contact_email: str,
    payout_method: str,
    applicant_name: str = "",
    prefecture: str = "",
    travel_date: dt.date | None = None,
    now: dt.datetime | None = None,
) -> Submission:
    """Records one web application as a new Submission (earlier ones are kept; the latest is official).

    Raises ApplicationClosed when the program does not accept applications at `now`, and
    ApplicationInvalid for a payout method the program does not offer; neither writes anything.
    The program row is re-read but not locked: a run holds that lock for minutes, and an application
    that arrived while the program was open stays valid whatever happens to the status afterwards.
    """
    now = now or timezone.now()
    with audit_context(actor=None, channel="web"), transaction.atomic():
        fresh = Program.objects.get(pk=program.pk)
        if not fresh.accepts_applications(at=now):
            raise ApplicationClosed(f"program {fresh.slug} does not accept applications now")
        if payout_method not in (fresh.payout_methods or []):
            raise ApplicationInvalid(field="payout_method", message=f"{payout_method!r} is not offered")
        if not contact_email:
            raise ApplicationInvalid(field="contact_email", message="required")
        previous_email = notice_email(program=fresh, subject=subject)
        submission = Submission.objects.create(
            submission_id=_new_submission_id(),
            program=fresh,
            subject=subject,
            submitted_at=now,
            channel=Channel.WEB,
            contact_email=contact_email,
            payout_method=payout_method,
        )
        if applicant_name or prefecture or travel_date:
            ApplicationDetails.objects.create(
                submission=submission, applicant_name=applicant_name, prefecture=prefecture, travel_date=travel_date
            )
        submission_id = submission.submission_id
        transaction.on_commit(lambda: application_confirmation_send(submission_id=submission_id), robust=True)
        if previous_email and previous_email.casefold() != contact_email.casefold():
            transaction.on_commit(
                lambda: application_contact_change_send(submission_id=submission_id, previous_email=previous_email),
                robust=True,
            )
    return submission


def _bilingual_email(*, template: str, context: dict[str, object], to: str) -> EmailMultiAlternatives:
    """One message with each of EMAIL_LANGUAGES in turn (Japanese first): text and HTML alternatives."""
    subjects, texts, htmls = [], [], []
    for language in EMAIL_LANGUAGES:
        with translation.override(language):
            subjects.append(render_to_string(f"claims/apply/{template}_subject.txt", context).strip())
            texts.append(render_to_string(f"claims/apply/{template}.txt", context).strip())
            htmls.append(render_to_string(f"claims/apply/{template}_body.html", context).strip())
    message = EmailMultiAlternatives(
        subject=" / ".join(subjects),
        body="\n\n----------------------------------------\n\n".join(texts) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Content-Language": ", ".join(EMAIL_LANGUAGES)},
    )
    message.attach_alternative(render_to_string("claims/apply/email.html", {"sections": htmls}), "text/html")
    return message


def application_contact_change_send(*, submission_id: str, previous_email: str) -> None:
    """Tells the address notices used to go to that an application moved them elsewhere (masked)."""
    submission = Submission.objects.select_related("program").get(submission_id=submission_id)
    context = {
        "submission": submission,
        "program": submission.program,
        "new_email": mask_email(submission.contact_email),
        "submitted_at": timezone.localtime(submission.submitted_at),
    }
    _bilingual_email(template="contact_changed", context=context, to=previous_email).send()
    logger.info("contact change notice sent to the previous address for submission %s", submission_id)


def application_link_resend(*, target: ApplicationTarget, absolute_url: Callable[[str], str]) -> bool:
    """A fresh link for an expired one's program and subject, to the registered address (else the one
    notices go to), never to one a visitor types. False, sending nothing, when there is no address, the
    program does not accept applications, or a link went out within LINK_RESEND_INTERVAL_SECONDS.
    `absolute_url` turns the link's path into the URL the email carries."""
    program, subject = target.program, target.subject
    if not program.accepts_applications(at=timezone.now()):
        return False
    address = registered_email(program=program, subject=subject) or notice_email(program=program, subject=subject)
    if not address:
        return False
    # Whoever holds an expired link can only make us mail its owner, and not often.
    if not cache.add(f"claims.apply.resend:{program.slug}:{subject}", 1, timeout=LINK_RESEND_INTERVAL_SECONDS):
        return False
    context = {
        "program": program,
        "link": absolute_url(application_link_make(program=program, subject=subject)),
        "valid_days": settings.APPLICATION_LINK_MAX_AGE_DAYS,
        "closes_at": program.application_closes_at(),
    }
    _bilingual_email(template="link", context=context, to=address).send()
    logger.info("fresh application link sent for program %s", program.slug)
    return True


def application_confirmation_send(*, submission_id: str) -> None:
    """The confirmation email (text + HTML, Japanese first then English) to the application's address."""
    submission = Submission.objects.select_related("program").get(submission_id=submission_id)
    context = {
        "submission": submission,
        "program": submission.program,
        "is_coupon": submission.program.policy == Policy.COUPON_OUTAGE_2023,
        "submitted_at": timezone.localtime(submission.submitted_at),
        "payout_method_label": submission.get_payout_method_display,
    }
    _bilingual_email(template="email", context=context, to=submission.contact_email).send()
    # Never log the address: the submission id is enough to find it.
    logger.info("application confirmation sent for submission %s", submission_id)
