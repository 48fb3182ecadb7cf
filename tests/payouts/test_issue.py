"""Issuing payouts: idempotent by key, encrypted at rest, masked everywhere, retried on temporary errors."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.urls import reverse

from claims.models import ClaimStatus
from payouts import crypto, providers
from payouts.models import Payout, PayoutSecret, PayoutStatus, PayoutTransition, SimulatorIssuance
from payouts.providers.base import ProviderPermanentError, ProviderTemporaryError
from payouts.providers.simulators import PointCodeSimulator, SevenBankAtmSimulator
from payouts.services import (
    PayoutRefused,
    RefusalCode,
    payout_issue,
    payout_transition,
    payouts_create_for_approved_claims,
)
from payouts.tasks import payout_issue_task
from tests.factories import UserFactory
from tests.payouts.conftest import approved_claim, make_program


def create_payouts(program, n: int = 1, **claim_overrides) -> list[Payout]:
    for _ in range(n):
        approved_claim(program, **claim_overrides)
    payouts_create_for_approved_claims(program=program, actor=None)
    return list(Payout.objects.filter(program=program).order_by("pk"))


def snapshot(payout: Payout) -> tuple:
    payout.refresh_from_db()
    return (
        payout.status,
        payout.attempts,
        payout.last_error,
        payout.provider_reference,
        PayoutTransition.objects.filter(payout=payout).count(),
        PayoutSecret.objects.filter(payout=payout).count(),
        SimulatorIssuance.objects.count(),
    )


class FlakyProvider:
    """Fails temporarily `failures` times, then behaves like the ATM simulator."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.inner = SevenBankAtmSimulator()
        self.name = self.inner.name

    def issue(self, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise ProviderTemporaryError("simulated timeout")
        return self.inner.issue(**kwargs)


@pytest.mark.django_db
def test_the_task_delivered_twice_issues_once_with_the_same_code(program):
    [payout] = create_payouts(program)

    payout_issue_task.apply(args=(payout.pk,))
    payout.refresh_from_db()
    first_code = payout.secret.reveal()
    payout_issue_task.apply(args=(payout.pk,))

    payout.refresh_from_db()
    assert payout.status == PayoutStatus.ISSUED
    assert payout.attempts == 1
    assert payout.secret.reveal() == first_code
    assert len(first_code.code) == 16 and first_code.code.isdigit()
    assert len(first_code.pin) == 4 and first_code.pin.isdigit()
    assert list(SimulatorIssuance.objects.values_list("idempotency_key", "requests")) == [(payout.idempotency_key, 1)]
    assert list(PayoutTransition.objects.filter(payout=payout).values_list("status_after", flat=True)) == [
        "created",
        "issued",
    ]


@pytest.mark.django_db
def test_a_provider_asked_again_with_the_same_key_returns_the_same_voucher(program):
    # Given the provider already issued for this key (our commit was lost after its answer)
    [payout] = create_payouts(program)
    earlier = SevenBankAtmSimulator().issue(
        idempotency_key=payout.idempotency_key, amount_jpy=payout.amount_jpy, expires_at=None, payee_ref=payout.payee_id
    )

    # When the payout is issued
    payout_issue(payout_id=payout.pk)

    # Then the provider saw one issuance, asked twice, and the stored code is the one it issued
    payout.refresh_from_db()
    assert payout.secret.reveal().code == earlier.code
    assert payout.provider_reference == earlier.reference
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True)) == [2]


@pytest.mark.django_db
def test_the_same_key_with_another_amount_is_refused_by_the_provider(program):
    simulator = SevenBankAtmSimulator()
    simulator.issue(idempotency_key="payout:1:atm_cash", amount_jpy=1000, expires_at=None, payee_ref="C1")
    with pytest.raises(ProviderPermanentError):
        simulator.issue(idempotency_key="payout:1:atm_cash", amount_jpy=9000, expires_at=None, payee_ref="C1")
    assert SimulatorIssuance.objects.get().amount_jpy == 1000


@pytest.mark.django_db
def test_point_code_payouts_get_a_receive_url(program):
    [payout] = create_payouts(program, payout_method="points:amazon")

    payout_issue(payout_id=payout.pk)

    payout.refresh_from_db()
    secret = payout.secret.reveal()
    assert secret.url.startswith("https://points.simulator.invalid/amazon/receive/")
    assert secret.code == "" and secret.pin == ""
    assert payout.provider == PointCodeSimulator(brand="amazon").name


@pytest.mark.django_db
def test_the_code_is_encrypted_at_rest_and_masked_in_str_repr_and_history(program):
    [payout] = create_payouts(program)
    payout_issue(payout_id=payout.pk)
    payout.refresh_from_db()
    secret = payout.secret.reveal()

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT ciphertext, masked FROM {PayoutSecret._meta.db_table} WHERE payout_id = %s", [payout.pk]
        )
        ciphertext, masked = cursor.fetchone()
    assert secret.code not in ciphertext and secret.pin not in ciphertext
    assert crypto.decrypt(ciphertext).count(secret.code) == 1
    assert masked == "•" * 12 + secret.code[-4:]
    for text in (str(payout), repr(payout), str(payout.secret), repr(payout.secret), repr(secret)):
        assert secret.code not in text and secret.pin not in text
    # The audit snapshots of the payout row never hold the secret either.
    with connection.cursor() as cursor:
        cursor.execute("SELECT string_agg(to_jsonb(e)::text, '') FROM payouts_payoutevent e")
        (history,) = cursor.fetchone()
    assert history and secret.code not in history and ciphertext not in history


@pytest.mark.django_db
def test_the_admin_never_shows_the_code(program, client):
    [payout] = create_payouts(program)
    payout_issue(payout_id=payout.pk)
    payout.refresh_from_db()
    secret = payout.secret.reveal()
    client.force_login(UserFactory(username="admin-1", is_superuser=True))

    listing = client.get(reverse("admin:payouts_payout_changelist")).content.decode()
    page = client.get(reverse("admin:payouts_payout_change", args=(payout.pk,))).content.decode()

    assert f">{payout.pk}<" in listing or str(payout.pk) in listing
    for html in (listing, page):
        assert secret.code not in html and secret.pin not in html
        assert payout.secret.ciphertext not in html
    assert payout.secret.masked in page
    assert payout.secret.masked not in listing
    assert client.get(reverse("admin:payouts_payout_add")).status_code == 403


@pytest.mark.django_db
def test_a_temporary_error_is_recorded_and_reraised_for_retry(program, monkeypatch):
    [payout] = create_payouts(program)
    flaky = FlakyProvider(failures=1)
    monkeypatch.setitem(providers._REGISTRY, "atm_cash", lambda: flaky)

    with pytest.raises(ProviderTemporaryError):
        payout_issue(payout_id=payout.pk)

    payout.refresh_from_db()
    assert (payout.status, payout.attempts, payout.last_error) == ("created", 1, "temporary: simulated timeout")
    assert SimulatorIssuance.objects.count() == 0


@pytest.mark.django_db
def test_the_task_retries_a_temporary_error_and_issues_once(program, monkeypatch):
    [payout] = create_payouts(program)
    flaky = FlakyProvider(failures=2)
    monkeypatch.setitem(providers._REGISTRY, "atm_cash", lambda: flaky)

    result = payout_issue_task.apply(args=(payout.pk,))

    assert result.successful()
    payout.refresh_from_db()
    assert (payout.status, payout.attempts, payout.last_error) == ("issued", 3, "")
    assert flaky.calls == 3
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True)) == [1]


@pytest.mark.django_db
def test_a_permanent_error_fails_the_payout(program, monkeypatch):
    [payout] = create_payouts(program)

    class Refusing:
        name = "refusing"

        def issue(self, **kwargs):
            raise ProviderPermanentError("account closed")

    monkeypatch.setitem(providers._REGISTRY, "atm_cash", Refusing)
    payout_issue_task.apply(args=(payout.pk,))

    payout.refresh_from_db()
    assert (payout.status, payout.last_error) == ("failed", "permanent: account closed")
    assert not PayoutSecret.objects.exists()
    assert PayoutTransition.objects.filter(payout=payout, status_after="failed").count() == 1


@pytest.mark.django_db
def test_refused_steps_change_nothing(program, finance_user):
    [payout] = create_payouts(program)
    before = snapshot(payout)

    # Not yet issued: cannot be notified or settled; issuing is only through payout_issue
    for target in (PayoutStatus.NOTIFIED, PayoutStatus.SETTLED, PayoutStatus.ISSUED, PayoutStatus.CREATED):
        with pytest.raises(PayoutRefused) as refused:
            payout_transition(payout_id=payout.pk, to=target, actor=finance_user)
        assert refused.value.code == RefusalCode.STATUS
        assert snapshot(payout) == before

    # Settled is final
    payout_issue(payout_id=payout.pk)
    payout_transition(payout_id=payout.pk, to=PayoutStatus.SETTLED, actor=finance_user)
    settled = snapshot(payout)
    for target in (PayoutStatus.CANCELLED, PayoutStatus.EXPIRED, PayoutStatus.FAILED):
        with pytest.raises(PayoutRefused):
            payout_transition(payout_id=payout.pk, to=target, actor=finance_user)
        assert snapshot(payout) == settled
    assert PayoutTransition.objects.filter(payout=payout).latest("id").actor_id == finance_user.pk


@pytest.mark.django_db
def test_issue_refuses_unsupported_methods_and_unapproved_claims_without_changes(program):
    [transfer] = create_payouts(program, payout_method="bank_transfer")
    before = snapshot(transfer)
    with pytest.raises(PayoutRefused) as refused:
        payout_issue(payout_id=transfer.pk)
    assert refused.value.code == RefusalCode.METHOD_NOT_SUPPORTED
    assert snapshot(transfer) == before

    other = make_program()
    [payout] = create_payouts(other)
    payout.claim.status = ClaimStatus.NEEDS_REREVIEW
    payout.claim.save(update_fields=["status"])
    before = snapshot(payout)
    with pytest.raises(PayoutRefused) as refused:
        payout_issue(payout_id=payout.pk)
    assert refused.value.code == RefusalCode.CLAIM_NOT_APPROVED
    assert snapshot(payout) == before


@pytest.mark.django_db
def test_a_payout_past_its_receipt_deadline_expires_instead_of_issuing():
    program = make_program(receipt_deadline=dt.date(2020, 1, 31))
    [payout] = create_payouts(program)

    payout_issue(payout_id=payout.pk)

    payout.refresh_from_db()
    assert payout.status == PayoutStatus.EXPIRED
    assert SimulatorIssuance.objects.count() == 0


@pytest.mark.django_db
def test_production_refuses_to_issue_without_an_encryption_key(program, monkeypatch):
    [payout] = create_payouts(program)
    monkeypatch.delenv(crypto.ENV_VAR, raising=False)
    monkeypatch.setattr(crypto, "is_production", lambda: True)

    with pytest.raises(ImproperlyConfigured):
        payout_issue(payout_id=payout.pk)

    payout.refresh_from_db()
    assert payout.status == PayoutStatus.CREATED
    assert SimulatorIssuance.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_two_threads_issuing_the_same_payout_issue_it_exactly_once():
    program = make_program()
    [payout] = create_payouts(program)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def issue() -> None:
        try:
            barrier.wait(timeout=10)
            payout_issue(payout_id=payout.pk)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    payout.refresh_from_db()
    assert (payout.status, payout.attempts) == ("issued", 1)
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True)) == [1]
    assert PayoutTransition.objects.filter(payout=payout, status_after="issued").count() == 1
    assert PayoutSecret.objects.count() == 1
