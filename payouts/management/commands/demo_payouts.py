"""`python manage.py demo_payouts`: payouts in every state, with their notices, for the demo claims (idempotent).

For the demo data (`load_demo`, `demo_claims`): the first program whose payout method has a provider gets
up to 12 approved claims (pending ones are approved through claims.review by the demo reviewer, with the
demo manager's second approval above the threshold), then — through the payout services, as finance
would — a batch is built and run, the notices are sent (to an in-memory mailbox: the demo never prints a
code), and a few payouts are moved on so that every state shows: created (in a paused batch), issued
(its notice still leased by a sender), notified, settled, expired, failed and cancelled; one notice is
re-sent by the finance user and one recorded as bounced. Running it again changes nothing (the demo batch
is recognised by its note). Needs PostgreSQL (payouts are created set-based in SQL).
"""

import datetime as dt
from typing import Any

from django.core.mail import get_connection
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from claims.models import Claim, ClaimStatus, Program
from claims.review import ClaimDecisionRefused, claim_approve
from payouts.batches import payout_batch_cancel, payout_batch_create, payout_batch_pause, payout_batch_run
from payouts.models import BatchStatus, NoticeStatus, Payout, PayoutBatch, PayoutNotice, PayoutStatus
from payouts.notices import payout_notice_record_bounce, payout_notice_resend, payout_notices_send
from payouts.providers import registered_methods
from payouts.services import payout_transition
from support_portal.core.demo_users import (
    demo_allow_production_argument,
    demo_refuse_in_production,
    demo_users_create,
)

DEMO_NOTE = "demo (demo_payouts)"
WANTED = 12


class Command(BaseCommand):
    help = "Creates payouts in every state (and their notices) for the demo approved claims (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        demo_allow_production_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        demo_refuse_in_production(command="demo_payouts", allowed=options["allow_production"])
        if connection.vendor != "postgresql":
            self.stdout.write("demo_payouts skipped: payouts are created set-based on PostgreSQL (set DATABASE_URL)")
            return
        if PayoutBatch.objects.filter(note=DEMO_NOTE).exists():
            self.stdout.write(f"demo_payouts: already there; payouts by status {self._counts()}")
            return
        users = {user.username: user for user in demo_users_create()}
        program = self._program()
        if program is None:
            self.stdout.write("demo_payouts skipped: no program with claims and an ATM / point-code method")
            return
        self._approve(program, reviewer=users["reviewer"], manager=users["manager"])
        finance = users["finance"]
        batch = payout_batch_create(program=program, actor=finance, note=DEMO_NOTE, start=True)
        payouts = list(Payout.objects.filter(batch=batch).order_by("pk"))
        if len(payouts) < 2:
            self.stdout.write(f"demo_payouts: {program.slug} has only {len(payouts)} approved claim(s) to pay")
        created_payout = payouts[0] if payouts else None
        if created_payout is not None:
            # A second, paused batch holds one payout: "created" stays visible (the sweep leaves batches alone).
            held = PayoutBatch.objects.create(
                program=program, created_by_id=finance.pk, note=DEMO_NOTE + " — paused", total_count=1
            )
            Payout.objects.filter(pk=created_payout.pk).update(batch=held)
            PayoutBatch.objects.filter(pk=batch.pk).update(total_count=len(payouts) - 1)
            payout_batch_pause(batch=held, actor=finance)
        payout_batch_run(batch_id=batch.pk)
        issued = list(Payout.objects.filter(batch=batch, status=PayoutStatus.ISSUED).order_by("pk"))
        if issued:
            # As if a sender died holding this notice: its payout shows "issued" until the lease runs out.
            PayoutNotice.objects.filter(payout=issued[0]).update(lease_until=timezone.now() + dt.timedelta(days=1))
        mailbox = get_connection("django.core.mail.backends.locmem.EmailBackend")
        while payout_notices_send(email_connection=mailbox).claimed:
            pass
        notified = list(Payout.objects.filter(batch=batch, status=PayoutStatus.NOTIFIED).order_by("pk"))
        moves = [
            (PayoutStatus.SETTLED, "demo: received at the ATM"),
            (PayoutStatus.SETTLED, "demo: received"),
            (PayoutStatus.EXPIRED, "demo: not received by the receipt deadline"),
            (PayoutStatus.FAILED, "demo: provider rejected the voucher"),
        ]
        for payout, (status, note) in zip(notified[-len(moves) :], moves, strict=False):
            payout_transition(payout_id=payout.pk, to=status, actor=finance, note=note)
        self._cancelled(program, finance=finance, reviewer=users["reviewer"])
        waiting = PayoutNotice.objects.filter(payout__batch=batch, status=NoticeStatus.SENT, payout__status="notified")
        first = waiting.order_by("pk").first()
        if first is not None:
            payout_notice_resend(notice=first, actor=finance)
            while payout_notices_send(email_connection=mailbox).claimed:
                pass
        last = waiting.order_by("-pk").first()
        if last is not None and last != first:
            payout_notice_record_bounce(notice_id=last.pk, reason="demo: 550 mailbox unavailable", actor=finance)
        self.stdout.write(f"demo_payouts: {program.slug}: payouts by status {self._counts()}")

    @staticmethod
    def _program() -> Program | None:
        methods = registered_methods()
        candidates = (
            Program.objects.filter(claims__status__in=[ClaimStatus.APPROVED, ClaimStatus.PENDING_REVIEW])
            .distinct()
            .order_by("pk")
        )
        for program in candidates:
            if program.default_payout_method in methods:
                return program
        return None

    @staticmethod
    def _approve(program: Program, *, reviewer: Any, manager: Any) -> None:
        have = Claim.objects.filter(program=program, status=ClaimStatus.APPROVED, payouts__isnull=True).count()
        pending = Claim.objects.filter(program=program, status=ClaimStatus.PENDING_REVIEW, eligible=True)
        for claim in pending.select_related("program").order_by("amount_jpy", "pk")[: max(WANTED - have, 0)]:
            try:
                approved = claim_approve(claim=claim, actor=reviewer, note="demo_payouts")
                if approved.status == ClaimStatus.AWAITING_SECOND_APPROVAL:
                    claim_approve(claim=approved, actor=manager, note="demo_payouts: second approval")
            except ClaimDecisionRefused:
                continue

    @staticmethod
    def _cancelled(program: Program, *, finance: Any, reviewer: Any) -> None:
        """One cancelled payout: a scheduled batch of the next approved claim, cancelled by finance."""
        pending = Claim.objects.filter(program=program, status=ClaimStatus.PENDING_REVIEW, eligible=True)
        claim = pending.select_related("program").order_by("amount_jpy", "pk").first()
        if claim is None:
            return
        try:
            claim_approve(claim=claim, actor=reviewer, note="demo_payouts: to be cancelled")
        except ClaimDecisionRefused:
            return
        batch = payout_batch_create(program=program, actor=finance, note=DEMO_NOTE + " — cancelled")
        if batch.status == BatchStatus.SCHEDULED:
            payout_batch_cancel(batch=batch, actor=finance)

    @staticmethod
    def _counts() -> dict[str, int]:
        return dict(Payout.objects.values("status").annotate(n=Count("id")).values_list("status", "n"))
