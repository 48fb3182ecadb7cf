"""Re-encrypts every payout token (codes, account numbers, bank files) with the first PAYOUT_ENCRYPTION_KEY.

    PAYOUT_ENCRYPTION_KEY=<new>,<old> manage.py rotate_payout_key

Then drop <old> from the variable. Safe to stop and run again (payouts/key_rotation.py).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from payouts.key_rotation import payout_key_rotate


class Command(BaseCommand):
    help = "Re-encrypts every stored payout token with the first key of PAYOUT_ENCRYPTION_KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--chunk-size", type=int, default=500, help="rows per transaction")

    def handle(self, *args: Any, **options: Any) -> None:
        counts = payout_key_rotate(chunk_size=options["chunk_size"])
        summary = ", ".join(f"{column}={rows}" for column, rows in counts.items())
        self.stdout.write(f"rotate_payout_key: {summary}")
