"""The program report (issue 4 item 9): totals and breakdowns by plan / class / month, page and CSV."""

import pytest
from django.urls import reverse

from claims.models import Claim, ClaimStatus
from claims.report import program_report
from claims.services import program_run
from support_portal.accounts.models import ExportRecord
from tests.claims.factories import SubmissionFactory, jst, template
from tests.claims.test_program_run import AS_OF, premium_member_with_charges
from tests.claims.test_review import staff_client


def two_members_one_applied_and_approved(calendar):
    """Member A applied (Sep..Oct covered, ¥1,100) and is approved; member B did not apply."""
    applied, _charges = premium_member_with_charges(months=((2024, 9), (2024, 10)))
    premium_member_with_charges(months=((2024, 9),), apply=False)
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    Claim.objects.filter(subject=applied.customer_id).update(status=ClaimStatus.APPROVED, approved_amount_jpy=1100)
    return program, applied


@pytest.mark.django_db
def test_report_counts_population_eligible_applied_approved_and_breaks_amounts_down(calendar):
    # Given two members with claims, one of whom applied and was approved, and a later stray application
    program, _applied = two_members_one_applied_and_approved(calendar)
    SubmissionFactory.create(subject="C_UNKNOWN", submitted_at=jst(2025, 1, 11))

    # When the report is computed
    report = program_report(program=program)

    # Then the totals count subjects, and the amounts are broken down by plan, rule (class) and month
    totals = report.totals
    assert (totals.population, totals.eligible, totals.applied, totals.approved) == (2, 1, 2, 1)
    assert (totals.eligible_amount_jpy, totals.approved_amount_jpy) == (1100, 1100)
    assert [
        (r.value, r.claims, r.approved, r.eligible_amount_jpy, r.approved_amount_jpy) for r in report.breakdowns["plan"]
    ] == [("premium", 1, 1, 1100, 1100)]
    assert [(r.value, r.eligible_amount_jpy) for r in report.breakdowns["class"]] == [("login-outage-month", 1100)]
    assert [(r.value, r.eligible_amount_jpy) for r in report.breakdowns["month"]] == [
        ("2024-09", 550),
        ("2024-10", 550),
    ]


@pytest.mark.django_db
def test_manager_sees_the_report_page_with_charts_and_tables(calendar):
    # Given a manager and a program that ran
    program, _applied = two_members_one_applied_and_approved(calendar)
    _manager, client = staff_client("manager-report", "manager")

    # When the manager opens the report page
    response = client.get(reverse("admin:claims_program_report", args=[program.pk]))

    # Then it shows the totals, a chart per breakdown and the same numbers as tables
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="img"') == 4
    assert 'data-total="population">2<' in html
    assert 'data-section="month"' in html
    assert ExportRecord.objects.count() == 0


@pytest.mark.django_db
def test_report_csv_download_is_recorded(calendar):
    # Given a manager and a program that ran
    program, _applied = two_members_one_applied_and_approved(calendar)
    manager, client = staff_client("manager-csv", "manager")

    # When the manager downloads the CSV
    response = client.get(reverse("admin:claims_program_report_csv", args=[program.pk]))

    # Then the CSV has the totals and breakdowns, and the export is recorded with who and how many rows
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0] == "section,value,claims,approved,eligible_amount_jpy,approved_amount_jpy"
    assert "total,population,2,,," in lines
    assert "plan,premium,1,1,1100,1100" in lines
    assert "month,2024-10,1,1,550,550" in lines
    record = ExportRecord.objects.get()
    assert (record.actor, record.what, record.row_count) == (manager, "claims program report login-outage-2024", 8)


@pytest.mark.django_db
def test_agent_may_not_see_the_report(calendar):
    # Given an agent (no program permissions)
    program = template("login-outage-2024")
    _agent, client = staff_client("agent-report", "agent")

    # When the agent asks for the report page and the CSV
    page = client.get(reverse("admin:claims_program_report", args=[program.pk]))
    download = client.get(reverse("admin:claims_program_report_csv", args=[program.pk]))

    # Then both are refused and no export is recorded
    assert (page.status_code, download.status_code) == (403, 403)
    assert ExportRecord.objects.count() == 0
