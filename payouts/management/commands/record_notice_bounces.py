"""Reads the bounce mailbox (a maildir) and records each failed payout notice (payouts/bounces.py).

    manage.py record_notice_bounces --maildir /var/mail/payout-bounces

Only messages in new/ are read; each is moved to cur/ and flagged seen once handled, so a run reads a
report once. Reading one again (a crash between recording and moving) changes nothing: a notice keeps
its first bounce.
"""

import mailbox
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from payouts.bounces import payout_notice_bounces_record


class Command(BaseCommand):
    help = "Records bounced payout notices from the delivery reports in a maildir (new/ only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--maildir", required=True, help="path of the maildir (with cur/ new/ tmp/)")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["maildir"])
        if not (path / "cur").is_dir() or not (path / "new").is_dir():
            raise CommandError(f"{path} is not a maildir (needs cur/ and new/)")
        box = mailbox.Maildir(path, factory=None, create=False)
        keys = sorted(key for key in box.iterkeys() if box.get_message(key).get_subdir() == "new")
        totals = {"recorded": 0, "already": 0, "unknown": 0, "ignored": 0}
        for key in keys:
            reading = payout_notice_bounces_record(messages=[box.get_bytes(key)])
            for name in totals:
                totals[name] += getattr(reading, name)
            message = box.get_message(key)
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message
        summary = ", ".join(f"{name}={count}" for name, count in totals.items())
        self.stdout.write(f"record_notice_bounces: {len(keys)} message(s): {summary}")
