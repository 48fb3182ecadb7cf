"""Reads customer mail from a maildir and threads it onto tickets (see support_portal/tickets/mail.py).

    manage.py fetch_ticket_mail --maildir /var/mail/support

Messages in new/ are moved to cur/ and flagged seen once stored; running again over the same mail
stores nothing twice (the Message-ID is unique), so a crash between storing and moving is harmless.
"""

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from support_portal.core.maildir import add_maildir_argument, open_maildir
from support_portal.tickets.mail import parse_mail, ticket_receive_mail


class Command(BaseCommand):
    help = "Reads a maildir of customer replies into tickets (threads by headers, then [#T-id] token)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_maildir_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        box = open_maildir(options["maildir"])
        outcomes: Counter[str] = Counter()
        for key in sorted(box.keys()):
            message = box.get_message(key)
            raw = box.get_bytes(key)
            result = ticket_receive_mail(mail=parse_mail(raw))
            outcomes[result.outcome] += 1
            if message.get_subdir() == "new":
                message.set_subdir("cur")
                message.add_flag("S")
                box[key] = message
        summary = ", ".join(f"{name}={count}" for name, count in sorted(outcomes.items())) or "no mail"
        self.stdout.write(f"fetch_ticket_mail: {summary}")
