"""Reads the bounce mailbox (a maildir) and records each failed payout notice (payouts/bounces.py).

    manage.py record_notice_bounces --maildir /var/mail/payout-bounces

Only messages in new/ are read; each is moved to cur/ and flagged seen once handled, so a run reads a
report once. Reading one again (a crash between recording and moving) changes nothing: a notice keeps
its first bounce.
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from payouts.bounces import payout_notice_bounces_record
from support_portal.core.maildir import add_maildir_argument, new_messages, open_maildir


class Command(BaseCommand):
    help = "Records bounced payout notices from the delivery reports in a maildir (new/ only)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_maildir_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        box = open_maildir(options["maildir"])
        totals = {"recorded": 0, "already": 0, "unknown": 0, "ignored": 0}
        read = 0
        for _key, raw in new_messages(box):
            reading = payout_notice_bounces_record(messages=[raw])
            read += 1
            for name in totals:
                totals[name] += getattr(reading, name)
        summary = ", ".join(f"{name}={count}" for name, count in totals.items())
        self.stdout.write(f"record_notice_bounces: {read} message(s): {summary}")
