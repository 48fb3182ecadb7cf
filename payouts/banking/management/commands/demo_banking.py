"""Demo: a Zengin transfer file and the bank's simulated answer for the demo's bank-transfer payouts.

For every created bank-transfer payout whose payee has no active account, a deterministic demo account is
recorded (source "customer"); then one transfer file is written (next business day, the first sender
account), downloaded once, answered by the bank simulator (every `--return-every`-th transfer returned:
口座なし) and the answer imported — so the demo has settled, returned and re-offered bank payouts.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from claims.models import ClaimStatus, PayoutMethod
from payouts.banking.conf import senders
from payouts.banking.models import BankAccount, BankAccountStatus
from payouts.banking.services import (
    AccountInput,
    BankingRefused,
    bank_account_record,
    bank_results_import,
    zengin_export_create,
    zengin_export_download,
)
from payouts.models import Payout, PayoutStatus
from payouts.zengin import ZenginKanaError, customer_code_for, simulate_bank_results, to_zengin_kana
from support_portal.core.business_days import JST, business_calendar

DEMO_BANKS = [("0005", "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ"), ("0009", "ﾐﾂｲｽﾐﾄﾓ"), ("0001", "ﾐｽﾞﾎ"), ("0036", "ﾗｸﾃﾝ")]


def _demo_input(customer_id: str, name: str) -> AccountInput:
    digest = hashlib.sha256(customer_id.encode()).digest()
    bank_code, bank_name = DEMO_BANKS[digest[0] % len(DEMO_BANKS)]
    try:
        holder = to_zengin_kana(name)[:30].strip() or "ﾃﾞﾓ ﾀﾛｳ"
    except ZenginKanaError:
        holder = "ﾃﾞﾓ ﾀﾛｳ"  # kanji names: the customer would type the kana reading
    return AccountInput(
        bank_code=bank_code,
        bank_name=bank_name,
        branch_code=f"{digest[1] % 900 + 100:03d}",
        account_type="1",
        account_number=f"{int.from_bytes(digest[2:6], 'big') % 9_000_000 + 1_000_000:07d}",
        holder_name=holder,
    )


class Command(BaseCommand):
    help = "Writes a Zengin transfer file and imports a simulated bank result for the demo bank payouts."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--username", default="finance", help="who writes and imports (default: the demo finance user)"
        )
        parser.add_argument("--limit", type=int, default=5000, help="transfers in the file at most")
        parser.add_argument("--return-every", type=int, default=5, help="every n-th transfer is returned")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        users = user_model.objects.filter(is_active=True)
        # The named user (the demo's "finance"), else the first superuser.
        actor = (
            users.filter(username=options["username"]).first() or users.filter(is_superuser=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("no such user and no superuser (run demo_users first or pass --username)")
        payouts = list(
            Payout.objects.filter(
                method=PayoutMethod.BANK_TRANSFER, status=PayoutStatus.CREATED, claim__status=ClaimStatus.APPROVED
            )
            .select_related("payee")
            .order_by("pk")[: options["limit"]]
        )
        with_account = set(
            BankAccount.objects.filter(
                customer_id__in=[p.payee_id for p in payouts], status=BankAccountStatus.ACTIVE
            ).values_list("customer_id", flat=True)
        )
        recorded = 0
        for payout in payouts:
            if payout.payee_id in with_account:
                continue
            bank_account_record(
                customer=payout.payee,
                account_input=_demo_input(payout.payee_id, payout.payee.name),
                actor=None,
                source="customer",
            )
            with_account.add(payout.payee_id)
            recorded += 1
        today = timezone.localdate(timezone=JST)
        transfer_date = business_calendar().next_business_day(today)
        try:
            export = zengin_export_create(
                actor=actor, transfer_date=transfer_date, sender_key=next(iter(senders())), limit=options["limit"]
            )
        except BankingRefused as exc:
            self.stdout.write(f"demo_banking: no transfer file written ({exc})")
            return
        content = zengin_export_download(export=export, actor=actor)
        lines = list(export.lines.order_by("pk").values_list("payout_id", flat=True))
        every = max(options["return_every"], 1)
        returned = {customer_code_for(pk): "1" for index, pk in enumerate(lines, start=1) if index % every == 0}
        result = simulate_bank_results(content, returned=returned)
        record = bank_results_import(actor=actor, data=result, file_name=f"result_{export.file_name}")
        self.stdout.write(
            f"demo_banking: {recorded} demo accounts, export {export.pk} with {export.total_count} transfers "
            f"(¥{export.total_amount_jpy:,}, 取組日 {transfer_date}); result: {record.settled_count} settled, "
            f"{record.failed_count} returned, {record.reoffered_count} re-offered"
        )
