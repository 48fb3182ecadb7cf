"""`python manage.py demo_banking`: bank transfers through a Zengin file and refunds to the original method
for the demo data (idempotent; needs PostgreSQL).

1. **Refunds to the original payment method.** For a refund program (overpayment, else cooling-off-7day,
   else any program paying by `original_method`) a few pending claims are approved by the demo reviewer
   (the demo manager gives the second approval above the threshold) — card/carrier charges, one app-store
   charge and one convenience-store / bank payment when the demo data has them pending — their payouts are
   created and the refund beat job (`refund_requests_send`) sends them through the original-method
   provider: sent requests, an "ask the store" one, and a re-offer as a bank transfer for a payment with no
   account to go back to.
2. **Bank transfers.** When fewer than 5 bank-transfer payouts wait for a file, 5 pending claims of a
   program that offers bank transfer (coupon-outage-2023 in the demo) are approved the same way and their
   bank-transfer payouts created (demo configuration first, commented below: the program's default method
   and its receipt deadline, which the historical demo data has long passed). For every waiting payout
   whose payee has no active account a deterministic demo account is recorded (source "customer"); then
   one transfer file is written (next business day, the first sender account), downloaded once, answered
   by the bank simulator (every `--return-every`-th transfer returned: 口座なし) and the answer imported —
   so the demo has settled, returned and re-offered bank payouts.

Running it again changes nothing: refunds are left alone once an original-method payout exists, the bank
part once a transfer file exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from claims.models import Claim, ClaimStatus, PayoutMethod, Program
from claims.review import ClaimDecisionRefused, claim_approve
from payouts.banking.conf import senders
from payouts.banking.models import BankAccount, BankAccountStatus, RefundRequest, ZenginExport
from payouts.banking.services import (
    AccountInput,
    BankingRefused,
    bank_account_record,
    bank_results_import,
    refund_requests_send,
    zengin_export_create,
    zengin_export_download,
)
from payouts.models import Payout, PayoutStatus
from payouts.services import payouts_create_for_approved_claims
from payouts.zengin import ZenginKanaError, customer_code_for, simulate_bank_results, to_zengin_kana
from support_portal.core.audit import audit_context
from support_portal.core.business_days import JST, business_calendar
from support_portal.customers.models import Charge, PaymentMethod

DEMO_BANKS = [("0005", "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ"), ("0009", "ﾐﾂｲｽﾐﾄﾓ"), ("0001", "ﾐｽﾞﾎ"), ("0036", "ﾗｸﾃﾝ")]
BANK_PROGRAM = "coupon-outage-2023"  # SPEC 001: the coupon outage may be paid by bank transfer
REFUND_PROGRAMS = ("overpayment", "cooling-off-7day")
BANK_CLAIMS = 5  # pending claims approved for bank transfer when none waits for a file
REFUND_CLAIMS = 2  # pending claims refunded to a card / carrier / points charge (+ one app-store charge)
NOTE = "demo_banking"
DEMO_RECEIPT_DAYS = 90  # the demo bank program's receipt deadline, from today, when it has passed


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


def _pending(program: Program) -> Any:
    return Claim.objects.filter(program=program, status=ClaimStatus.PENDING_REVIEW, eligible=True)


def _approve(claims: list[Claim], *, reviewer: Any, manager: Any) -> int:
    """Approves through claims.review (maker-checker: the manager gives the second approval); returns how many
    ended approved. A refused decision (e.g. the reviewer prepared the claim) is skipped."""
    approved = 0
    for claim in claims:
        try:
            decided = claim_approve(claim=claim, actor=reviewer, note=NOTE)
            if decided.status == ClaimStatus.AWAITING_SECOND_APPROVAL and manager is not None:
                decided = claim_approve(claim=decided, actor=manager, note=f"{NOTE}: second approval")
        except ClaimDecisionRefused:
            continue
        approved += decided.status == ClaimStatus.APPROVED
    return approved


class Command(BaseCommand):
    help = (
        "Demo refunds to the original method, and a Zengin transfer file with a simulated bank answer "
        "for the demo bank payouts (idempotent)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--username", default="finance", help="who writes and imports (default: the demo finance user)"
        )
        parser.add_argument("--limit", type=int, default=5000, help="transfers in the file at most")
        parser.add_argument("--return-every", type=int, default=5, help="every n-th transfer is returned")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("demo_banking skipped: payouts are created set-based on PostgreSQL (set DATABASE_URL)")
            return
        users = get_user_model().objects.filter(is_active=True)
        # The named user (the demo's "finance"), else the first superuser.
        actor = (
            users.filter(username=options["username"]).first() or users.filter(is_superuser=True).order_by("pk").first()
        )
        if actor is None:
            raise CommandError("no such user and no superuser (run demo_users first or pass --username)")
        reviewer = users.filter(username="reviewer").first()
        manager = users.filter(username="manager").first()
        self._refunds(actor=actor, reviewer=reviewer, manager=manager)
        self._bank(actor=actor, reviewer=reviewer, manager=manager, options=options)

    # --- refunds to the original payment method ------------------------------------------------------

    def _refunds(self, *, actor: Any, reviewer: Any, manager: Any) -> None:
        if Payout.objects.filter(method=PayoutMethod.ORIGINAL_METHOD).exists():
            self.stdout.write(f"demo_banking: refunds already there; refund requests by outcome {self._outcomes()}")
            return
        program = self._refund_program()
        if program is None or reviewer is None:
            self.stdout.write("demo_banking: no refunds (no refund program with pending claims, or no demo reviewer)")
            return
        approved = _approve(self._refund_claims(program), reviewer=reviewer, manager=manager)
        created = payouts_create_for_approved_claims(program=program, actor=actor, method=PayoutMethod.ORIGINAL_METHOD)
        run = refund_requests_send()  # the refund beat job: prepare, send, re-offer, flag
        self.stdout.write(
            f"demo_banking: {program.slug}: {approved} claims approved, {created} refund payouts; "
            f"{run.sent} refunds sent, {run.failed} not sent, {run.reoffered} re-offered as bank transfer; "
            f"refund requests by outcome {self._outcomes()}"
        )

    @staticmethod
    def _refund_program() -> Program | None:
        programs = {
            p.slug: p
            for p in Program.objects.filter(default_payout_method=PayoutMethod.ORIGINAL_METHOD).order_by("pk")
            if _pending(p).exists()
        }
        for slug in REFUND_PROGRAMS:
            if slug in programs:
                return programs[slug]
        return next(iter(programs.values()), None)

    @staticmethod
    def _refund_claims(program: Program) -> list[Claim]:
        """REFUND_CLAIMS claims whose charge can be refunded to its method, one app-store charge (ask the store)
        and one paid with no account to refund to (re-offered as a bank transfer), each when there is one."""
        claims = list(_pending(program).select_related("program").order_by("amount_jpy", "pk")[:500])
        methods = {
            charge.charge_id: charge.payment_method or charge.subscription.payment_method
            for charge in Charge.objects.filter(charge_id__in=[c.subject for c in claims]).select_related(
                "subscription"
            )
        }
        refundable = [c for c in claims if methods.get(c.subject) in (PaymentMethod.CARD, PaymentMethod.CARRIER)]
        app_store = [c for c in claims if methods.get(c.subject) in PaymentMethod.app_store_methods()]
        no_account = [c for c in claims if methods.get(c.subject) in (PaymentMethod.CONVENIENCE, PaymentMethod.BANK)]
        return refundable[:REFUND_CLAIMS] + app_store[:1] + no_account[:1]

    @staticmethod
    def _outcomes() -> dict[str, int]:
        rows = RefundRequest.objects.values("outcome").annotate(n=Count("id")).values_list("outcome", "n")
        return dict(sorted(rows))

    # --- bank transfers --------------------------------------------------------------------------------

    def _waiting(self, limit: int) -> list[Payout]:
        return list(
            Payout.objects.filter(
                method=PayoutMethod.BANK_TRANSFER, status=PayoutStatus.CREATED, claim__status=ClaimStatus.APPROVED
            )
            .select_related("payee")
            .order_by("pk")[:limit]
        )

    def _bank(self, *, actor: Any, reviewer: Any, manager: Any, options: dict[str, Any]) -> None:
        if ZenginExport.objects.exists():
            counts = dict(
                sorted(
                    Payout.objects.filter(method=PayoutMethod.BANK_TRANSFER)
                    .values("status")
                    .annotate(n=Count("id"))
                    .values_list("status", "n")
                )
            )
            self.stdout.write(f"demo_banking: transfer file already there; bank payouts by status {counts}")
            return
        payouts = self._waiting(options["limit"])
        if len(payouts) < BANK_CLAIMS and reviewer is not None:
            self._bank_payouts(actor=actor, reviewer=reviewer, manager=manager)
            payouts = self._waiting(options["limit"])
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

    def _bank_payouts(self, *, actor: Any, reviewer: Any, manager: Any) -> None:
        """Bank-transfer payouts for BANK_CLAIMS pending claims of a program that offers bank transfer."""
        program = self._bank_program()
        if program is None:
            self.stdout.write("demo_banking: no program offering bank transfer has pending claims")
            return
        chosen = list(
            _pending(program)
            .filter(payout_method=PayoutMethod.BANK_TRANSFER)
            .order_by("amount_jpy", "pk")[:BANK_CLAIMS]
        )
        if len(chosen) < BANK_CLAIMS and not program.default_payout_method:
            # Demo configuration (what an admin would set on the program page): the claims whose customer
            # chose no method are paid by bank transfer, so the demo has bank payouts to put in a file.
            with audit_context(actor=actor, action="demo_banking: program default payout method"):
                program.default_payout_method = PayoutMethod.BANK_TRANSFER
                program.save(update_fields=["default_payout_method"])
            more = _pending(program).filter(payout_method="").exclude(pk__in=[c.pk for c in chosen])
            chosen += list(more.order_by("amount_jpy", "pk")[: BANK_CLAIMS - len(chosen)])
        today = timezone.localdate(timezone=JST)
        if program.receipt_deadline is not None and program.receipt_deadline < today + dt.timedelta(days=30):
            # Demo configuration: the demo programs are historical (the coupon outage's receipt deadline is
            # 2023-05-31), so payouts made today would be past their deadline and never go into a file.
            # Extended as an admin would on the program page, before the payouts take it as their deadline.
            with audit_context(actor=actor, action="demo_banking: receipt deadline extended"):
                program.receipt_deadline = today + dt.timedelta(days=DEMO_RECEIPT_DAYS)
                program.save(update_fields=["receipt_deadline"])
        approved = _approve(chosen, reviewer=reviewer, manager=manager)
        created = payouts_create_for_approved_claims(program=program, actor=actor, method=PayoutMethod.BANK_TRANSFER)
        self.stdout.write(f"demo_banking: {program.slug}: {approved} claims approved, {created} bank-transfer payouts")

    @staticmethod
    def _bank_program() -> Program | None:
        programs = [p for p in Program.objects.order_by("pk") if PayoutMethod.BANK_TRANSFER in (p.payout_methods or [])]
        if not programs:
            program = Program.objects.filter(slug=BANK_PROGRAM).first()
            if program is None:
                return None
            # Demo configuration (SPEC 001 allows bank transfer for the coupon outage): offer it.
            with audit_context(actor=None, action="demo_banking: program payout methods"):
                program.payout_methods = [*(program.payout_methods or []), PayoutMethod.BANK_TRANSFER]
                program.save(update_fields=["payout_methods"])
            programs = [program]
        with_claims = [p for p in programs if _pending(p).exists()]
        with_claims.sort(key=lambda p: p.slug != BANK_PROGRAM)
        return with_claims[0] if with_claims else None
