"""The customer application page's service: signed links, the deadline window, web submissions.

A customer reaches the form through a link carrying a signed token (`django.core.signing`, own salt):
the program slug and the subject (customer id, coupon inquiry number or charge id) travel inside it,
so nothing in the URL can be enumerated or edited. A tampered or foreign token is simply not found.

Every application is a new Submission (channel `web`); all are kept and the latest one is official
(SPEC "Submission"). The confirmation email is sent after the transaction commits, once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets

from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from claims.models import ApplicationDetails, Channel, Policy, Program, Submission
from support_portal.core.audit import audit_context

logger = logging.getLogger(__name__)

LINK_SALT = "claims.application.link"
RECEIPT_SALT = "claims.application.receipt"
# Languages of the confirmation email, in order: Japanese first, then English.
EMAIL_LANGUAGES = ("ja", "en")


class ApplicationLinkInvalid(Exception):
    """The token is not one we signed (tampered, truncated, other salt) or its program is gone."""


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


def application_token_make(*, program: Program, subject: str) -> str:
    return signing.dumps({"p": program.slug, "s": subject}, salt=LINK_SALT, compress=True)


def application_link_make(*, program: Program, subject: str) -> str:
    """The path of the application page for one subject of one program (prefix the site's origin)."""
    return reverse("claims:apply", kwargs={"token": application_token_make(program=program, subject=subject)})


def application_target_read(*, token: str) -> ApplicationTarget:
    """The program and subject a token names; ApplicationLinkInvalid when it is not ours."""
    try:
        payload = signing.loads(token, salt=LINK_SALT)
    except signing.BadSignature as exc:
        raise ApplicationLinkInvalid from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("p"), str) or not isinstance(payload.get("s"), str):
        raise ApplicationLinkInvalid
    program = Program.objects.filter(slug=payload["p"]).first()
    if program is None or not payload["s"]:
        raise ApplicationLinkInvalid
    return ApplicationTarget(program=program, subject=payload["s"])


def receipt_make(*, submission: Submission) -> str:
    """A signed reference to a submission for the confirmation page's URL (not guessable)."""
    return signing.dumps(submission.submission_id, salt=RECEIPT_SALT)


def receipt_read(*, receipt: str, target: ApplicationTarget) -> Submission:
    """The submission a receipt names, if it belongs to the link's program and subject."""
    try:
        submission_id = signing.loads(receipt, salt=RECEIPT_SALT)
    except signing.BadSignature as exc:
        raise ApplicationLinkInvalid from exc
    submission = Submission.objects.filter(
        submission_id=submission_id, program_id=target.program.slug, subject=target.subject
    ).first()
    if submission is None:
        raise ApplicationLinkInvalid
    return submission


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
    return submission


def application_confirmation_send(*, submission_id: str) -> None:
    """The confirmation email (text + HTML, Japanese first then English) to the application's address."""
    submission = Submission.objects.select_related("program").get(submission_id=submission_id)
    context = {
        "submission": submission,
        "program": submission.program,
        "is_coupon": submission.program.policy == Policy.COUPON_OUTAGE_2023,
        "submitted_at": timezone.localtime(submission.submitted_at),
    }
    subjects, texts, htmls = [], [], []
    for language in EMAIL_LANGUAGES:
        with translation.override(language):
            context["payout_method_label"] = str(submission.get_payout_method_display())
            subjects.append(render_to_string("claims/apply/email_subject.txt", context).strip())
            texts.append(render_to_string("claims/apply/email.txt", context).strip())
            htmls.append(render_to_string("claims/apply/email_body.html", context).strip())
    message = EmailMultiAlternatives(
        subject=" / ".join(subjects),
        body="\n\n----------------------------------------\n\n".join(texts) + "\n",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[submission.contact_email],
        headers={"Content-Language": ", ".join(EMAIL_LANGUAGES)},
    )
    html = render_to_string("claims/apply/email.html", {"sections": htmls})
    message.attach_alternative(html, "text/html")
    message.send()
    # Never log the address: the submission id is enough to find it.
    logger.info("application confirmation sent for submission %s", submission_id)
