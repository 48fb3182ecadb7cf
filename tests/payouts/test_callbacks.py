"""Provider callbacks: signed (Stripe's scheme), at most 5 minutes old, applied once (a replay changes
nothing), an unknown payout is a 404 that changes nothing; each moves the payout along its audited
transitions naming the provider. The simulators send real signed callbacks."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from pghistory.models import Events

from payouts.models import Payout, PayoutStatus, PayoutTransition, ProviderCallback
from payouts.providers.callbacks import provider_callback_send
from payouts.services import payout_issue, payouts_create_for_approved_claims
from support_portal.accounts.audit_trail import audit_timeline
from support_portal.api.signing import signature_header
from tests.payouts.conftest import approved_claim, make_program

pytestmark = pytest.mark.django_db

ATM_SECRET = "test-atm-secret"
POINTS_SECRET = "test-points-secret"


@pytest.fixture(autouse=True)
def _secrets(settings) -> None:
    settings.PAYOUT_WEBHOOK_SECRETS = {"sevenbank-atm": [ATM_SECRET], "point-codes": [POINTS_SECRET]}
    settings.PAYOUT_PROVIDER_CALLBACK_URL = ""


def issued(method: str = "atm_cash") -> Payout:
    program = make_program()
    approved_claim(program, payout_method=method)
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = Payout.objects.get(program=program)
    issued_payout = payout_issue(payout_id=payout.pk)
    assert issued_payout is not None and issued_payout.status == PayoutStatus.ISSUED
    return issued_payout


def event(payout: Payout, event_type: str, event_id: str = "evt_1") -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "data": {"reference": payout.provider_reference}}).encode()


def send(client: Client, provider: str, body: bytes, *, secret: str, timestamp: int | None = None, signature=None):
    header = signature or signature_header(secret=secret, body=body, timestamp=timestamp)
    return client.post(
        f"/api/v1/webhooks/{provider}", data=body, content_type="application/json", headers={"X-Signature": header}
    )


def state(payout: Payout) -> tuple[str, int, int]:
    payout.refresh_from_db()
    return payout.status, PayoutTransition.objects.filter(payout=payout).count(), ProviderCallback.objects.count()


def test_a_redeemed_voucher_settles_the_payout_with_an_audited_transition_naming_the_provider(client: Client) -> None:
    payout = issued()

    response = send(client, "sevenbank-atm", event(payout, "voucher.redeemed"), secret=ATM_SECRET)

    assert response.status_code == 200
    assert response.json() == {"status": "applied", "event": "evt_1", "payout": payout.pk, "payout_status": "settled"}
    transition = PayoutTransition.objects.filter(payout=payout).latest("pk")
    assert (transition.status_before, transition.status_after, transition.actor) == ("issued", "settled", None)
    assert transition.note == "provider callback sevenbank-atm evt_1: voucher.redeemed"
    update = Events.objects.tracks(payout).filter(pgh_label="update").latest("pgh_id")
    assert update.pgh_context["actor"] == "provider:sevenbank-atm"
    callback = ProviderCallback.objects.get()
    assert (callback.status_before, callback.status_after, callback.payout_id) == ("issued", "settled", payout.pk)


@pytest.mark.parametrize(
    ("provider", "method", "secret", "event_type", "status"),
    [
        ("sevenbank-atm", "atm_cash", ATM_SECRET, "voucher.expired", PayoutStatus.EXPIRED),
        ("point-codes", "points:amazon", POINTS_SECRET, "code.delivered", PayoutStatus.SETTLED),
        ("point-codes", "points:paypay", POINTS_SECRET, "code.failed", PayoutStatus.FAILED),
    ],
)
def test_each_event_moves_the_payout_to_its_status(
    client: Client, provider, method, secret, event_type, status
) -> None:
    payout = issued(method)

    response = send(client, provider, event(payout, event_type), secret=secret)

    assert response.status_code == 200
    assert state(payout) == (status, 3, 1)  # created, issued, then the callback's


def test_a_replayed_callback_changes_nothing_and_gets_the_same_answer(client: Client) -> None:
    payout = issued()
    body = event(payout, "voucher.redeemed")
    first = send(client, "sevenbank-atm", body, secret=ATM_SECRET)
    after_first = state(payout)

    again = send(client, "sevenbank-atm", body, secret=ATM_SECRET)

    assert again.status_code == 200
    assert again.json() == {**first.json(), "status": "duplicate"}
    assert state(payout) == after_first == ("settled", 3, 1)


def test_a_tampered_body_or_signature_is_401_and_changes_nothing(client: Client) -> None:
    payout = issued()
    body = event(payout, "voucher.redeemed")
    signed = signature_header(secret=ATM_SECRET, body=body)
    tampered_body = body.replace(b"voucher.redeemed", b"voucher.expired")
    tampered_signature = signed[:-1] + ("0" if signed[-1] != "0" else "1")
    before = state(payout)

    responses = [
        send(client, "sevenbank-atm", tampered_body, secret=ATM_SECRET, signature=signed),
        send(client, "sevenbank-atm", body, secret=ATM_SECRET, signature=tampered_signature),
        send(client, "sevenbank-atm", body, secret="another-secret"),
        send(client, "point-codes", body, secret=ATM_SECRET),  # another provider's secret
        send(client, "sevenbank-atm", body, secret=ATM_SECRET, signature="garbage"),
    ]

    assert [r.status_code for r in responses] == [401, 401, 401, 401, 401]
    assert responses[0].json() == {"status": "refused", "reason": "signature does not match"}
    assert state(payout) == before


def test_a_callback_signed_more_than_5_minutes_ago_is_refused(client: Client) -> None:
    payout = issued()
    body = event(payout, "voucher.redeemed")
    before = state(payout)

    old = send(client, "sevenbank-atm", body, secret=ATM_SECRET, timestamp=int(time.time()) - 301)

    assert old.status_code == 401
    assert old.json()["reason"] == "timestamp more than 300 seconds from now"
    assert state(payout) == before


def test_an_unknown_payout_is_404_and_changes_nothing(client: Client) -> None:
    payout = issued()
    body = json.dumps({"id": "evt_x", "type": "voucher.redeemed", "data": {"reference": "SBA-NOPE"}}).encode()
    before = state(payout)

    response = send(client, "sevenbank-atm", body, secret=ATM_SECRET)

    assert response.status_code == 404
    assert state(payout) == before


def test_a_points_payout_is_unknown_to_the_atm_provider(client: Client) -> None:
    payout = issued("points:amazon")
    before = state(payout)

    response = send(client, "sevenbank-atm", event(payout, "voucher.redeemed"), secret=ATM_SECRET)

    assert response.status_code == 404
    assert state(payout) == before


def test_an_event_the_status_does_not_allow_is_409_and_stores_nothing(client: Client) -> None:
    payout = issued()
    send(client, "sevenbank-atm", event(payout, "voucher.redeemed", "evt_1"), secret=ATM_SECRET)
    before = state(payout)

    response = send(client, "sevenbank-atm", event(payout, "voucher.expired", "evt_2"), secret=ATM_SECRET)

    assert response.status_code == 409
    assert state(payout) == before


def test_malformed_json_and_an_unknown_event_type_are_400(client: Client) -> None:
    payout = issued()
    before = state(payout)

    malformed = send(client, "sevenbank-atm", b'{"id": ', secret=ATM_SECRET)
    unknown = send(client, "sevenbank-atm", event(payout, "code.delivered"), secret=ATM_SECRET)

    assert (malformed.status_code, unknown.status_code) == (400, 400)
    assert state(payout) == before


def test_without_a_configured_secret_every_callback_is_refused(client: Client, settings) -> None:
    settings.PAYOUT_WEBHOOK_SECRETS = {"sevenbank-atm": [], "point-codes": []}
    payout = issued()
    before = state(payout)

    response = send(client, "sevenbank-atm", event(payout, "voucher.redeemed"), secret="")

    assert response.status_code == 401
    assert state(payout) == before


def test_a_rotated_secret_verifies_while_both_are_configured(client: Client, settings) -> None:
    settings.PAYOUT_WEBHOOK_SECRETS = {"sevenbank-atm": ["new-secret", ATM_SECRET], "point-codes": []}
    payout = issued()

    response = send(client, "sevenbank-atm", event(payout, "voucher.redeemed"), secret=ATM_SECRET)

    assert response.status_code == 200


def test_the_simulator_sends_a_real_signed_callback_through_the_same_verification(settings) -> None:
    payout = issued("points:paypay")

    sent = provider_callback_send(payout=payout, event_type="code.delivered")
    replay = provider_callback_send(payout=payout, event_type="code.delivered", event_id=sent.event_id)
    stale = provider_callback_send(
        payout=payout, event_type="code.failed", event_id="evt_old", timestamp=int(time.time()) - 600
    )

    assert (sent.status_code, sent.body["status"], sent.body["payout_status"]) == (200, "applied", "settled")
    assert (replay.status_code, replay.body["status"]) == (200, "duplicate")
    assert stale.status_code == 401
    assert state(payout) == ("settled", 3, 1)


def test_the_simulator_posts_to_the_configured_url(settings, live_server) -> None:
    settings.PAYOUT_PROVIDER_CALLBACK_URL = f"{live_server.url}/api/v1/webhooks/"
    payout = issued()

    sent = provider_callback_send(payout=payout, event_type="voucher.redeemed")

    assert (sent.status_code, sent.body["payout_status"]) == (200, "settled")
    assert state(payout) == ("settled", 3, 1)


def test_the_audit_trail_names_the_provider_as_the_actor_of_the_change(client: Client) -> None:
    payout = issued()
    send(client, "sevenbank-atm", event(payout, "voucher.redeemed"), secret=ATM_SECRET)

    entries = audit_timeline(kind="payout", object_id=payout.pk) or []

    changes = [(entry.actor, entry.details) for entry in entries if entry.source == "change" and entry.what == "update"]
    actor, details = changes[-1]
    assert (actor, details.split(", ")[0]) == ("provider:sevenbank-atm", "status: issued → settled")


def test_the_command_sends_a_signed_callback_and_a_replay_changes_nothing() -> None:
    payout = issued()
    out = io.StringIO()

    call_command("simulate_provider_callback", payout.pk, "voucher.redeemed", "--event-id", "evt_cmd", stdout=out)
    call_command("simulate_provider_callback", payout.pk, "voucher.redeemed", "--event-id", "evt_cmd", stdout=out)

    lines = out.getvalue().splitlines()
    assert [line.split(" ", 2)[:2] for line in lines] == [["evt_cmd:", "200"], ["evt_cmd:", "200"]]
    assert '"duplicate"' in lines[1]
    assert state(payout) == ("settled", 3, 1)
    with pytest.raises(CommandError):
        call_command("simulate_provider_callback", payout.pk, "voucher.expired", stdout=out)  # 409
