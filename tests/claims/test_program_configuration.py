"""Program configuration: typed parameters per policy, template defaults, admin validation and actions."""

import datetime as dt

import pytest
from django.contrib.admin.sites import site
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import translation

from claims.admin import ProgramForm
from claims.models import Program, ProgramRun
from claims.parameters import (
    CouponOutageParameters,
    LoginOutageParameters,
    Month,
    ParameterError,
    parameters_for,
)
from support_portal.accounts.models import ExportRecord
from tests.claims.factories import jst, template
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_templates_carry_the_spec_defaults():
    login = template("login-outage-2024")
    params = login.typed_parameters()
    assert isinstance(params, LoginOutageParameters)
    assert params.first_covered_month_by_plan == {
        "premium": Month(2024, 9, 1),
        "channel": Month(2024, 9, 1),
        "channel_plus": Month(2024, 9, 1),
        "creator_support": Month(2024, 9, 1),
        "zen_study": Month(2024, 10, 1),
    }
    assert (params.cap_month, params.restored_at) == (Month(2024, 12, 1), jst(2024, 8, 5))
    assert (login.application_deadline, login.application_rule, login.default_payout_method) == (
        dt.date(2025, 1, 31),
        "required",
        "atm_cash",
    )

    coupon = template("coupon-outage-2023")
    coupon_params = coupon.typed_parameters()
    assert isinstance(coupon_params, CouponOutageParameters)
    assert (coupon_params.outage_starts_at, coupon_params.duplicate_interval_seconds) == (jst(2023, 2, 24, 16), 120)
    assert (coupon.application_deadline, coupon.receipt_deadline, coupon.application_rule) == (
        dt.date(2023, 4, 30),
        dt.date(2023, 5, 31),
        "not_required_for_app_coupons",
    )
    assert template("autorenew-60day").parameters["window_days"] == 60
    assert template("cooling-off-7day").parameters == {
        "window_days": 7,
        "processing_fee_jpy": 0,
        "later_cycle_requires_no_usage": True,
    }
    assert template("company-termination").parameters["minimum_fee_jpy"] == 100
    assert template("overpayment").application_rule == "not_required"
    for program in Program.objects.all():
        program.full_clean()  # every template validates


def test_missing_keys_take_defaults_and_json_round_trips():
    params = parameters_for("company-termination", {"fee_percent": 15})
    assert params.to_json() == {"fee_percent": 15, "minimum_fee_jpy": 100, "cycle_max_days": 31}
    assert parameters_for("company-termination", params.to_json()) == params


@pytest.mark.parametrize(
    ("policy", "data", "errors"),
    [
        ("cooling-off-7day", {"window_days": "seven"}, {"window_days": "expected a whole number"}),
        ("cooling-off-7day", {"window_days": -1}, {"window_days": "must not be negative"}),
        ("cooling-off-7day", {"windows_days": 7}, {"windows_days": "unknown parameter"}),
        ("login-outage-2024", {"cap_month": "2024-13"}, {"cap_month": "expected a month YYYY-MM"}),
        (
            "login-outage-2024",
            {"first_covered_month_by_plan": {"premium": "2025-01"}},
            {"first_covered_month_by_plan": "after the cap month for: premium"},
        ),
        ("service-failure-prorata", {"penalty_percent": 110}, {"penalty_percent": "must be between 0 and 100"}),
        ("overpayment", [], {"parameters": "expected a JSON object"}),
        (
            "coupon-outage-2023",
            {"outage_ends_at": "2023-02-24T15:00"},
            {"outage_ends_at": "must be after outage_starts_at"},
        ),
    ],
)
def test_invalid_parameters_name_the_field(policy, data, errors):
    with pytest.raises(ParameterError) as excinfo:
        parameters_for(policy, data)
    assert excinfo.value.errors == errors


def form_data(program, **overrides):
    data = {
        "slug": program.slug,
        "name": program.name,
        "policy": program.policy,
        "status": program.status,
        "parameters": '{"window_days": 7}',
        "application_rule": "required",
        "payout_methods": ["original_method"],
        "default_payout_method": "original_method",
        "auto_approve_max_jpy": "0",
        "qa_sample_percent": "0",
    }
    return {**data, **overrides}


def test_admin_form_reports_an_invalid_parameter_as_a_field_error():
    program = template("cooling-off-7day")

    form = ProgramForm(data=form_data(program, parameters='{"window_days": "seven"}'), instance=program)

    assert not form.is_valid()
    assert form.errors["parameters"] == ["window_days: expected a whole number"]


def test_admin_form_reports_malformed_json_and_bad_payout_settings():
    program = template("cooling-off-7day")

    form = ProgramForm(
        data=form_data(program, parameters="{not json", default_payout_method="atm_cash", qa_sample_percent="101"),
        instance=program,
    )

    assert not form.is_valid()
    assert set(form.errors) == {"parameters", "default_payout_method", "qa_sample_percent"}


@pytest.mark.parametrize("parameters", ["", "null"])
def test_admin_form_reports_empty_or_null_parameters_as_a_field_error(parameters):
    # Given a program whose parameters are set
    program = template("cooling-off-7day")
    before = Program.objects.filter(pk=program.pk).values().get()

    # When the form is posted with empty or null parameters
    form = ProgramForm(data=form_data(program, parameters=parameters), instance=program)

    # Then it is a clear error on the field (Japanese first), and nothing was saved
    with translation.override("en"):
        assert not form.is_valid()
        assert form.errors["parameters"] == ["Enter the parameters as a JSON object; {} keeps every default."]
    assert Program.objects.filter(pk=program.pk).values().get() == before


def test_admin_form_accepts_valid_parameters():
    program = template("cooling-off-7day")

    form = ProgramForm(data=form_data(program, parameters='{"processing_fee_jpy": 330}'), instance=program)

    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.parameters == {"processing_fee_jpy": 330}


def _staff(*permissions):
    user = UserFactory.create()
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_program", "change_program", *permissions]))
    client = Client()
    client.force_login(user)
    return client


def test_preview_and_run_actions_need_the_run_permission(django_capture_on_commit_callbacks):
    program = template("overpayment")
    url = "/admin/claims/program/"
    assert site.is_registered(Program)

    without = _staff()
    response = without.post(url, {"action": "run_programs", "_selected_action": [program.pk]})
    assert ProgramRun.objects.count() == 0
    assert response.status_code in (200, 302)

    allowed = _staff("run_program")
    preview = allowed.post(url, {"action": "preview_csv", "_selected_action": [program.pk]})
    assert preview.status_code == 200
    assert preview["Content-Type"].startswith("text/csv")
    assert preview.content.decode().splitlines() == ["subject,eligible,amount_jpy,payee,lines,reason"]
    # and the export is recorded with who and how many rows
    assert list(ExportRecord.objects.values_list("actor_id", "what", "row_count")) == [
        (int(allowed.session["_auth_user_id"]), "dry-run preview of overpayment (CSV)", 0)
    ]

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        allowed.post(url, {"action": "run_programs", "_selected_action": [program.pk]})
    assert ProgramRun.objects.filter(program=program, status="queued").count() == 1
    assert len(callbacks) == 1


def test_admin_change_form_cannot_change_the_status(admin_client):
    # Given a draft program and its change page (with the runs inline's management form)
    program = template("cooling-off-7day")
    assert program.status == "draft"
    url = f"/admin/claims/program/{program.pk}/change/"
    page = admin_client.get(url)
    management = {}
    for inline in page.context["inline_admin_formsets"]:
        form = inline.formset.management_form
        management.update({form.add_prefix(name): value for name, value in form.initial.items()})

    # When a superuser posts the change form with status=open (the field is read-only)
    response = admin_client.post(url, {**form_data(program, status="open", name="renamed"), **management})

    # Then the other fields save but the status stays: only the transition actions change it
    assert response.status_code == 302
    program.refresh_from_db()
    assert (program.name, program.status) == ("renamed", "draft")
