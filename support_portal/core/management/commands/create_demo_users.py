from typing import Any

from django.core.management.base import BaseCommand, CommandError

from support_portal.core.demo_users import DEMO_PASSWORD, demo_users_create, is_production_settings


class Command(BaseCommand):
    help = "Creates one demo staff user per role (agent, reviewer, manager, finance) and prints the logins."

    def handle(self, *args: Any, **options: Any) -> None:
        if is_production_settings():
            raise CommandError("Demo users are never created under production settings.")
        users = demo_users_create()
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD}):"))
        for user in users:
            roles = ", ".join(user.groups.values_list("name", flat=True)) or "all (superuser)"
            self.stdout.write(f"  {user.username:<10} roles: {roles}")
