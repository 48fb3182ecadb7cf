"""TOTP two-factor: enrollment, the code step after the password, recovery codes, enforcement by settings."""

import os
import re
import subprocess
import sys

import pytest
from cryptography.fernet import InvalidToken
from django.test import Client

from support_portal.accounts import totp
from support_portal.accounts.crypto import secret_decrypt, secret_encrypt
from support_portal.accounts.models import RecoveryCode, SecurityEvent, TOTPDevice
from support_portal.accounts.services import (
    TwoFactorRefused,
    device_confirm,
    device_enroll_start,
    device_secret,
    otp_verify,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def require_2fa(settings):
    settings.REQUIRE_2FA = True


def _sign_in(client: Client, username: str) -> None:
    response = client.post("/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/"})
    assert response.status_code == 302


def _current_code(user) -> str:
    return totp.code_at(device_secret(device=TOTPDevice.objects.get(user=user)), totp.current_step())


def _enrolled(user) -> list[str]:
    device_enroll_start(user=user)
    secret = device_secret(device=TOTPDevice.objects.get(user=user))
    # the code of the previous step, so the test's own "current" code is still unused afterwards
    return device_confirm(user=user, code=totp.code_at(secret, totp.current_step() - 1), ip=None)


def test_rfc6238_reference_vector():
    # RFC 6238 appendix B (SHA-1, secret "12345678901234567890"), T = 59 s → 94287082 (8 digits) → 287082
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp.code_at(secret, 59 // 30) == "287082"
    assert totp.matching_step(secret, "287082", now=59) == 1
    assert totp.matching_step(secret, "287083", now=59) is None
    assert totp.matching_step(secret, "abc", now=59) is None


@pytest.mark.parametrize("path", ["/admin/", "/admin/claims/claim/", "/admin/auth/user/", "/admin/password_change/"])
def test_without_a_device_a_staff_user_reaches_only_enrollment(require_2fa, client, path):
    # Given a superuser (every permission) who signed in with the password but has no device
    user = UserFactory.create(is_superuser=True)
    _sign_in(client, user.username)

    # When they open an admin page
    response = client.get(path)

    # Then they are sent to enrollment, with the page as "next", and see nothing of the admin page
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/setup/?next=")


def test_enrollment_then_admin(require_2fa, client):
    # Given a staff user signed in with the password only
    user = UserFactory.create(is_superuser=True)
    _sign_in(client, user.username)

    # When they open enrollment, the page shows a QR code and the key
    page = client.get("/accounts/two-factor/setup/?next=/admin/claims/claim/")
    assert page.status_code == 200
    assert b"<svg" in page.content
    assert "otpauth://totp/" in page.content.decode()
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed_at is None
    # and a wrong code is refused
    wrong = client.post("/accounts/two-factor/setup/", {"code": "000000", "next": "/admin/claims/claim/"})
    assert wrong.status_code == 200
    assert client.get("/admin/").status_code == 302

    # When they confirm with the app's current code
    done = client.post("/accounts/two-factor/setup/", {"code": _current_code(user), "next": "/admin/claims/claim/"})

    # Then the recovery codes are shown once, 10 of them, stored only as hashes
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", done.content.decode())
    assert len(codes) == 10
    stored = set(RecoveryCode.objects.filter(user=user).values_list("code_hash", flat=True))
    assert len(stored) == 10
    assert not stored & set(codes)
    # and the admin opens
    assert client.get("/admin/").status_code == 200
    kinds = list(SecurityEvent.objects.filter(user=user).order_by("pk").values_list("kind", flat=True))
    assert kinds == ["login_succeeded", "otp_failed", "device_enrolled", "otp_verified"]


def test_code_step_after_every_password_sign_in(require_2fa, client):
    # Given an enrolled staff user
    user = UserFactory.create(is_superuser=True)
    _enrolled(user)

    # When they sign in with the password
    _sign_in(client, user.username)

    # Then the admin sends them to the code step, not to enrollment
    response = client.get("/admin/claims/claim/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/two-factor/?next=")
    assert client.get("/accounts/two-factor/setup/").status_code == 302  # no re-enrollment without the code

    # When they give a wrong code, then the current code
    assert client.post("/accounts/two-factor/", {"code": "123456"}).status_code == 200
    assert client.get("/admin/").status_code == 302
    ok = client.post("/accounts/two-factor/", {"code": _current_code(user), "next": "/admin/claims/claim/"})

    # Then they land on the page they asked for and the admin opens
    assert ok.status_code == 302
    assert ok["Location"] == "/admin/claims/claim/"
    assert client.get("/admin/").status_code == 200


def test_a_totp_code_is_accepted_only_once(require_2fa, client):
    user = UserFactory.create(is_superuser=True)
    _enrolled(user)
    code = _current_code(user)
    _sign_in(client, user.username)
    assert client.post("/accounts/two-factor/", {"code": code}).status_code == 302

    # When another session replays the same code
    other = Client()
    _sign_in(other, user.username)
    replay = other.post("/accounts/two-factor/", {"code": code})

    # Then it is refused
    assert replay.status_code == 200
    assert other.get("/admin/").status_code == 302
    assert SecurityEvent.objects.filter(user=user, kind="otp_failed", detail__replay=True).count() == 1


def test_recovery_code_works_once(require_2fa, client):
    user = UserFactory.create(is_superuser=True)
    codes = _enrolled(user)
    _sign_in(client, user.username)

    # When they sign in with a recovery code (any case, dash optional)
    response = client.post("/accounts/two-factor/", {"code": codes[0].upper().replace("-", "")})

    # Then it is accepted, marked used, and refused the second time
    assert response.status_code == 302
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1
    other = Client()
    _sign_in(other, user.username)
    assert other.post("/accounts/two-factor/", {"code": codes[0]}).status_code == 200
    assert other.get("/admin/").status_code == 302


def test_regenerating_recovery_codes_invalidates_the_old_ones(require_2fa, client):
    user = UserFactory.create(is_superuser=True)
    old_codes = _enrolled(user)
    _sign_in(client, user.username)
    client.post("/accounts/two-factor/", {"code": _current_code(user)})

    response = client.post("/accounts/two-factor/recovery-codes/")

    assert response.status_code == 200
    new_codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", response.content.decode())
    assert len(new_codes) == 10
    assert not set(new_codes) & set(old_codes)
    other = Client()
    _sign_in(other, user.username)
    assert other.post("/accounts/two-factor/", {"code": old_codes[1]}).status_code == 200


def test_without_require_2fa_password_sign_in_is_enough(client):
    # Dev/test default: REQUIRE_2FA is False
    user = UserFactory.create(is_superuser=True)
    _sign_in(client, user.username)
    assert client.get("/admin/").status_code == 200


def test_totp_secret_is_encrypted_at_rest():
    user = UserFactory.create()
    device = device_enroll_start(user=user)
    secret = device_secret(device=device)
    assert re.fullmatch(r"[A-Z2-7]{32}", secret)
    assert secret not in device.encrypted_secret


def test_next_must_stay_on_this_site(require_2fa, client):
    user = UserFactory.create(is_superuser=True)
    _enrolled(user)
    _sign_in(client, user.username)
    response = client.post("/accounts/two-factor/", {"code": _current_code(user), "next": "https://evil.example/"})
    assert response["Location"] == "/admin/"


def test_manage_page_shows_codes_left(require_2fa, client):
    user = UserFactory.create(is_superuser=True)
    codes = _enrolled(user)
    _sign_in(client, user.username)
    client.post("/accounts/two-factor/", {"code": codes[0]})

    page = client.get("/accounts/two-factor/manage/")

    assert page.status_code == 200
    assert 'action="/accounts/two-factor/recovery-codes/"' in page.text
    assert "9" in page.text.split('id="codes-left"')[1].split("</p>")[0]


def test_manage_without_device_goes_to_enrollment(client):
    client.force_login(UserFactory.create())
    assert client.get("/accounts/two-factor/manage/")["Location"] == "/accounts/two-factor/setup/"


def test_a_totp_secret_survives_a_secret_key_rotation_while_the_old_key_is_a_fallback(settings):
    # Given a TOTP secret encrypted under the current key
    old_key = "old-" + "k" * 60
    settings.SECRET_KEY = old_key
    settings.SECRET_KEY_FALLBACKS = []
    token = secret_encrypt("JBSWY3DPEHPK3PXP")

    # When the key is rotated with the old one listed as a fallback, it still decrypts
    settings.SECRET_KEY = "new-" + "n" * 60
    settings.SECRET_KEY_FALLBACKS = [old_key]
    assert secret_decrypt(token) == "JBSWY3DPEHPK3PXP"

    # And once the fallback is dropped it no longer does
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(InvalidToken):
        secret_decrypt(token)


def test_the_secret_key_fallbacks_come_from_the_environment():
    # Given the variable set as the README says, when the settings load, then Django sees both old keys
    env = {**os.environ, "DJANGO_SECRET_KEY_FALLBACKS": "first-old-key,second-old-key"}
    shown = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"],
        env={**env, "DJANGO_SETTINGS_MODULE": "support_portal.settings.base"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "['first-old-key', 'second-old-key']"


OLD_KEY = "old-" + "k" * 60
NEW_KEY = "new-" + "n" * 60


def test_recovery_codes_work_after_a_rotation_while_the_old_key_is_a_fallback(settings):
    # Given codes issued under the old key
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    user = UserFactory.create()
    codes = _enrolled(user)

    # When the key is rotated with the old one as a fallback, a recovery code still signs in (once)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert otp_verify(user=user, code=codes[0], ip=None) == "recovery_code"
    with pytest.raises(TwoFactorRefused):
        otp_verify(user=user, code=codes[0], ip=None)
    assert RecoveryCode.objects.filter(user=user, used_at__isnull=False).count() == 1


def test_enrollment_started_under_a_rotated_out_key_starts_again_instead_of_failing(require_2fa, client, settings):
    # Given an enrollment begun (not confirmed) under the old key, which is then dropped entirely
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    user = UserFactory.create(is_superuser=True)
    device_enroll_start(user=user)
    old_secret = TOTPDevice.objects.get(user=user).encrypted_secret
    settings.SECRET_KEY = NEW_KEY
    _sign_in(client, user.username)

    # When the user opens enrollment, they get a new secret (a page, not a 500), and can confirm it
    page = client.get("/accounts/two-factor/setup/")
    assert page.status_code == 200 and "otpauth://totp/" in page.text
    device = TOTPDevice.objects.get(user=user)
    assert device.encrypted_secret != old_secret and device.confirmed_at is None
    confirmed = client.post("/accounts/two-factor/setup/", {"code": _current_code(user)})
    assert confirmed.status_code == 200
    assert TOTPDevice.objects.get(user=user).confirmed_at is not None


def test_a_device_under_a_rotated_out_key_gets_a_clear_refusal_not_a_500(require_2fa, client, settings):
    # Given a confirmed device under the old key, and the old key dropped without a fallback
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    user = UserFactory.create(is_superuser=True)
    _enrolled(user)
    device = TOTPDevice.objects.get(user=user)
    settings.SECRET_KEY = NEW_KEY
    _sign_in(client, user.username)
    failures_before = SecurityEvent.objects.filter(user=user, kind=SecurityEvent.Kind.OTP_FAILED).count()

    # When they enter a code at the second step
    response = client.post("/accounts/two-factor/", {"code": "123456", "next": "/admin/"})

    # Then the page says what happened and what to do, the failure is recorded, and nothing is let through
    assert response.status_code == 200
    assert response.context["form"].errors["code"] == [
        "サーバーの鍵が変更されたため、お使いの二要素認証デバイスを確認できなくなりました。"
        "リカバリーコードでサインインするか、マネージャーに二要素認証のリセットを依頼してください。"
    ]
    failures = SecurityEvent.objects.filter(user=user, kind=SecurityEvent.Kind.OTP_FAILED).order_by("-pk")
    assert failures.count() == failures_before + 1
    assert [f.detail for f in failures[:1]] == [{"replay": False, "unreadable": True}]
    assert client.get("/admin/").status_code == 302
    device.refresh_from_db()
    assert device.last_step is not None  # unchanged from the confirmation; no new step accepted
