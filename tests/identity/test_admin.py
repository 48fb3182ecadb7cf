"""The identity recovery screens: open a case, verify without seeing the true values, lock, unlock."""

import pytest
from django.urls import reverse
from django.utils import timezone

from support_portal.customers.models import Customer
from support_portal.identity.models import IdentityRecoveryCase, PasswordResetSimulation, RecoveryStatus
from support_portal.identity.services import identity_case_open
from support_portal.identity.tasks import identity_reset_send_task
from support_portal.tickets.models import Queue, Ticket
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

WRONG = {
    "charge_amount_jpy": "999",
    "charge_date": "2024-10-01",
    "payment_method": "card",
    "phone": "",
    "new_email": "n@example.jp",
}
GOOD = {
    "charge_amount_jpy": "1100",
    "charge_date": "2024-10-01",
    "payment_method": "card",
    "phone": "090 1234 5678",
    "new_email": "n@example.jp",
}


def verify_url(case) -> str:
    return reverse("admin:identity_identityrecoverycase_verify", args=[case.pk])


def unlock_url(case) -> str:
    return reverse("admin:identity_identityrecoverycase_unlock", args=[case.pk])


def test_an_agent_opens_a_case_and_lands_on_the_verification_screen(client, customer, agent):
    # given
    client.force_login(agent)
    # when
    response = client.post(reverse("admin:identity_identityrecoverycase_add"), {"customer": customer.pk})
    # then
    case = IdentityRecoveryCase.objects.get()
    assert (case.customer, case.agent, case.status) == (customer, agent, RecoveryStatus.OPEN)
    assert response["Location"] == verify_url(case)


def test_the_verification_screen_never_shows_the_true_values(client, customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    client.force_login(agent)
    # when
    page = client.get(verify_url(case)).content.decode()
    failed = client.post(verify_url(case), WRONG).content.decode()
    # then: neither the form nor the result shows the charge, the date or the phone on file
    for page_text in (page, failed):
        assert "1,100" not in page_text and "1100" not in page_text
        assert "5678" not in page_text
    assert 'id="verification-failed"' in failed
    assert 'data-check="charge_amount"' in failed


def test_matching_evidence_completes_the_case_and_the_reset_is_sent(
    client, customer, agent, django_capture_on_commit_callbacks
):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    client.force_login(agent)
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(verify_url(case), GOOD)
    # then
    assert response["Location"] == reverse("admin:identity_identityrecoverycase_change", args=[case.pk])
    assert Customer.objects.get(pk=customer.pk).email == "n@example.jp"
    assert [cb.args for cb in callbacks] == [(case.pk,)]
    identity_reset_send_task(*callbacks[0].args)
    assert PasswordResetSimulation.objects.get().email == "n@example.jp"


def test_two_failures_lock_the_screen_and_only_a_lead_unlocks(client, customer, agent, lead):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    client.force_login(agent)
    client.post(verify_url(case), WRONG)
    # when
    locked = client.post(verify_url(case), WRONG).content.decode()
    # then
    assert IdentityRecoveryCase.objects.get(pk=case.pk).status == RecoveryStatus.LOCKED
    assert 'name="verify"' not in locked
    # a post to the locked case changes nothing
    client.post(verify_url(case), GOOD)
    assert Customer.objects.get(pk=customer.pk).email == ""
    assert PasswordResetSimulation.objects.count() == 0
    # an agent may not open the unlock screen
    assert client.get(unlock_url(case)).status_code == 403
    assert client.post(unlock_url(case), {"reason": "x"}).status_code == 403
    # a lead reviews and unlocks with a reason
    client.force_login(lead)
    review = client.get(unlock_url(case))
    assert review.status_code == 200
    client.post(unlock_url(case), {"reason": "verified by call-back"})
    assert IdentityRecoveryCase.objects.get(pk=case.pk).status == RecoveryStatus.OPEN


def test_staff_without_the_identity_permissions_cannot_verify(client, customer, agent):
    # given
    case = identity_case_open(customer=customer, actor=agent)
    client.force_login(UserFactory.create(username="nobody"))
    # when / then
    assert client.post(verify_url(case), GOOD).status_code == 403
    assert Customer.objects.get(pk=customer.pk).email == ""


def test_a_case_can_be_opened_on_the_ticket_the_call_came_in_on(client, customer, agent):
    # given
    queue = Queue.objects.create(name="ログイン", slug="login")
    now = timezone.now()
    ticket = Ticket.objects.create(
        queue=queue, subject="ログインできない", customer=customer, created_at=now, updated_at=now
    )
    client.force_login(agent)
    # when
    client.post(reverse("admin:identity_identityrecoverycase_add"), {"customer": customer.pk, "ticket": ticket.pk})
    # then
    assert IdentityRecoveryCase.objects.get().ticket == ticket


def test_a_second_case_for_the_same_customer_is_refused_on_the_form(client, customer, agent):
    # given
    identity_case_open(customer=customer, actor=agent)
    client.force_login(agent)
    # when
    response = client.post(reverse("admin:identity_identityrecoverycase_add"), {"customer": customer.pk})
    # then
    assert response.status_code == 200
    assert IdentityRecoveryCase.objects.count() == 1
