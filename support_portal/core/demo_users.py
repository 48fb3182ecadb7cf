"""Demo staff accounts for a first run; never with the published password under production settings."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.core.management.base import CommandError, CommandParser

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed on purpose for local demos only
DEMO_ROLES = ("agent", "reviewer", "manager", "finance")
ALLOW_PRODUCTION_FLAG = "--allow-production"


def is_production_settings() -> bool:
    return str(getattr(settings, "SETTINGS_MODULE", "") or "").endswith(".production")


def demo_allow_production_argument(parser: CommandParser) -> None:
    parser.add_argument(
        ALLOW_PRODUCTION_FLAG,
        action="store_true",
        help="run under production settings anyway: demo users are created without a usable password "
        "and existing users are left untouched",
    )


def demo_refuse_in_production(*, command: str, allowed: bool) -> None:
    """Stops a demo command under production settings unless its operator passed --allow-production."""
    if is_production_settings() and not allowed:
        raise CommandError(
            f"{command} refused under production settings: it creates demo users and data. "
            f"Pass {ALLOW_PRODUCTION_FLAG} to run it anyway (demo users then get no usable password)."
        )


def demo_users_create() -> list[AbstractUser]:
    """One staff user per role plus a superuser `admin`; safe to run twice.

    Outside production the users are created (or reset) with DEMO_PASSWORD. Under production settings
    (a demo command run with --allow-production) the published password is never set: missing users are
    created with an unusable password, and an existing user with a demo name is not modified at all."""
    production = is_production_settings()
    user_model = get_user_model()
    users: list[AbstractUser] = []
    for username in (*DEMO_ROLES, "admin"):
        user, created = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.jp"}
        )
        if production and not created:
            users.append(user)
            continue
        user.is_staff = True
        user.is_superuser = username == "admin"
        if production:
            user.set_unusable_password()
        else:
            user.set_password(DEMO_PASSWORD)
        user.save()
        if username in DEMO_ROLES:
            user.groups.set([Group.objects.get(name=username)])
        users.append(user)
    return users
