"""program_run: idempotent, set-based writes; never compensate twice; dry run writes nothing."""

import csv
import datetime as dt
import io
import threading

import pghistory.models
import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from claims.engine import staging
from claims.models import Claim, ClaimLine, ClaimStatus, Grant, Program, ProgramRun
from claims.selectors import dry_run_write_csv, program_dry_run_write, program_preview
from claims.services import ProgramNotRunnable, program_claims_submit_for_review, program_run, program_run_execute
from claims.tasks import program_run_task
from support_portal.customers.models import Charge, Login
from tests.claims.factories import LoginFactory, SubmissionFactory, jst, template
from tests.claims.helpers import on_another_connection, rows
from tests.factories import ChargeFactory, PlanFactory, SubscriptionFactory, UserFactory

AS_OF = jst(2025, 2, 10, 9)


OCTOBER_LOGIN = jst(2024, 10, 20)


def premium_member_with_charges(months=((2024, 9), (2024, 10), (2024, 11)), login=OCTOBER_LOGIN, apply=True):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    charges = {}
    for year, month in months:
        charges[(year, month)] = ChargeFactory.create(
            subscription=subscription,
            amount_jpy=550,
            charged_at=jst(year, month, 1, 3),
            period_start=dt.date(year, month, 1),
            period_end=dt.date(year + (month == 12), month % 12 + 1, 1),
        )
    if login:
        LoginFactory.create(customer=subscription.customer, logged_in_at=login)
    if apply:
        SubmissionFactory.create(subject=subscription.customer_id, submitted_at=jst(2025, 1, 10))
    return subscription, charges


def claims_table_counts():
    """Row counts of every table of the claims app, audit event tables included."""
    return {
        model._meta.db_table: model._default_manager.count() for model in apps.get_app_config("claims").get_models()
    }


def earlier_program(months, slug="login-outage-2024-early"):
    """The separate, earlier login-outage program: same policy, different months."""
    return Program.objects.create(
        slug=slug,
        name="earlier compensation",
        policy="login-outage-2024",
        parameters={
            "first_covered_month_by_plan": {"premium": months[0]},
            "cap_month": months[1],
            "restored_at": "2024-08-05T00:00:00+09:00",
        },
        application_rule="not_required",
        payout_methods=["atm_cash"],
        default_payout_method="atm_cash",
    )


@pytest.mark.django_db
def test_run_creates_claims_lines_and_grants(calendar):
    subscription, _charges = premium_member_with_charges()
    manager = UserFactory.create(username="manager-run")

    result = program_run(program=template("login-outage-2024"), actor=manager, as_of=AS_OF, calendar=calendar)

    claim = Claim.objects.get(subject=subscription.customer_id)
    assert (result.created, result.updated, result.total) == (1, 0, 1)
    assert (claim.eligible, claim.amount_jpy, claim.status, claim.prepared_by) == (
        True,
        1100,
        ClaimStatus.COMPUTED,
        manager,
    )
    assert [(line.label, line.amount_jpy, line.rule, line.grant_key) for line in claim.lines.all()] == [
        ("2024-09 premium", 550, "login-outage-month", f"sub-month:{subscription.subscription_id}:2024-09"),
        ("2024-10 premium", 550, "login-outage-month", f"sub-month:{subscription.subscription_id}:2024-10"),
    ]
    assert sorted(Grant.objects.values_list("grant_key", "amount_jpy")) == [
        (f"sub-month:{subscription.subscription_id}:2024-09", 550),
        (f"sub-month:{subscription.subscription_id}:2024-10", 550),
    ]
    events = pghistory.models.Events.objects.tracks(claim)
    assert [(e.pgh_label, e.pgh_context["user"]) for e in events] == [("insert", manager.pk)]


@pytest.mark.django_db
def test_running_twice_changes_nothing(calendar):
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    before = claims_table_counts()

    result = program_run(program=program, actor=None, as_of=jst(2025, 2, 11), calendar=calendar)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert claims_table_counts() == before


@pytest.mark.django_db
def test_changed_source_is_recalculated_with_history(calendar):
    subscription, charges = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    claim = Claim.objects.get(subject=subscription.customer_id)

    # When a charge is corrected in the source data and the program runs again
    Charge.objects.filter(pk=charges[(2024, 10)].pk).update(amount_jpy=660)
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    claim.refresh_from_db()
    assert (result.updated, claim.amount_jpy, claim.status) == (1, 1210, ClaimStatus.COMPUTED)
    history = [(e.pgh_label, e.pgh_data["amount_jpy"]) for e in pghistory.models.Events.objects.tracks(claim)]
    assert history == [("insert", 1100), ("update", 1210)]
    assert Grant.objects.get(grant_key=f"sub-month:{subscription.subscription_id}:2024-10").amount_jpy == 660


@pytest.mark.django_db
def test_approved_claim_goes_to_needs_rereview_instead_of_changing_silently(calendar):
    subscription, _charges = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    Claim.objects.filter(subject=subscription.customer_id).update(status=ClaimStatus.APPROVED, approved_amount_jpy=1100)

    # When the login data is corrected: the first login after restoration was in November
    Login.objects.filter(customer=subscription.customer).delete()
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 11, 5))
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    claim = Claim.objects.get(subject=subscription.customer_id)
    assert (result.sent_to_rereview, claim.status, claim.amount_jpy, claim.approved_amount_jpy) == (
        1,
        ClaimStatus.NEEDS_REREVIEW,
        1650,
        1100,
    )


@pytest.mark.django_db
def test_vanished_subject_is_kept_as_not_eligible(calendar):
    subscription, _charges = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    Charge.objects.filter(subscription=subscription).update(promotional=True)
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    claim = Claim.objects.get(subject=subscription.customer_id)
    assert (claim.eligible, claim.amount_jpy, claim.reason, claim.lines.count()) == (False, 0, "no_charge", 0)
    assert Grant.objects.count() == 0


@pytest.mark.django_db
def test_same_subscription_month_is_never_granted_by_two_programs(calendar):
    # Given the earlier program (configured to overlap: 2024-06..2024-09) already ran
    subscription, _charges = premium_member_with_charges(months=((2024, 8), (2024, 9), (2024, 10)))
    early = earlier_program(("2024-06", "2024-09"))
    program_run(program=early, actor=None, as_of=AS_OF, calendar=calendar)
    assert Grant.objects.filter(program=early).count() == 2  # 2024-08, 2024-09

    # When the 2024 program runs (September overlaps)
    later = template("login-outage-2024")
    program_run(program=later, actor=None, as_of=AS_OF, calendar=calendar)

    # Then September is excluded and named; October is paid
    claim = Claim.objects.get(program=later, subject=subscription.customer_id)
    assert claim.amount_jpy == 550
    assert [(line.label, line.amount_jpy, line.excluded_reason) for line in claim.lines.all()] == [
        ("2024-09 premium", 0, "already_compensated:login-outage-2024-early"),
        ("2024-10 premium", 550, ""),
    ]
    assert Grant.objects.get(grant_key=f"sub-month:{subscription.subscription_id}:2024-09").program == early


@pytest.mark.django_db
def test_preview_reports_which_program_covers_a_key(calendar):
    subscription, _charges = premium_member_with_charges(months=((2024, 9),))
    early = earlier_program(("2024-06", "2024-09"))
    program_run(program=early, actor=None, as_of=AS_OF, calendar=calendar)

    row = rows(template("login-outage-2024"), calendar)[subscription.customer_id]

    assert (row["eligible"], row["amount_jpy"], row["reason"]) == (
        "false",
        "0",
        "already_compensated:login-outage-2024-early",
    )


@pytest.mark.django_db(transaction=True)
def test_two_programs_racing_grant_each_subscription_month_once(calendar):
    # Given 20 members and two overlapping programs that both cover 2024-09..2024-10 (own programs: a
    # transactional test may run after another one flushed the migration's templates)
    programs = [earlier_program(("2024-09", "2024-10"), slug=f"race-{side}") for side in "ab"]
    for _ in range(20):
        premium_member_with_charges(months=((2024, 9), (2024, 10)), login=None, apply=False)
    barrier = threading.Barrier(2)
    errors = []

    def run(program):
        try:
            barrier.wait()
            program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # When both run at the same time on two connections
    threads = [threading.Thread(target=run, args=(p,)) for p in programs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then every subscription-month is granted exactly once and paid by exactly one claim line
    assert errors == []
    assert Grant.objects.count() == 40
    paid_lines = ClaimLine.objects.filter(excluded_reason="", claim__eligible=True).exclude(grant_key="")
    assert paid_lines.count() == 40
    assert sorted(paid_lines.values_list("grant_key", flat=True)) == sorted(
        Grant.objects.values_list("grant_key", flat=True)
    )
    assert sum(Claim.objects.values_list("amount_jpy", flat=True)) == 40 * 550


@pytest.mark.django_db(transaction=True)
def test_keys_another_run_commits_after_our_exclusion_step_are_still_theirs(calendar, monkeypatch):
    # Given two overlapping programs and 20 members, and run B pausing right after its exclusion step
    # while run A, on another connection, writes and commits all 40 subscription-months
    first, second = (earlier_program(("2024-09", "2024-10"), slug=f"late-{side}") for side in "ab")
    for _ in range(20):
        premium_member_with_charges(months=((2024, 9), (2024, 10)), login=None, apply=False)
    real_exclude = staging.exclude_held_elsewhere
    paused: list[int] = []

    def exclude_then_the_other_run_commits(program):
        real_exclude(program)
        if program.pk == second.pk and not paused:
            paused.append(program.pk)

            on_another_connection(lambda: program_run(program=first, actor=None, as_of=AS_OF, calendar=calendar))

    monkeypatch.setattr(staging, "exclude_held_elsewhere", exclude_then_the_other_run_commits)

    # When B goes on (its insert finds every key it wants already committed by A: nothing "new" to insert)
    result = program_run(program=second, actor=None, as_of=AS_OF, calendar=calendar)

    # Then the keys are A's, and B's claims pay nothing: each subscription-month is paid once
    assert paused == [second.pk]
    assert set(Grant.objects.values_list("program__slug", flat=True)) == {"late-a"}
    assert Grant.objects.count() == 40
    paid = ClaimLine.objects.filter(excluded_reason="", claim__eligible=True).exclude(grant_key="")
    assert set(paid.values_list("claim__program__slug", flat=True)) == {"late-a"}
    assert paid.count() == 40
    assert set(Claim.objects.filter(program=second).values_list("eligible", "amount_jpy")) == {(False, 0)}
    assert result.total == 20


@pytest.mark.django_db
def test_database_decides_when_the_preview_missed_the_other_programs_grant(calendar, monkeypatch):
    # Given the earlier program granted September, but our engine's read of grants is stale (a race)
    premium_member_with_charges(months=((2024, 9), (2024, 10)))
    early = earlier_program(("2024-06", "2024-09"))
    program_run(program=early, actor=None, as_of=AS_OF, calendar=calendar)
    monkeypatch.setattr("claims.engine.grants_held_elsewhere", lambda program, keys: {})

    # When the 2024 program runs
    program_run(program=template("login-outage-2024"), actor=None, as_of=AS_OF, calendar=calendar)

    # Then the UNIQUE grant key refused September in the same transaction: only October is paid
    claim = Claim.objects.get(program__slug="login-outage-2024")
    assert claim.amount_jpy == 550
    assert [line.excluded_reason for line in claim.lines.all()] == ["already_compensated:login-outage-2024-early", ""]
    assert Grant.objects.filter(program__slug="login-outage-2024").count() == 1


@pytest.mark.django_db
def test_refund_grant_blocks_a_second_refund_of_the_same_charge(calendar):
    the_charge = ChargeFactory.create(amount_jpy=3000, charged_at=jst(2024, 9, 1, 3))
    for slug in ("cooling-off-7day", "autorenew-60day"):
        SubmissionFactory.create(
            program=template(slug), subject=the_charge.charge_id, submitted_at=jst(2024, 9, 3), reason="price"
        )

    program_run(program=template("cooling-off-7day"), actor=None, as_of=AS_OF, calendar=calendar)
    program_run(program=template("autorenew-60day"), actor=None, as_of=AS_OF, calendar=calendar)

    second = Claim.objects.get(program__slug="autorenew-60day")
    assert (second.eligible, second.amount_jpy, second.reason) == (False, 0, "already_compensated:cooling-off-7day")


@pytest.mark.django_db
def test_dry_run_command_writes_the_csv_and_nothing_to_the_database(tmp_path, calendar):
    subscription, _charges = premium_member_with_charges()
    program_run(program=template("overpayment"), actor=None, as_of=AS_OF, calendar=calendar)
    before = claims_table_counts()
    out = tmp_path / "preview.csv"

    call_command("program_dry_run", "login-outage-2024", "--out", str(out))

    assert claims_table_counts() == before
    with out.open(encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == [
            {
                "subject": subscription.customer_id,
                "eligible": "true",
                "amount_jpy": "1100",
                "payee": subscription.customer_id,
                "lines": "2024-09 premium=550;2024-10 premium=550",
                "reason": "",
            }
        ]
    assert out.read_text(encoding="utf-8").splitlines()[0] == "subject,eligible,amount_jpy,payee,lines,reason"


@pytest.mark.django_db
def test_closed_program_does_not_run(calendar):
    program = template("overpayment")
    Program.objects.filter(pk=program.pk).update(status=Program.Status.CLOSED)

    with pytest.raises(ProgramNotRunnable):
        program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)


@pytest.mark.django_db
def test_task_runs_a_recorded_run_and_records_progress():
    premium_member_with_charges()
    run = ProgramRun.objects.create(program=template("login-outage-2024"))

    program_run_task(run.pk)

    run.refresh_from_db()
    assert (run.status, run.total, run.processed, run.created, run.inputs_unchanged) == (
        ProgramRun.Status.SUCCEEDED,
        1,
        1,
        1,
        False,
    )
    assert run.started_at is not None and run.finished_at is not None


@pytest.mark.django_db
def test_task_records_a_run_that_found_no_input_changed():
    # Given a program run once
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run_task(ProgramRun.objects.create(program=program).pk)

    # When it runs again with nothing changed
    run = ProgramRun.objects.create(program=program)
    program_run_task(run.pk)

    # Then the run says so: every claim unchanged, nothing recomputed
    run.refresh_from_db()
    assert (run.status, run.total, run.processed, run.created, run.updated, run.inputs_unchanged) == (
        ProgramRun.Status.SUCCEEDED,
        1,
        1,
        0,
        0,
        True,
    )


@pytest.mark.django_db
def test_task_returns_quietly_when_the_run_is_gone():
    assert program_run_task(987654) is None


@pytest.mark.django_db
def test_failed_run_is_recorded():
    program = template("login-outage-2024")
    Program.objects.filter(pk=program.pk).update(parameters={"cap_month": "December"})
    run = ProgramRun.objects.create(program=program)

    with pytest.raises(ValueError, match="cap_month"):
        program_run_execute(run=run)

    run.refresh_from_db()
    assert run.status == ProgramRun.Status.FAILED
    assert "cap_month" in run.error


@pytest.mark.django_db
def test_submit_for_review_sends_only_eligible_computed_claims(calendar):
    # Given a run with one eligible claim, one ineligible (did not apply) and one already approved
    eligible, _ = premium_member_with_charges()
    ineligible, _ = premium_member_with_charges(apply=False)
    approved, _ = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    Claim.objects.filter(subject=approved.customer_id).update(status=ClaimStatus.APPROVED)
    manager = UserFactory.create()

    # When the manager sends the program's computed claims to review
    count = program_claims_submit_for_review(program=program, actor=manager)

    # Then only the eligible computed claim moved; the others kept their status
    assert count == 1
    assert dict(Claim.objects.values_list("subject", "status")) == {
        eligible.customer_id: ClaimStatus.PENDING_REVIEW,
        ineligible.customer_id: ClaimStatus.COMPUTED,
        approved.customer_id: ClaimStatus.APPROVED,
    }
    # And the change is in the claim's history with the actor
    claim = Claim.objects.get(subject=eligible.customer_id)
    events = pghistory.models.Events.objects.tracks(claim)
    assert [(e.pgh_label, e.pgh_data["status"], e.pgh_context["user"]) for e in events] == [
        ("insert", ClaimStatus.COMPUTED, None),
        ("update", ClaimStatus.PENDING_REVIEW, manager.pk),
    ]


@pytest.mark.django_db
def test_streamed_dry_run_writes_exactly_what_the_python_preview_writes_and_changes_nothing(calendar):
    # Given applicants, a non-applicant, a late applicant, a member partly and one wholly covered by an
    # earlier program, and a submission naming nobody
    premium_member_with_charges()
    premium_member_with_charges(apply=False)
    late, _ = premium_member_with_charges(apply=False)
    SubmissionFactory.create(subject=late.customer_id, submitted_at=jst(2026, 1, 10))
    partly, _ = premium_member_with_charges()
    wholly, _ = premium_member_with_charges(months=((2024, 9),))
    early = earlier_program(("2024-06", "2024-09"))
    program_run(program=early, actor=None, as_of=AS_OF, calendar=calendar)
    SubmissionFactory.create(subject="C-NOBODY", submitted_at=jst(2025, 1, 10))
    program = template("login-outage-2024")
    expected = io.StringIO()
    dry_run_write_csv(program_preview(program=program, as_of=AS_OF, calendar=calendar), expected)
    before = claims_table_counts()
    # When the dry run is streamed from the stage tables
    streamed = io.StringIO()
    totals = program_dry_run_write(program=program, out=streamed, as_of=AS_OF, calendar=calendar)
    # Then the CSV is byte for byte the Python preview's, the totals match it, and nothing was written
    assert streamed.getvalue() == expected.getvalue()
    body = list(csv.DictReader(io.StringIO(streamed.getvalue())))
    assert sorted({row["reason"] for row in body}) == [
        "already_compensated:login-outage-2024-early",
        "late_application",
        "no_application",
        "unknown_subject",
    ]
    assert len(body) == totals.subjects == 6
    by_subject = {row["subject"]: row for row in body}
    assert (by_subject[partly.customer_id]["eligible"], by_subject[partly.customer_id]["lines"]) == (
        "true",
        "2024-10 premium=550",
    )
    assert (by_subject[wholly.customer_id]["eligible"], by_subject[wholly.customer_id]["amount_jpy"]) == ("false", "0")
    assert totals.eligible == sum(1 for row in body if row["eligible"] == "true")
    assert totals.amount_jpy == sum(int(row["amount_jpy"]) for row in body)
    assert claims_table_counts() == before
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('pg_temp.claims_stage_entitlement')")
        assert cursor.fetchone() == (None,)


@pytest.mark.django_db
def test_dry_run_csv_writes_a_formula_looking_subject_as_text_in_both_paths(calendar):
    # Given a member, and a submission whose free-text subject a spreadsheet would run as a formula
    premium_member_with_charges()
    SubmissionFactory.create(subject='=HYPERLINK("https://evil.example")', submitted_at=jst(2025, 1, 10))
    program = template("login-outage-2024")
    # When the dry run is written from SQL and from the Python preview
    streamed = io.StringIO()
    program_dry_run_write(program=program, out=streamed, as_of=AS_OF, calendar=calendar)
    expected = io.StringIO()
    dry_run_write_csv(program_preview(program=program, as_of=AS_OF, calendar=calendar), expected)
    # Then both write the subject as text, byte for byte alike
    subjects = [row["subject"] for row in csv.DictReader(io.StringIO(streamed.getvalue()))]
    assert '\'=HYPERLINK("https://evil.example")' in subjects
    assert not any(subject.startswith("=") for subject in subjects)
    assert streamed.getvalue() == expected.getvalue()


@pytest.mark.django_db
def test_a_refund_run_streamed_in_small_fetches_and_copies_stores_what_the_python_preview_computes(
    calendar, monkeypatch
):
    # Given seven cooling-off requests (on time, late, some used, two charges already refunded by
    # another program) and fetches of 3 rows and COPYs of 2 entitlements, so every boundary is crossed
    from claims.engine import common, compute_entitlements  # noqa: PLC0415

    monkeypatch.setattr(common, "STREAM_FETCH_ROWS", 3)
    monkeypatch.setattr(staging, "COPY_CHUNK", 2)
    cooling_off, autorenew = template("cooling-off-7day"), template("autorenew-60day")
    charges = [ChargeFactory.create(amount_jpy=1000 + n, charged_at=jst(2024, 9, 1 + n, 3)) for n in range(7)]
    for n, charge in enumerate(charges):
        submitted = jst(2024, 9, 3 + n + (9 if n == 4 else 0))  # the fifth one is outside the 7 days
        SubmissionFactory.create(program=cooling_off, subject=charge.charge_id, submitted_at=submitted)
    for charge in charges[5:]:
        SubmissionFactory.create(
            program=autorenew, subject=charge.charge_id, submitted_at=jst(2024, 9, 20), reason="price"
        )
    program_run(program=autorenew, actor=None, as_of=AS_OF, calendar=calendar)
    expected = {
        e.subject: (e.eligible, e.amount_jpy, e.reason, [(line.amount_jpy, line.excluded_reason) for line in e.lines])
        for e in compute_entitlements(program=cooling_off, as_of=AS_OF, calendar=calendar)
    }

    # When the program runs
    result = program_run(program=cooling_off, actor=None, as_of=AS_OF, calendar=calendar)

    # Then every request is stored once, exactly as the (unstreamed) Python preview computed it
    stored = {
        claim.subject: (
            claim.eligible,
            claim.amount_jpy,
            claim.reason,
            [(line.amount_jpy, line.excluded_reason) for line in claim.lines.order_by("position")],
        )
        for claim in Claim.objects.filter(program=cooling_off)
    }
    assert (result.total, result.created) == (7, 7)
    assert stored == expected
    assert sorted(subject for subject, value in stored.items() if value[0]) == sorted(
        charge.charge_id for n, charge in enumerate(charges) if n not in (4, 5, 6)
    )
    assert [stored[charge.charge_id][2] for charge in charges[4:]] == [
        "outside_window",
        "already_compensated:autorenew-60day",
        "already_compensated:autorenew-60day",
    ]
