"""`manage.py simulate_provider_callback PAYOUT_ID EVENT`: the provider simulator sends one signed callback
about an issued payout (voucher.redeemed / voucher.expired for ATM cash, code.delivered / code.failed for
point codes) — over HTTP to PAYOUT_PROVIDER_CALLBACK_URL when set, else in process through the same
verification. Prints the receiver's answer; exits 1 unless it was a 200."""

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payouts.models import Payout
from payouts.providers.callbacks import provider_callback_send


class Command(BaseCommand):
    help = "Send one signed provider callback about a payout, as the provider simulator would."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("payout_id", type=int)
        parser.add_argument("event", help="voucher.redeemed, voucher.expired, code.delivered or code.failed")
        parser.add_argument("--event-id", default=None, help="send this event id (e.g. to replay one)")

    def handle(self, *args: Any, **options: Any) -> None:
        payout = Payout.objects.filter(pk=options["payout_id"]).first()
        if payout is None:
            raise CommandError(f"payout {options['payout_id']} does not exist")
        try:
            sent = provider_callback_send(payout=payout, event_type=options["event"], event_id=options["event_id"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{sent.event_id}: {sent.status_code} {json.dumps(sent.body, ensure_ascii=False)}")
        if sent.status_code != 200:
            raise CommandError("the callback was refused", returncode=1)
