"""Lockout after repeated failed sign-ins, per user name + address and per address; sessions that expire."""

import time

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory

from support_portal.accounts import totp
from support_portal.accounts.models import SecurityEvent
from support_portal.accounts.services import device_confirm, device_enroll_start, device_secret
from support_portal.core.middleware import SessionIdleTimeoutMiddleware
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def _post_login(client: Client, username: str, password: str, ip: str = "198.51.100.7"):
    return client.post("/admin/login/", {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)


def test_five_wrong_passwords_lock_the_name_from_that_address_even_for_the_right_one(client):
    # Given a staff user and five wrong passwords from one address
    user = UserFactory.create(is_superuser=True)
    for _ in range(5):
        assert _post_login(client, user.username, "wrong-password-123").status_code == 200

    # When the right password comes from that address
    response = _post_login(client, user.username, PASSWORD)

    # Then it is refused with the same message as a wrong password (no hint that the name exists)
    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    assert SecurityEvent.objects.filter(kind="login_failed", username=user.username).count() == 5
    assert SecurityEvent.objects.filter(kind="locked_out", username=user.username).count() == 1
    assert not SecurityEvent.objects.filter(kind="login_succeeded").exists()


def test_a_lockout_cannot_be_aimed_at_a_colleague_from_another_address(client):
    # Given someone who failed five times on a colleague's name from their own address
    user = UserFactory.create(is_superuser=True)
    for _ in range(5):
        _post_login(client, user.username, "wrong-password-123", ip="192.0.2.66")
    assert _post_login(client, user.username, PASSWORD, ip="192.0.2.66").status_code == 200

    # When the colleague signs in from their own address
    response = _post_login(client, user.username, PASSWORD, ip="203.0.113.9")

    # Then they are in; only the attacker's address was locked for that name
    assert response.status_code == 302
    assert list(SecurityEvent.objects.filter(kind="locked_out").values_list("ip", flat=True)) == ["192.0.2.66"]
    assert list(SecurityEvent.objects.filter(kind="login_succeeded").values_list("ip", flat=True)) == ["203.0.113.9"]


def test_user_lock_is_case_insensitive_and_expires(client, settings):
    user = UserFactory.create(username="hanako", is_superuser=True)
    for name in ["hanako", "HANAKO", "Hanako", "hanako", "hanako"]:
        _post_login(client, name, "nope-nope-nope")
    assert _post_login(client, "hanako", PASSWORD).status_code == 200

    # When the window is over (here: shrunk to zero)
    settings.LOGIN_LOCKOUT_WINDOW_SECONDS = 0

    # Then the right password signs in
    assert _post_login(client, user.username, PASSWORD).status_code == 302


def test_one_address_spraying_many_names_is_locked(client, settings):
    # Given an address that failed 20 times on 20 different names
    settings.LOGIN_LOCKOUT_IP_FAILURES = 20
    user = UserFactory.create(is_superuser=True)
    for n in range(20):
        _post_login(client, f"guess{n}", "Password123!", ip="192.0.2.66")

    # When a real user's right password comes from that address
    refused = _post_login(client, user.username, PASSWORD, ip="192.0.2.66")

    # Then it is refused; from another address it works
    assert refused.status_code == 200
    assert _post_login(client, user.username, PASSWORD, ip="192.0.2.67").status_code == 302


def test_success_resets_the_user_counter():
    user = UserFactory.create()
    request = RequestFactory().post("/admin/login/", REMOTE_ADDR="198.51.100.1")
    for _ in range(4):
        assert authenticate(request, username=user.username, password="bad-bad-bad-bad") is None
    assert authenticate(request, username=user.username, password=PASSWORD) == user
    for _ in range(4):
        authenticate(request, username=user.username, password="bad-bad-bad-bad")
    assert authenticate(request, username=user.username, password=PASSWORD) == user


def test_wrong_two_factor_codes_count_towards_the_lockout(client, settings):
    # Given an enrolled user who passed the password step
    settings.REQUIRE_2FA = True
    user = UserFactory.create(is_superuser=True)
    device_enroll_start(user=user)
    secret = device_secret(device=user.totp_device)
    device_confirm(user=user, code=totp.code_at(secret, totp.current_step() - 1), ip=None)
    assert _post_login(client, user.username, PASSWORD).status_code == 302

    # When five wrong codes are entered
    for _ in range(5):
        assert client.post("/accounts/two-factor/", {"code": "000000"}, REMOTE_ADDR="198.51.100.7").status_code == 200

    # Then even the right code signs them out, and the password step is locked too
    right = client.post(
        "/accounts/two-factor/", {"code": totp.code_at(secret, totp.current_step())}, REMOTE_ADDR="198.51.100.7"
    )
    assert right.status_code == 302
    assert right["Location"] == "/admin/login/"
    assert "_auth_user_id" not in client.session
    assert _post_login(client, user.username, PASSWORD).status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(client, settings):
    # Given no proxy configured (the default) and clients that send X-Forwarded-For naming a victim
    assert settings.TRUSTED_PROXY_COUNT == 0
    settings.LOGIN_LOCKOUT_IP_FAILURES = 3
    victim = UserFactory.create(is_superuser=True)
    for n in range(3):
        client.post(
            "/admin/login/",
            {"username": f"guess{n}", "password": "x" * 12},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR="203.0.113.50",
        )
    # When the victim signs in from the address named in the forged header
    response = _post_login(client, victim.username, PASSWORD, ip="203.0.113.50")
    # Then the failures were counted against the sender, and the victim is in
    assert response.status_code == 302
    failed = SecurityEvent.objects.filter(kind="login_failed").values_list("ip", flat=True)
    assert list(failed) == ["10.0.0.1"] * 3


def test_forwarded_for_is_read_only_as_far_as_the_trusted_proxies_wrote_it(client, settings):
    # Given two proxies of ours in front: each appends the address it saw
    settings.TRUSTED_PROXY_COUNT = 2
    user = UserFactory.create()
    headers = [
        "198.51.100.1, 203.0.113.50, 10.0.0.2",  # forged first hop, the client, the outer proxy's peer
        "203.0.113.51, 10.0.0.2",
        "203.0.113.52",  # fewer hops than proxies: did not come through them, REMOTE_ADDR counts
    ]
    # When sign-ins come through them
    for forwarded in headers:
        client.post(
            "/admin/login/",
            {"username": user.username, "password": "x" * 12},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=forwarded,
        )
    # Then the address is the hop the outermost proxy wrote, never one the client sent
    ips = list(SecurityEvent.objects.order_by("pk").values_list("ip", flat=True))
    assert ips == ["203.0.113.50", "203.0.113.51", "10.0.0.1"]


def test_idle_session_is_signed_out(client, settings):
    # Given a signed-in user whose last request was longer ago than the idle timeout
    settings.SESSION_IDLE_TIMEOUT = 600
    user = UserFactory.create(is_superuser=True)
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    session = client.session
    session[SessionIdleTimeoutMiddleware.SESSION_KEY] = int(time.time()) - 601
    session.save()

    # When they make the next request
    response = client.get("/admin/claims/claim/")

    # Then they are signed out and sent to sign in again
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    assert "_auth_user_id" not in client.session
    assert SecurityEvent.objects.filter(kind="idle_logout", user=user).count() == 1


def test_session_settings(settings):
    assert settings.SESSION_COOKIE_AGE == 8 * 60 * 60
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE is True
    assert settings.SESSION_IDLE_TIMEOUT == 30 * 60
    validators = [v["NAME"].rsplit(".", 1)[-1] for v in settings.AUTH_PASSWORD_VALIDATORS]
    assert validators == [
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    ]
    assert settings.AUTH_PASSWORD_VALIDATORS[1]["OPTIONS"] == {"min_length": 12}
