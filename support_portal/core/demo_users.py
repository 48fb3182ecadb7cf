"""Demo staff accounts for a first run; refused under production settings by the command."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group

DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105 - printed on purpose for local demos only
DEMO_ROLES = ("agent", "reviewer", "manager", "finance")


def demo_users_create() -> list[AbstractUser]:
    """Creates (or resets) one staff user per role plus a superuser `admin`; safe to run twice."""
    user_model = get_user_model()
    users: list[AbstractUser] = []
    for username in (*DEMO_ROLES, "admin"):
        user, _created = user_model.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.jp"}
        )
        user.is_staff = True
        user.is_superuser = username == "admin"
        user.set_password(DEMO_PASSWORD)
        user.save()
        if username in DEMO_ROLES:
            user.groups.set([Group.objects.get(name=username)])
        users.append(user)
    return users
