"""Demo commands under production settings: refused without --allow-production, never the published password."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from support_portal.core.demo_users import DEMO_PASSWORD, DEMO_ROLES
from support_portal.core.roles import roles_sync

PRODUCTION = override_settings(SETTINGS_MODULE="support_portal.settings.production")


@pytest.mark.django_db
@pytest.mark.parametrize("command", ["demo_claims", "demo_payouts"])
def test_demo_command_refuses_to_run_under_production_settings(command):
    # Given production settings and the roles in place
    roles_sync()

    # When the demo command runs without the flag
    with PRODUCTION, pytest.raises(CommandError) as refused:
        call_command(command, stdout=io.StringIO())

    # Then it stops with a message naming the flag, and no user was created
    assert str(refused.value) == (
        f"{command} refused under production settings: it creates demo users and data. "
        "Pass --allow-production to run it anyway (demo users then get no usable password)."
    )
    assert get_user_model().objects.count() == 0


@pytest.mark.django_db
def test_demo_command_with_the_flag_creates_no_known_password_and_leaves_existing_users_alone():
    # Given production settings and a real administrator who happens to be called "admin"
    roles_sync()
    admin = get_user_model().objects.create_user(username="admin", password="their-own-secret", is_staff=True)

    # When demo_claims runs with --allow-production (no programs: it only sets up its users)
    with PRODUCTION:
        call_command("demo_claims", "--allow-production", stdout=io.StringIO())

    # Then the demo role users exist without a usable password, and "admin" is exactly as it was
    users = {user.username: user for user in get_user_model().objects.all()}
    assert set(users) == {*DEMO_ROLES, "admin"}
    for username in DEMO_ROLES:
        assert not users[username].has_usable_password()
        assert not users[username].check_password(DEMO_PASSWORD)
        assert not users[username].is_superuser
    admin.refresh_from_db()
    assert admin.check_password("their-own-secret")
    assert not admin.is_superuser


@pytest.mark.django_db
def test_demo_command_outside_production_still_sets_the_demo_password():
    # Given development settings (the test settings)
    roles_sync()

    # When demo_claims runs
    call_command("demo_claims", stdout=io.StringIO())

    # Then every demo user signs in with the published password, and admin is the superuser
    users = {user.username: user for user in get_user_model().objects.all()}
    assert all(user.check_password(DEMO_PASSWORD) for user in users.values())
    assert users["admin"].is_superuser
