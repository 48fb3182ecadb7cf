"""Removes a user's two-factor device and recovery codes (lost phone); they enroll again at next sign-in."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from support_portal.accounts.services import device_reset


class Command(BaseCommand):
    help = "Reset the two-factor device of a staff user (after checking who is asking, out of band)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        device_reset(user=user, actor=None)
        self.stdout.write(f"Two-factor reset for {user.get_username()}: they enroll again at their next sign-in.")
