"""Payouts' figures for /metrics and the Operations health page (registered in PayoutsConfig.ready()).

- payouts by status: exact below 100,000 payouts, above that the planner's statistics for the status
  column (pg_stats; refreshed by autovacuum's ANALYZE) — `portal_figure_estimated` says which;
- payouts still to issue (status `created`), unbatched and in batches: read through the partial indexes
  payout_unbatched_due_idx / payout_batch_todo_idx, counted up to COUNT_CAP (then estimated), and the age
  of the oldest unbatched one (the sweep's look-up order);
- outbox notices pending and the age of the oldest (partial index payout_notice_todo_idx, id order);
- batches by status (one row per batch: a small table).
"""

from __future__ import annotations

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payouts.models import BatchStatus, NoticeStatus, Payout, PayoutBatch, PayoutNotice, PayoutStatus
from support_portal.core.monitoring.counts import count_or_estimate, value_counts
from support_portal.core.monitoring.figures import Figure


def payouts_figures() -> list[Figure]:
    now = timezone.now()
    by_status, status_estimated = value_counts(Payout, "status")
    created = Payout.objects.filter(status=PayoutStatus.CREATED)
    unbatched, unbatched_estimated = count_or_estimate(created.filter(batch__isnull=True))
    batched, batched_estimated = count_or_estimate(created.filter(batch__isnull=False))
    oldest_unbatched = (
        created.filter(batch__isnull=True).order_by("updated_at").values_list("updated_at", flat=True).first()
    )
    pending = PayoutNotice.objects.filter(status=NoticeStatus.PENDING)
    notices, notices_estimated = count_or_estimate(pending)
    oldest_notice = pending.order_by("id").values_list("created_at", flat=True).first()
    batches = dict(PayoutBatch.objects.order_by().values_list("status").annotate(n=Count("pk")))
    return [
        Figure(
            name="portal_payouts",
            help=_("Payouts by status"),
            labels=("status",),
            samples=tuple(((status,), float(by_status.get(status, 0))) for status in PayoutStatus.values),
            estimated=status_estimated,
        ),
        Figure(
            name="portal_payouts_to_issue",
            help=_("Payouts created and not yet issued, in a batch or on their own (the sweep's)"),
            labels=("batched",),
            samples=((("no",), float(unbatched)), (("yes",), float(batched))),
            backlog=_("Payouts to issue"),
            estimated=unbatched_estimated or batched_estimated,
        ),
        Figure(
            name="portal_payouts_to_issue_oldest_age_seconds",
            help=_("Seconds since the oldest unbatched payout to issue last changed (0: none)"),
            samples=(((), max((now - oldest_unbatched).total_seconds(), 0.0) if oldest_unbatched else 0.0),),
        ),
        Figure(
            name="portal_payout_notices_pending",
            help=_("Outbox notices waiting to be sent"),
            samples=(((), float(notices)),),
            backlog=_("Notices waiting to be sent"),
            estimated=notices_estimated,
        ),
        Figure(
            name="portal_payout_notices_pending_oldest_age_seconds",
            help=_("Age of the oldest outbox notice waiting to be sent (0: none)"),
            samples=(((), max((now - oldest_notice).total_seconds(), 0.0) if oldest_notice else 0.0),),
        ),
        Figure(
            name="portal_payout_batches",
            help=_("Payout batches by status"),
            labels=("status",),
            samples=tuple(((status,), float(batches.get(status, 0))) for status in BatchStatus.values),
        ),
    ]
