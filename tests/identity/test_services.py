"""Identity recovery services: verification against the data, lock after two failures, unlock, reset."""

import datetime as dt

import pytest
from django.db import connection
from django.utils import translation
from django_celery_beat.models import PeriodicTask

from support_portal.customers.models import Customer, PaymentMethod
from support_portal.identity.models import (
    CheckResult,
    IdentityRecoveryCase,
    IdentityRecoveryEvent,
    IdentityVerificationAttempt,
    PasswordResetSimulation,
    RecoveryStatus,
)
from support_portal.identity.services import (
    Check,
    Evidence,
    IdentityRecoveryRefused,
    RefusalCode,
    evidence_digest,
    identity_case_cancel,
    identity_case_open,
    identity_case_unlock,
    identity_case_verify,
    identity_reset_send,
)
from support_portal.identity.tasks import identity_reset_send_task, identity_reset_sweep_enqueue
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GOOD = Evidence(
    charge_amount_jpy=1100, charge_date=dt.date(2024, 10, 1), payment_method=PaymentMethod.CARD, phone="09012345678"
)
WRONG = Evidence(
    charge_amount_jpy=550, charge_date=dt.date(2024, 10, 1), payment_method=PaymentMethod.CARD, phone="090 1234 5678"
)


def kinds(case: IdentityRecoveryCase) -> list[str]:
    return list(IdentityRecoveryEvent.objects.filter(case=case).order_by("at", "id").values_list("kind", flat=True))


def results(outcome) -> dict[str, str]:
    return {o.check.value: o.result.value for o in outcome.checks}


def test_opening_a_case_records_who_opened_it(customer, agent):
    # when
    case = identity_case_open(customer=customer, actor=agent)
    # then
    assert (case.status, case.agent, case.attempts, case.failed_attempts) == (RecoveryStatus.OPEN, agent, 0, 0)
    assert list(IdentityRecoveryEvent.objects.values_list("kind", "actor", "status_after")) == [
        ("opened", agent.pk, "open")
    ]


def test_a_second_open_case_for_the_same_customer_is_refused(customer, agent):
    # given
    identity_case_open(customer=customer, actor=agent)
    # when / then
    with pytest.raises(IdentityRecoveryRefused) as refused:
        identity_case_open(customer=customer, actor=agent)
    assert refused.value.code == RefusalCode.CASE_ALREADY_OPEN
    assert IdentityRecoveryCase.objects.count() == 1


def test_matching_evidence_sets_the_contact_and_enqueues_one_reset(customer, agent, django_capture_on_commit_callbacks):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    # then: every check passed, the customer's email changed, one reset task waits for the commit
    assert outcome.passed
    assert results(outcome) == {
        "charge_amount": "pass",
        "charge_date": "pass",
        "payment_method": "pass",
        "phone": "pass",
    }
    case.refresh_from_db()
    assert (case.status, case.new_email, case.reset_idempotency_key) == (
        RecoveryStatus.COMPLETED,
        "new@example.jp",
        f"identity-reset:{case.pk}",
    )
    assert Customer.objects.get(pk=customer.pk).email == "new@example.jp"
    assert kinds(case) == ["opened", "verification_passed", "contact_changed", "reset_requested"]
    assert [(cb.func, cb.args) for cb in callbacks] == [(identity_reset_send_task.delay, (case.pk,))]
    assert PasswordResetSimulation.objects.count() == 0  # only after the commit, by the task


def test_typed_evidence_is_stored_only_as_keyed_hashes(customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    # when
    identity_case_verify(case_id=case.pk, actor=agent, evidence=WRONG, new_email="new@example.jp")
    # then: no typed value appears in the attempt row
    attempt = IdentityVerificationAttempt.objects.get(case=case)
    stored = str(attempt.checks)
    for clear in ("550", "2024-10-01", "09012345678", "1234"):
        assert clear not in stored.replace(evidence_digest(case_id=case.pk, check="x", value=""), "")
    by_check = {item["check"]: item for item in attempt.checks}
    assert by_check["phone"]["digest"] == evidence_digest(case_id=case.pk, check="phone", value="09012345678")
    assert by_check["charge_amount"] == {
        "check": "charge_amount",
        "result": "fail",
        "provided": True,
        "digest": evidence_digest(case_id=case.pk, check="charge_amount", value="550"),
    }


def test_the_customer_change_is_audited_with_the_agent(customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    # when
    identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    # then: the source_history trigger recorded the update with the agent in its context
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT e.email, c.metadata->>'user' FROM customers_customerevent e "
            "JOIN pghistory_context c ON c.id = e.pgh_context_id "
            "WHERE e.pgh_obj_id = %s AND e.pgh_label = 'update'",
            [customer.pk],
        )
        assert cursor.fetchall() == [("new@example.jp", str(agent.pk))]


def test_one_failure_keeps_the_case_open_and_changes_nothing(customer, agent, django_capture_on_commit_callbacks):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        outcome = identity_case_verify(case_id=case.pk, actor=agent, evidence=WRONG, new_email="new@example.jp")
    # then
    assert not outcome.passed
    assert results(outcome)["charge_amount"] == CheckResult.FAIL
    assert results(outcome)["phone"] == CheckResult.PASS  # any hyphenation
    case.refresh_from_db()
    assert (case.status, case.attempts, case.failed_attempts, case.new_email) == (RecoveryStatus.OPEN, 1, 1, "")
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert kinds(case) == ["opened", "verification_failed"]
    assert callbacks == []


def test_two_failures_lock_the_case_and_a_locked_case_cannot_reset(customer, agent, django_capture_on_commit_callbacks):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    identity_case_verify(case_id=case.pk, actor=agent, evidence=WRONG, new_email="x@example.jp")
    # when
    outcome = identity_case_verify(case_id=case.pk, actor=agent, evidence=Evidence(), new_email="x@example.jp")
    # then
    assert outcome.case.status == RecoveryStatus.LOCKED
    assert kinds(case) == ["opened", "verification_failed", "verification_failed", "locked"]
    # and even the right evidence is refused now: nothing recorded, nothing sent
    with (
        django_capture_on_commit_callbacks(execute=False) as callbacks,
        pytest.raises(IdentityRecoveryRefused) as refused,
    ):
        identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="x@example.jp")
    assert refused.value.code == RefusalCode.NOT_OPEN
    assert callbacks == []
    assert IdentityVerificationAttempt.objects.filter(case=case).count() == 2
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert identity_reset_send(case_id=case.pk) is None
    assert PasswordResetSimulation.objects.count() == 0


def test_an_agent_cannot_unlock(customer, agent):
    # given a locked case
    case = identity_case_open(customer=customer, actor=agent)
    for _ in range(2):
        identity_case_verify(case_id=case.pk, actor=agent, evidence=WRONG, new_email="x@example.jp")
    # when / then
    with pytest.raises(IdentityRecoveryRefused) as refused:
        identity_case_unlock(case_id=case.pk, actor=agent, reason="caller sounded right")
    assert refused.value.code == RefusalCode.FORBIDDEN
    assert IdentityRecoveryCase.objects.get(pk=case.pk).status == RecoveryStatus.LOCKED


def test_a_lead_unlocks_with_a_reason_and_the_agent_can_verify_again(customer, agent, lead):
    # given a locked case
    case = identity_case_open(customer=customer, actor=agent)
    for _ in range(2):
        identity_case_verify(case_id=case.pk, actor=agent, evidence=WRONG, new_email="x@example.jp")
    # when: no reason is refused, a reason unlocks
    with pytest.raises(IdentityRecoveryRefused) as refused:
        identity_case_unlock(case_id=case.pk, actor=lead, reason="  ")
    assert refused.value.code == RefusalCode.REASON_REQUIRED
    identity_case_unlock(case_id=case.pk, actor=lead, reason="called back on the number on file")
    # then
    case.refresh_from_db()
    assert (case.status, case.failed_attempts, case.attempts) == (RecoveryStatus.OPEN, 0, 2)
    unlocked = IdentityRecoveryEvent.objects.get(case=case, kind="unlocked")
    assert (unlocked.actor, unlocked.note, unlocked.status_before) == (
        lead,
        "called back on the number on file",
        "locked",
    )
    outcome = identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="ok@example.jp")
    assert outcome.passed
    # and an open case cannot be unlocked
    with pytest.raises(IdentityRecoveryRefused) as refused:
        identity_case_unlock(case_id=case.pk, actor=lead, reason="again")
    assert refused.value.code == RefusalCode.NOT_LOCKED


def test_a_customer_without_charges_or_phone_cannot_be_verified(agent):
    # given: nothing to compare with
    customer = CustomerFactory.create(email="", phone="")
    case = identity_case_open(customer=customer, actor=agent)
    # when
    outcome = identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    # then
    assert not outcome.passed
    assert set(results(outcome).values()) == {CheckResult.UNAVAILABLE}
    assert Customer.objects.get(pk=customer.pk).email == ""


def test_a_phone_alone_is_not_enough(agent):
    # given: only a phone to compare with
    customer = CustomerFactory.create(email="", phone="03-1111-2222")
    case = identity_case_open(customer=customer, actor=agent)
    # when
    outcome = identity_case_verify(
        case_id=case.pk, actor=agent, evidence=Evidence(phone="03 1111 2222"), new_email="new@example.jp"
    )
    # then
    assert results(outcome)[Check.PHONE] == CheckResult.PASS
    assert not outcome.passed


def test_the_reset_is_sent_once_through_the_simulator(customer, agent):
    # given a completed case
    case = identity_case_open(customer=customer, actor=agent)
    identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    # when: the task runs twice (a redelivery)
    identity_reset_send_task(case.pk)
    identity_reset_send_task(case.pk)
    # then: one request recorded, the case remembers the reference, one reset_sent event by the system
    sim = PasswordResetSimulation.objects.get()
    assert (sim.idempotency_key, sim.customer_id, sim.email, sim.requests) == (
        f"identity-reset:{case.pk}",
        customer.pk,
        "new@example.jp",
        1,
    )
    case.refresh_from_db()
    assert case.reset_reference == sim.reference
    assert case.reset_sent_at is not None
    assert list(IdentityRecoveryEvent.objects.filter(case=case, kind="reset_sent").values_list("actor", flat=True)) == [
        None
    ]


def test_the_task_returns_quietly_for_a_missing_case():
    identity_reset_send_task(999_999)
    assert PasswordResetSimulation.objects.count() == 0


def test_a_cancelled_case_cannot_verify(customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    identity_case_cancel(case_id=case.pk, actor=agent, reason="caller hung up")
    # when / then
    with pytest.raises(IdentityRecoveryRefused):
        identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    assert kinds(case) == ["opened", "cancelled"]
    assert Customer.objects.get(pk=customer.pk).email == ""


def test_identity_recovery_speaks_japanese_first():
    with translation.override("ja"):
        assert str(RecoveryStatus.LOCKED.label) == "ロック中（リーダー確認待ち）"
    with translation.override("en"):
        assert str(RecoveryStatus.LOCKED.label) == "Locked (lead review)"


def test_the_sweep_resends_only_completed_cases_not_yet_sent(customer, agent, django_capture_on_commit_callbacks):
    # given: one completed case not sent, one sent, one open
    done = identity_case_open(customer=customer, actor=agent)
    identity_case_verify(case_id=done.pk, actor=agent, evidence=GOOD, new_email="new@example.jp")
    other = CustomerFactory.create(phone="")
    open_case = identity_case_open(customer=other, actor=agent)
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = identity_reset_sweep_enqueue(min_age=dt.timedelta(0))
    # then
    assert ids == [done.pk]
    assert [(cb.func, cb.args) for cb in callbacks] == [(identity_reset_send_task.delay, (done.pk,))]
    # and once sent, the sweep finds nothing
    identity_reset_send_task(done.pk)
    assert identity_reset_sweep_enqueue(min_age=dt.timedelta(0)) == []
    assert IdentityRecoveryCase.objects.get(pk=open_case.pk).status == RecoveryStatus.OPEN


def test_the_sweep_has_a_beat_schedule():
    assert PeriodicTask.objects.get(name="Identity recovery reset sweep").task == "identity.reset_sweep"


def test_an_invalid_new_address_is_refused_before_anything_is_recorded(customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    # when / then
    with pytest.raises(IdentityRecoveryRefused) as refused:
        identity_case_verify(case_id=case.pk, actor=agent, evidence=GOOD, new_email="not-an-address")
    assert refused.value.code == RefusalCode.INVALID_EMAIL
    assert IdentityVerificationAttempt.objects.count() == 0
    assert kinds(case) == ["opened"]
