"""`python manage.py demo_claims`: the seven programs, run, with claims in the review states (idempotent).

For the demo customers already loaded (`load_demo`): every program template is moved to open
(draft → preview → open, through program_set_status), run (program_run: set-based, idempotent), its
eligible claims sent to review, and — only the first time, when the program has no review decision
yet — a few claims decided through the review services by the demo users so that each state shows:
approved (one or two approvals), rejected, information requested, awaiting a second approval (when a
claim is above the program's threshold); the rest stay pending review, ineligible ones computed.
Running it again changes nothing. Needs PostgreSQL (the engine is SQL).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count

from claims.engine import EngineNeedsPostgreSQL, require_postgresql
from claims.models import Claim, ClaimDecision, ClaimStatus, Policy, Program, RejectReason
from claims.review import ClaimDecisionRefused, claim_approve, claim_reject, claim_request_info
from claims.services import program_claims_submit_for_review, program_run, program_set_status
from support_portal.core.demo_users import (
    demo_allow_production_argument,
    demo_refuse_in_production,
    demo_users_create,
)


class Command(BaseCommand):
    help = "Sets up the seven programs with claims in every review state for the demo customers (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        demo_allow_production_argument(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        demo_refuse_in_production(command="demo_claims", allowed=options["allow_production"])
        try:
            require_postgresql()
        except EngineNeedsPostgreSQL as exc:
            self.stdout.write(f"demo_claims skipped: {exc}")
            return
        users = {user.username: user for user in demo_users_create()}
        manager, reviewer = users["manager"], users["reviewer"]
        for program in Program.objects.filter(slug__in=Policy.values).order_by("pk"):
            for status in (Program.Status.PREVIEW, Program.Status.OPEN):
                if program.can_set_status(status):
                    program_set_status(program=program, status=status, actor=manager)  # updates program.status
            if not program.can_run():
                self.stdout.write(f"{program.slug}: {program.status}, not run")
                continue
            result = program_run(program=program, actor=manager)
            sent = program_claims_submit_for_review(program=program, actor=manager)
            decided = self._decide_examples(program, manager=manager, reviewer=reviewer)
            counts = dict(self._status_counts(program))
            self.stdout.write(
                f"{program.slug}: {result.total} claims ({result.created} new), {sent} sent to review, "
                f"{decided} decided now; by status {counts}"
            )

    @staticmethod
    def _status_counts(program: Program) -> list[tuple[str, int]]:
        return list(
            Claim.objects.filter(program=program).values("status").annotate(n=Count("id")).values_list("status", "n")
        )

    @staticmethod
    def _decide_examples(program: Program, *, manager: Any, reviewer: Any) -> int:
        """The first time only: one claim per review outcome (the demo users decide, maker-checker applies)."""
        if ClaimDecision.objects.filter(claim__program=program).exists():
            return 0
        pending = list(
            Claim.objects.filter(program=program, status=ClaimStatus.PENDING_REVIEW, eligible=True)
            .select_related("program")
            .order_by("-amount_jpy", "subject")[:4]
        )
        steps = [
            # approved; above the threshold the manager gives the second approval
            lambda claim: (claim_approve(claim=claim, actor=reviewer), claim_approve(claim=claim, actor=manager)),
            lambda claim: claim_reject(
                claim=claim, actor=reviewer, reason_code=RejectReason.INSUFFICIENT_EVIDENCE, note="demo"
            ),
            lambda claim: claim_request_info(claim=claim, actor=reviewer, note="demo: please send the receipt"),
            # one approval only: awaiting a second approval when above the threshold, else approved
            lambda claim: claim_approve(claim=claim, actor=reviewer),
        ]
        decided = 0
        for claim, step in zip(pending, steps, strict=False):
            try:
                step(claim)
            except ClaimDecisionRefused:
                continue
            decided += 1
        return decided
