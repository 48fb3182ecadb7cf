"""Demo ticket desk for `make run` (queues, SLAs, canned replies, tickets for the demo customers)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support_portal.tickets.demo import demo_tickets_create


class Command(BaseCommand):
    help = "Creates demo queues, canned replies and tickets (some breached, some merged); safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tickets", type=int, default=600, help="tickets to create (default 600)")
        parser.add_argument("--days", type=int, default=30, help="spread over the last N days (default 30)")
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["tickets"] < 0 or options["days"] < 7:
            raise CommandError("--tickets must be >= 0 and --days >= 7")
        outcome = demo_tickets_create(tickets=options["tickets"], days=options["days"], seed=options["seed"])
        if outcome.tickets_created == 0:
            self.stdout.write("Demo tickets already exist; queues and canned replies are up to date.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Created {outcome.tickets_created} demo tickets in {outcome.queues} queues "
                f"with {outcome.canned_replies} canned replies."
            )
        )
