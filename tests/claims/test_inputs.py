"""claims.inputs: a run over unchanged inputs skips computing; any write to an input makes it compute."""

import datetime as dt
import re

import pytest
from django.apps import apps
from django.db import connection

from claims import inputs, remedies, services
from claims.engine import common, coupon_outage, login_outage, refunds, staging
from claims.models import (
    Claim,
    ClaimStatus,
    Grant,
    InputChange,
    InputChangeKey,
    Program,
    ProgramComputation,
    SubjectRecheck,
)
from claims.services import program_run
from support_portal.core.business_days import BusinessCalendar
from support_portal.customers.models import Charge, Login, Subscription
from tests.claims.factories import LoginFactory, SubmissionFactory, jst, template
from tests.claims.helpers import on_another_connection
from tests.claims.test_program_run import AS_OF, claims_table_counts, earlier_program, premium_member_with_charges
from tests.factories import ChargeFactory, CustomerFactory, PlanFactory, SubscriptionFactory


def another_transaction_commits():
    """Commits a transaction newer than the test's own, on another connection.

    The test's transaction then lies below the next snapshot's xmax without being listed in it:
    PostgreSQL leaves a transaction's own id out of its snapshots (what made the check skip wrongly).
    """

    def commit_one():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_xact_id()")

    on_another_connection(commit_one)


def computed(result):
    """Whether the run computed (its steps include the engine's stage) rather than skipped."""
    assert result.computed == ("stage" in result.timings)
    return result.computed


@pytest.mark.django_db
def test_rerun_over_unchanged_inputs_skips_computing_and_writes_nothing(calendar):
    # Given a computed program
    premium_member_with_charges()
    program = template("login-outage-2024")
    first = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    before = claims_table_counts()

    # When it runs again with no input changed
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # Then it reports every claim unchanged without computing, and writes no row anywhere
    assert computed(first)
    assert not computed(result)
    assert (result.total, result.created, result.updated, result.sent_to_rereview, result.unchanged) == (1, 0, 0, 0, 1)
    assert claims_table_counts() == before


@pytest.mark.django_db
def test_recompute_computes_over_unchanged_inputs_and_still_changes_no_claim(calendar):
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    claims_before = list(Claim.objects.values_list("id", "amount_jpy", "status", "lines_hash"))

    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar, recompute=True)

    assert computed(result)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    assert list(Claim.objects.values_list("id", "amount_jpy", "status", "lines_hash")) == claims_before


def change_charge_amount(subscription, charges):
    Charge.objects.filter(pk=charges[(2024, 10)].pk).update(amount_jpy=660)
    return 1210


def add_earlier_login(subscription, charges):
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 9, 15))
    return 550


def delete_logins(subscription, charges):
    Login.objects.filter(customer=subscription.customer).delete()
    return 1650


def new_charge(subscription, charges):
    ChargeFactory.create(
        subscription=subscription,
        amount_jpy=100,
        charged_at=jst(2024, 10, 15, 3),
        period_start=dt.date(2024, 10, 15),
        period_end=dt.date(2024, 11, 15),
    )
    return 1200


def move_subscription_to_another_plan(subscription, charges):
    # zen_study is covered from 2024-10 only
    Subscription.objects.filter(pk=subscription.pk).update(plan=PlanFactory.create(plan_code="zen_study"))
    return 550


def late_submission(subscription, charges):
    SubmissionFactory.create(subject=subscription.customer_id, submitted_at=jst(2025, 2, 5))
    return 1100


def restore_service_later(subscription, charges):
    # The October 20 login is now before the restoration: no first login after it, months up to the cap
    program = Program.objects.get(slug="login-outage-2024")
    program.parameters = {**program.parameters, "restored_at": "2024-10-25T00:00:00+09:00"}
    program.save(update_fields=["parameters"])
    return 1650


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        change_charge_amount,
        add_earlier_login,
        delete_logins,
        new_charge,
        move_subscription_to_another_plan,
        late_submission,
        restore_service_later,
    ],
)
def test_a_write_to_any_input_makes_the_next_run_compute(calendar, change):
    # Given a computed program (¥1,100: September and October)
    subscription, charges = premium_member_with_charges()
    another_transaction_commits()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # When an input changes (in this same transaction, after the run: the run's own changes do not count,
    # later ones of the same transaction do) and the program runs again
    expected_amount = change(subscription, charges)
    result = program_run(program=Program.objects.get(pk=program.pk), actor=None, as_of=AS_OF, calendar=calendar)

    # Then it computed, and the claim shows the new amount
    assert computed(result)
    assert (result.updated, Claim.objects.get().amount_jpy) == (
        int(expected_amount != 1100),
        expected_amount,
    )


@pytest.mark.django_db
def test_a_claim_decided_since_the_run_makes_the_next_run_compute_and_keep_the_decision(calendar):
    subscription, _charges = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    Claim.objects.filter(subject=subscription.customer_id).update(status=ClaimStatus.APPROVED, approved_amount_jpy=1100)

    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    assert computed(result)
    assert (result.updated, Claim.objects.get().status) == (0, ClaimStatus.APPROVED)


@pytest.mark.django_db
def test_another_programs_grant_makes_the_next_run_compute_and_exclude_that_month(calendar):
    # Given the 2024 program computed, paying September and October
    premium_member_with_charges()
    another_transaction_commits()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # When another program's grant of September is written (directly: its claim was decided elsewhere)
    other = earlier_program(("2024-06", "2024-09"))
    september = Grant.objects.get(grant_key__endswith=":2024-09")
    Grant.objects.filter(pk=september.pk).update(program=other)
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # Then the run computed and no longer pays September
    assert computed(result)
    claim = Claim.objects.get(program=program)
    assert (claim.amount_jpy, [line.excluded_reason for line in claim.lines.all()]) == (
        550,
        [f"already_compensated:{other.slug}", ""],
    )


def close_other_program(program, other):
    Program.objects.filter(pk=other.pk).update(status=Program.Status.CLOSED)


def create_another_program(program, other):
    earlier_program(("2024-06", "2024-07"), slug="login-outage-2024-later")


def change_own_parameters(program, other):
    Program.objects.filter(pk=program.pk).update(parameters={**program.parameters, "cap_month": "2024-11"})


def rename_other_program(program, other):
    Program.objects.filter(pk=other.pk).update(slug="login-outage-2024-renamed")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("program_change", "scope"),
    [
        # another program's row is read only for its slug: opening, closing or adding one changes nothing
        (close_other_program, 1),
        (create_another_program, 1),
        # the program's own row (parameters, deadline, rules) and another's slug: everything
        (change_own_parameters, None),
        (rename_other_program, None),
    ],
)
def test_a_programs_row_makes_only_its_own_next_run_compute_in_full_unless_a_slug_changed(
    calendar, program_change, scope
):
    # Given two members computed by the 2024 program, and an earlier program that holds no grant
    first_member, _ = premium_member_with_charges()
    premium_member_with_charges()
    another_transaction_commits()
    program = template("login-outage-2024")
    other = earlier_program(("2024-06", "2024-07"))
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # When a program's row is written and the first member logs in earlier
    program_change(program, other)
    add_earlier_login(first_member, None)
    result = program_run(program=Program.objects.get(pk=program.pk), actor=None, as_of=AS_OF, calendar=calendar)

    # Then the run computed the first member alone, or every subject (scope None), as the write requires
    assert computed(result)
    assert (result.scope, result.total) == (scope, 2)
    assert Claim.objects.get(program=program, subject=first_member.customer_id).amount_jpy == 550


@pytest.mark.django_db
def test_a_new_engine_revision_makes_the_next_run_compute(calendar, monkeypatch):
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    monkeypatch.setattr(inputs, "engine_revision", lambda: "0" * 64)
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    assert computed(result)
    assert ProgramComputation.objects.get(program=program).engine_revision == "0" * 64


@pytest.mark.django_db
def test_a_database_of_another_cluster_makes_the_next_run_compute(calendar):
    # Given a computed program whose record says another cluster issued its snapshot (a restored dump)
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    recorded = ProgramComputation.objects.get(program=program).cluster
    ProgramComputation.objects.filter(program=program).update(cluster="another")

    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    assert recorded != "another"
    assert computed(result)
    assert ProgramComputation.objects.get(program=program).cluster == recorded


@pytest.mark.django_db
def test_transaction_ids_that_went_back_make_the_next_run_compute(calendar):
    # Given a computed program whose recorded transaction id is ahead of this database's (another
    # history), and no change row at all (so only the transaction ids can tell)
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    ProgramComputation.objects.filter(program=program).update(transaction_id=2**62)
    InputChange.objects.all().delete()

    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    assert computed(result)
    assert ProgramComputation.objects.get(program=program).transaction_id < 2**62


@pytest.mark.django_db
def test_a_refund_policy_rerun_over_unchanged_inputs_skips_computing(calendar):
    # Given an autorenew program computed over one request
    the_charge = ChargeFactory.create(amount_jpy=3000, charged_at=jst(2024, 9, 1, 3))
    program = template("autorenew-60day")
    SubmissionFactory.create(program=program, subject=the_charge.charge_id, submitted_at=jst(2024, 9, 20))
    first = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    before = claims_table_counts()

    # When it runs again, nothing changed, on a later day
    result = program_run(program=program, actor=None, as_of=AS_OF + dt.timedelta(days=30), calendar=calendar)

    # Then nothing is computed or written (its due date counts from the request, not from the run)
    assert computed(first)
    assert not computed(result)
    assert claims_table_counts() == before


def overpaid_charge_pair():
    subscription = SubscriptionFactory.create()
    for charged_at in (jst(2024, 9, 1, 3), jst(2024, 9, 1, 4)):
        ChargeFactory.create(
            subscription=subscription,
            amount_jpy=1000,
            charged_at=charged_at,
            period_start=dt.date(2024, 9, 1),
            period_end=dt.date(2024, 10, 1),
        )
    return subscription


@pytest.mark.django_db
def test_an_answer_that_moves_with_the_day_is_recomputed_on_the_day_it_moves_only(calendar):
    # Given an overpayment found without a request: its provider due date counts from the run's own day
    # (2025-02-11 is a holiday: a run on Friday 02-07, Saturday or Sunday gives Thursday 02-13; Monday
    # 02-10 and Tuesday give Friday 02-14)
    overpaid_charge_pair()
    program = template("overpayment")
    friday = jst(2025, 2, 7, 9)
    program_run(program=program, actor=None, as_of=friday, calendar=calendar)
    claim = Claim.objects.get(program=program)
    recheck = SubjectRecheck.objects.get(program=program)

    # When the program runs again on Saturday, then on Monday
    saturday = program_run(program=program, actor=None, as_of=friday + dt.timedelta(days=1), calendar=calendar)
    monday = program_run(program=program, actor=None, as_of=friday + dt.timedelta(days=3), calendar=calendar)

    # Then Saturday skips; Monday (the recorded date) recomputes that subject only and moves its due date
    assert (claim.provider_request_due_on, recheck.subject, recheck.recheck_on) == (
        dt.date(2025, 2, 13),
        claim.subject,
        dt.date(2025, 2, 10),
    )
    assert not computed(saturday)
    assert (monday.scope, monday.updated) == (1, 1)
    assert Claim.objects.get(pk=claim.pk).provider_request_due_on == dt.date(2025, 2, 14)
    assert SubjectRecheck.objects.get(program=program).recheck_on == dt.date(2025, 2, 12)


@pytest.mark.django_db
def test_a_run_dated_before_the_last_one_computes_in_full(calendar):
    overpaid_charge_pair()
    program = template("overpayment")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    result = program_run(program=program, actor=None, as_of=AS_OF - dt.timedelta(days=3), calendar=calendar)

    assert computed(result)
    assert result.scope is None


@pytest.mark.django_db
def test_another_business_calendar_makes_a_refund_policy_compute_in_full(calendar):
    overpaid_charge_pair()
    program = template("overpayment")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    closed_wednesday = BusinessCalendar(first_year=2020, last_year=2030, company_closed_days=[dt.date(2025, 2, 12)])

    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=closed_wednesday)

    assert computed(result)
    assert result.scope is None


@pytest.mark.django_db
def test_an_incremental_run_computes_only_the_changed_subjects_and_writes_only_theirs(calendar):
    # Given two members computed
    first_member, _ = premium_member_with_charges()
    second_member, _ = premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    untouched = Claim.objects.get(subject=second_member.customer_id)
    ClaimEvent = apps.get_model("claims", "ClaimEvent")
    events_before = ClaimEvent.objects.count()

    # When the first member logs in earlier and the program runs
    add_earlier_login(first_member, None)
    result = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # Then only that member was computed and changed; the other's claim has no new history row
    assert (result.scope, result.total, result.updated, result.unchanged) == (1, 2, 1, 1)
    assert Claim.objects.get(subject=first_member.customer_id).amount_jpy == 550
    assert Claim.objects.get(pk=untouched.pk).computed_at == untouched.computed_at
    assert list(ClaimEvent.objects.order_by("pk").values_list("pgh_obj_id", flat=True)[events_before:]) == [
        Claim.objects.get(subject=first_member.customer_id).pk
    ]


@pytest.mark.django_db
def test_each_writer_leaves_the_subject_keys_it_touched():
    # Given a customer with a subscription
    subscription = SubscriptionFactory.create()
    before = InputChange.objects.order_by("-id").values_list("id", flat=True).first() or 0

    # When raw SQL adds a charge, and an update touches no row
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_charge (charge_id, subscription_id, amount_jpy, charged_at, period_start,"
            " period_end, payment_method, promotional) VALUES ('CH-RAW', %s, 100, now(), '2024-09-01',"
            " '2024-10-01', '', false)",
            [subscription.pk],
        )
        cursor.execute("UPDATE customers_login SET logged_in_at = logged_in_at WHERE false")

    # Then the charge's statement names its subscription (the run maps it to the customer); the empty one
    # names nobody
    changes = list(InputChange.objects.filter(id__gt=before).order_by("id"))
    assert [change.table_name for change in changes] == ["customers_charge", "customers_login"]
    assert list(InputChangeKey.objects.filter(change_id=changes[0].pk).values_list("kind", "key")) == [
        ("b", subscription.pk)
    ]
    assert not InputChangeKey.objects.filter(change_id=changes[1].pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_while_the_run_computed_makes_the_next_run_compute(calendar, monkeypatch):
    # Given a program (own: a transactional test may run after another one flushed the templates) and
    # a member, and a run that pauses after its stage while another connection commits a new charge
    program = earlier_program(("2024-09", "2024-11"), slug="during-run")
    subscription, _charges = premium_member_with_charges(months=((2024, 9), (2024, 10)), login=None, apply=False)
    real_stage = staging.stage
    committed: list[str] = []

    def stage_then_another_connection_commits(**kwargs):
        real_stage(**kwargs)
        if not committed:

            def add_november_charge():
                charge = ChargeFactory.create(
                    subscription=subscription,
                    amount_jpy=550,
                    charged_at=jst(2024, 11, 1, 3),
                    period_start=dt.date(2024, 11, 1),
                    period_end=dt.date(2024, 12, 1),
                )
                committed.append(charge.pk)

            on_another_connection(add_november_charge)

    monkeypatch.setattr(staging, "stage", stage_then_another_connection_commits)
    first = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    assert (len(committed), Claim.objects.get(program=program).amount_jpy) == (1, 1100)

    # When the program runs again with no further change
    second = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)

    # Then it computed (the charge was committed after the first run's snapshot) and pays November too
    assert computed(first) and computed(second)
    assert (second.updated, Claim.objects.get(program=program).amount_jpy) == (1, 1650)
    third = program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    assert not computed(third)


# The tables of the change capture itself, and the run's working tables: not inputs.
NOT_INPUTS = {"claims_inputchange", "claims_inputchangekey", "claims_programcomputation", "claims_subjectrecheck"}


@pytest.mark.django_db
def test_every_table_the_run_reads_is_watched_by_a_trigger():
    # Given every SQL statement of the engines, the stage and exclusion, the run and the duplicate detection
    statements = "\n".join(
        value
        for module in (login_outage, refunds, coupon_outage, common, staging, services, inputs, remedies)
        for name, value in vars(module).items()
        if name.endswith("_SQL") and isinstance(value, str)
    )
    named = set(re.findall(r"\b((?:customers|claims)_[a-z_]+)\b", statements))
    read = {table for table in named if not table.startswith("claims_stage_")} - NOT_INPUTS

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname LIKE 'claims_input_change%%' ORDER BY 2, 1"
        )
        watched: dict[str, list[str]] = {}
        for trigger, table in cursor.fetchall():
            watched.setdefault(table, []).append(trigger)

    assert {"customers_charge", "customers_login", "customers_coupontransaction", "claims_mergeoffer"} <= read
    assert read <= set(inputs.INPUT_TABLES)
    assert sorted(watched) == sorted(inputs.INPUT_TABLES)
    assert set(map(tuple, watched.values())) == {
        ("claims_input_change_del", "claims_input_change_ins", "claims_input_change_trunc", "claims_input_change_upd")
    }


@pytest.mark.django_db
def test_one_change_row_per_statement_whatever_the_row_count():
    # Given three customers
    CustomerFactory.create_batch(3)
    before = InputChange.objects.count()

    # When one statement updates all three and another updates none
    with connection.cursor() as cursor:
        cursor.execute("UPDATE customers_customer SET name = name || '.'")
        cursor.execute("UPDATE customers_login SET logged_in_at = logged_in_at WHERE false")

    # Then each statement left exactly one row, naming its table
    assert list(InputChange.objects.order_by("id").values_list("table_name", flat=True)[before:]) == [
        "customers_customer",
        "customers_login",
    ]


@pytest.mark.django_db
def test_prune_keeps_what_a_recorded_computation_may_need(calendar):
    # Given a computed program, and change rows: one a year old from a long-finished transaction, one
    # a year old but from a transaction the computation's snapshot did not see
    premium_member_with_charges()
    program = template("login-outage-2024")
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    computation = ProgramComputation.objects.get(program=program)
    InputChange.objects.all().delete()
    long_ago = jst(2026, 1, 1)
    old = InputChange.objects.create(table_name="customers_charge", transaction_id=3, changed_at=long_ago)
    pinned = InputChange.objects.create(
        table_name="customers_charge", transaction_id=computation.transaction_id + 10, changed_at=long_ago
    )

    # When a full run records its computation (and prunes)
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar, recompute=True)

    # Then only the row no snapshot can need is gone
    remaining = set(InputChange.objects.values_list("id", flat=True))
    assert old.pk not in remaining
    assert pinned.pk in remaining


@pytest.mark.django_db
def test_closing_a_program_drops_its_computation_at_the_next_prune(calendar):
    premium_member_with_charges()
    closed = earlier_program(("2024-06", "2024-08"), slug="closed-early")
    program_run(program=closed, actor=None, as_of=AS_OF, calendar=calendar)
    Program.objects.filter(pk=closed.pk).update(status=Program.Status.CLOSED)

    program_run(program=template("login-outage-2024"), actor=None, as_of=AS_OF, calendar=calendar)

    assert list(ProgramComputation.objects.values_list("program__slug", flat=True)) == ["login-outage-2024"]
