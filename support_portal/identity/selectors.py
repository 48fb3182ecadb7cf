"""Reads of identity recovery."""

import datetime as dt

from support_portal.identity.models import IdentityRecoveryCase, RecoveryStatus


def case_ids_due_for_reset(*, older_than: dt.datetime, limit: int) -> list[int]:
    """Completed cases whose reset the main service has not acknowledged yet, last touched before `older_than`."""
    return list(
        IdentityRecoveryCase.objects.filter(
            status=RecoveryStatus.COMPLETED, reset_sent_at__isnull=True, updated_at__lt=older_than
        )
        .order_by("updated_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
