"""A ticket starts a claim: the agent records the caller's request, and the ticket shows the claim's state."""

import datetime as dt

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from claims.models import Channel as SubmissionChannel
from claims.models import Program, Submission
from support_portal.tickets.models import Channel, EventKind, Queue, Ticket, TicketEvent, TicketSubmission
from support_portal.tickets.services import (
    RefusalCode,
    TicketRefused,
    ticket_link_customer,
    ticket_request_claims,
    ticket_request_record,
    ticket_set_category,
)
from tests.claims.factories import ClaimFactory, ReviewProgramFactory, jst
from tests.factories import ChargeFactory, CustomerFactory, SubscriptionFactory
from tests.tickets.conftest import staff
from tests.tickets.factories import TicketFactory

pytestmark = pytest.mark.django_db

NOW = jst(2026, 11, 20, 11)


@pytest.fixture
def phone_ticket(queue: Queue) -> Ticket:
    customer = CustomerFactory.create(customer_id="C0000042", email="c42@example.jp", phone="080-1111-2222")
    return TicketFactory.create(queue=queue, customer=customer, channel=Channel.PHONE)


@pytest.fixture
def outage_program() -> Program:
    return ReviewProgramFactory.create(slug="login-outage-phone", payout_methods=["atm_cash", "points:amazon"])


@pytest.fixture
def refund_program() -> Program:
    return ReviewProgramFactory.create(
        slug="autorenew-phone", policy="autorenew-60day", payout_methods=["original_method"]
    )


def written() -> tuple[int, int, int]:
    """Submissions, ticket links and request events: all unchanged on a refused request."""
    return (
        Submission.objects.count(),
        TicketSubmission.objects.count(),
        TicketEvent.objects.filter(kind=EventKind.REQUEST_RECORDED).count(),
    )


def test_agent_records_a_callers_application_and_the_ticket_shows_its_claim(
    agent: User, phone_ticket: Ticket, outage_program: Program
) -> None:
    # Given a phone ticket of customer C0000042 and an open login-outage program
    # When the agent records the caller's application with a payout method
    submission = ticket_request_record(
        ticket=phone_ticket, actor=agent, program=outage_program, payout_method="points:amazon", now=NOW
    )
    # Then one submission names the customer, taken by phone, with the customer's contacts
    stored = Submission.objects.get()
    assert stored == submission
    assert (stored.program_id, stored.subject, stored.channel, stored.payout_method, stored.submitted_at) == (
        "login-outage-phone",
        "C0000042",
        SubmissionChannel.PHONE,
        "points:amazon",
        NOW,
    )
    assert (stored.contact_email, stored.contact_phone) == ("c42@example.jp", "080-1111-2222")
    assert stored.submission_id.startswith("T") and len(stored.submission_id) == 25
    # And it is linked to the ticket, with an event naming the agent
    assert TicketSubmission.objects.get().ticket == phone_ticket
    event = TicketEvent.objects.get(kind=EventKind.REQUEST_RECORDED)
    assert (event.actor, event.data) == (
        agent,
        {"submission": stored.submission_id, "program": "login-outage-phone", "subject": "C0000042"},
    )
    # And until a run makes the claim the ticket shows none; afterwards it shows the claim
    assert ticket_request_claims(ticket=phone_ticket) == [(stored, None)]
    claim = ClaimFactory.create(program=outage_program, subject="C0000042")
    assert ticket_request_claims(ticket=phone_ticket) == [(stored, claim)]


def test_refund_request_names_the_customers_charge_or_one_they_paid(
    agent: User, phone_ticket: Ticket, refund_program: Program
) -> None:
    # Given a charge of the customer's subscription and one of a subscription they pay for someone else
    own = ChargeFactory.create(subscription=SubscriptionFactory.create(customer=phone_ticket.customer))
    paid = ChargeFactory.create(subscription=SubscriptionFactory.create(payer=phone_ticket.customer))
    # When the agent records refund requests for both, with the reason and fault the caller gives
    for charge in (own, paid):
        ticket_request_record(
            ticket=phone_ticket,
            actor=agent,
            program=refund_program,
            subject=charge.charge_id,
            reason="forgot_to_cancel",
            fault="member",
            effective_at=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
            now=NOW,
        )
    # Then both are kept, each naming its charge
    assert sorted(Submission.objects.values_list("subject", "reason", "fault")) == sorted(
        [(own.charge_id, "forgot_to_cancel", "member"), (paid.charge_id, "forgot_to_cancel", "member")]
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ("someone_elses_charge", RefusalCode.SUBJECT_NOT_THE_CUSTOMERS),
        ("closed_program", RefusalCode.PROGRAM_CLOSED),
        ("method_not_offered", RefusalCode.PAYOUT_METHOD),
        ("no_customer", RefusalCode.NO_CUSTOMER),
    ],
)
def test_refused_requests_write_nothing(
    agent: User, phone_ticket: Ticket, refund_program: Program, change: str, code: str
) -> None:
    # Given a refund request that is wrong in one way
    subject = ChargeFactory.create(subscription=SubscriptionFactory.create(customer=phone_ticket.customer)).charge_id
    payout_method = ""
    if change == "someone_elses_charge":
        subject = ChargeFactory.create().charge_id
    elif change == "closed_program":
        Program.objects.filter(pk=refund_program.pk).update(status=Program.Status.CLOSED)
    elif change == "method_not_offered":
        payout_method = "atm_cash"
    elif change == "no_customer":
        Ticket.objects.filter(pk=phone_ticket.pk).update(customer=None)
    # When the agent records it, then it is refused with its code and nothing is written
    with pytest.raises(TicketRefused) as refused:
        ticket_request_record(
            ticket=phone_ticket,
            actor=agent,
            program=refund_program,
            subject=subject,
            payout_method=payout_method,
            now=NOW,
        )
    assert refused.value.code == code
    assert written() == (0, 0, 0)


def test_only_agents_of_the_queue_with_the_permission_record_requests(
    other_agent: User, phone_ticket: Ticket, outage_program: Program
) -> None:
    reviewer = staff("reviewer-r", "reviewer")
    for actor, code in ((other_agent, RefusalCode.NOT_IN_QUEUE), (reviewer, RefusalCode.NO_PERMISSION)):
        with pytest.raises(TicketRefused) as refused:
            ticket_request_record(ticket=phone_ticket, actor=actor, program=outage_program, now=NOW)
        assert refused.value.code == code
    assert written() == (0, 0, 0)


def test_admin_form_records_the_request_and_the_ticket_page_lists_it(
    agent: User, phone_ticket: Ticket, outage_program: Program
) -> None:
    client = Client()
    client.force_login(agent)
    url = reverse("admin:tickets_ticket_record_request", args=[phone_ticket.pk])
    # Given the form, which offers open programs only
    ReviewProgramFactory.create(slug="closed-one", name="closed program", status=Program.Status.CLOSED)
    page = client.get(url)
    assert page.status_code == 200
    assert list(page.context["form"].fields["program"].queryset) == [outage_program]
    # When the agent posts it
    response = client.post(url, {"program": outage_program.pk, "payout_method": "atm_cash"})
    # Then it redirects to the ticket, which lists the request without a claim yet
    change_url = reverse("admin:tickets_ticket_change", args=[phone_ticket.pk])
    assert (response.status_code, response["Location"]) == (302, change_url)
    submission = Submission.objects.get()
    ticket_page = client.get(change_url).content.decode()
    assert f'data-submission="{submission.submission_id}"' in ticket_page


def test_admin_form_shows_a_refusal_and_writes_nothing(
    agent: User, phone_ticket: Ticket, outage_program: Program
) -> None:
    client = Client()
    client.force_login(agent)
    url = reverse("admin:tickets_ticket_record_request", args=[phone_ticket.pk])
    response = client.post(url, {"program": outage_program.pk, "subject": "C9999999"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["C9999999 is not a customer id of this ticket's customer."]
    assert written() == (0, 0, 0)


def test_agent_links_the_customer_of_an_unknown_senders_ticket_then_records_the_request(
    agent: User, queue: Queue, outage_program: Program
) -> None:
    # Given mail from an address no customer has (a ticket without customer), and the customer found
    ticket = TicketFactory.create(queue=queue, customer=None, channel=Channel.EMAIL)
    customer = CustomerFactory.create(customer_id="C0000077")
    # When the agent links the customer (twice: the second changes nothing) and records the request
    ticket_link_customer(ticket=ticket, actor=agent, customer=customer, now=NOW)
    ticket_link_customer(ticket=ticket, actor=agent, customer=customer, now=NOW)
    ticket_request_record(ticket=ticket, actor=agent, program=outage_program, now=NOW)
    # Then the ticket names the customer, one event records before/after, and the request is theirs
    ticket.refresh_from_db()
    assert ticket.customer_id == "C0000077"
    assert list(TicketEvent.objects.filter(kind=EventKind.CUSTOMER_LINKED).values_list("actor", "data")) == [
        (agent.pk, {"before": None, "after": "C0000077"})
    ]
    assert Submission.objects.get().subject == "C0000077"


def test_category_changes_are_recorded_and_refused_for_unknown_categories(agent: User, phone_ticket: Ticket) -> None:
    before = phone_ticket.category
    ticket_set_category(ticket=phone_ticket, actor=agent, category="refund", now=NOW)
    with pytest.raises(TicketRefused) as refused:
        ticket_set_category(ticket=phone_ticket, actor=agent, category="lottery", now=NOW)
    assert refused.value.code == RefusalCode.NOT_A_CATEGORY
    phone_ticket.refresh_from_db()
    assert phone_ticket.category == "refund"
    assert list(TicketEvent.objects.filter(kind=EventKind.CATEGORY).values_list("data", flat=True)) == [
        {"before": before, "after": "refund"}
    ]


def test_closed_tickets_and_other_queues_cannot_be_relinked(
    agent: User, other_agent: User, phone_ticket: Ticket
) -> None:
    other = CustomerFactory.create(customer_id="C0000078")
    with pytest.raises(TicketRefused) as refused:
        ticket_link_customer(ticket=phone_ticket, actor=other_agent, customer=other, now=NOW)
    assert refused.value.code == RefusalCode.NOT_IN_QUEUE
    Ticket.objects.filter(pk=phone_ticket.pk).update(status="closed")
    with pytest.raises(TicketRefused) as refused:
        ticket_link_customer(ticket=phone_ticket, actor=agent, customer=other, now=NOW)
    assert refused.value.code == RefusalCode.CLOSED
    phone_ticket.refresh_from_db()
    assert phone_ticket.customer_id == "C0000042"
    assert not TicketEvent.objects.filter(kind=EventKind.CUSTOMER_LINKED).exists()
