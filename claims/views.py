"""The customer application page (public, reached by a signed link; see claims.application)."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from claims.application import (
    ApplicationClosed,
    ApplicationInvalid,
    ApplicationLinkExpired,
    ApplicationLinkInvalid,
    ApplicationTarget,
    application_link_resend,
    application_target_read,
    receipt_make,
    receipt_read,
    submission_create_from_application,
    submissions_count,
)
from claims.forms import ApplicationForm


def _invalid(request: HttpRequest) -> HttpResponse:
    # One page for every refusal: it must not say whether the token, the program or the receipt was wrong.
    return render(request, "claims/apply/invalid.html", status=404)


def _expired(request: HttpRequest, token: str, target: ApplicationTarget, *, sent: bool = False) -> HttpResponse:
    context = {"program": target.program, "token": token, "valid_days": settings.APPLICATION_LINK_MAX_AGE_DAYS}
    return render(request, "claims/apply/expired.html", {**context, "sent": sent}, status=410)


def _target(request: HttpRequest, token: str) -> ApplicationTarget | HttpResponse:
    """The link's target, or the page that refuses it: 404 when it is not ours, 410 when it expired."""
    try:
        return application_target_read(token=token)
    except ApplicationLinkExpired as exc:
        return _expired(request, token, exc.target)
    except ApplicationLinkInvalid:
        return _invalid(request)


def _closed(request: HttpRequest, target: ApplicationTarget, *, status: int) -> HttpResponse:
    return render(
        request,
        "claims/apply/closed.html",
        {"program": target.program, "closes_at": target.program.application_closes_at()},
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def apply(request: HttpRequest, token: str) -> HttpResponse:
    target = _target(request, token)
    if isinstance(target, HttpResponse):
        return target
    program = target.program
    if not program.accepts_applications(at=timezone.now()):
        # POST after the deadline: refused, nothing recorded.
        return _closed(request, target, status=403 if request.method == "POST" else 200)
    form = ApplicationForm(request.POST or None, program=program)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            submission = submission_create_from_application(
                program=program,
                subject=target.subject,
                contact_email=data["contact_email"],
                payout_method=data["payout_method"],
                applicant_name=data.get("applicant_name") or "",
                prefecture=data.get("prefecture") or "",
                travel_date=data.get("travel_date"),
            )
        except ApplicationClosed:
            return _closed(request, target, status=403)
        except ApplicationInvalid as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            done = reverse("claims:apply_done", kwargs={"token": token, "receipt": receipt_make(submission=submission)})
            return HttpResponseRedirect(done)
    return render(
        request,
        "claims/apply/form.html",
        {
            "form": form,
            "program": program,
            "closes_at": program.application_closes_at(),
            "earlier": submissions_count(program=program, subject=target.subject),
        },
        status=400 if form.is_bound else 200,
    )


@never_cache
@require_http_methods(["GET"])
def apply_done(request: HttpRequest, token: str, receipt: str) -> HttpResponse:
    target = _target(request, token)
    if isinstance(target, HttpResponse):
        return target
    try:
        submission = receipt_read(receipt=receipt, target=target)
    except ApplicationLinkInvalid:
        return _invalid(request)
    return render(
        request,
        "claims/apply/done.html",
        {
            "program": target.program,
            "submission": submission,
            "submitted_at": timezone.localtime(submission.submitted_at),
            "total": submissions_count(program=target.program, subject=target.subject),
        },
    )


@never_cache
@require_http_methods(["POST"])
def apply_resend(request: HttpRequest, token: str) -> HttpResponse:
    """From an expired link's page: a fresh link to the address on file. The answer is the same whether
    or not one went out, so the page tells nobody whether we know an address."""
    try:
        application_target_read(token=token)
    except ApplicationLinkExpired as exc:
        application_link_resend(target=exc.target, absolute_url=request.build_absolute_uri)
        return _expired(request, token, exc.target, sent=True)
    except ApplicationLinkInvalid:
        return _invalid(request)
    # Still valid: nothing to renew, go to the form.
    return HttpResponseRedirect(reverse("claims:apply", kwargs={"token": token}))
