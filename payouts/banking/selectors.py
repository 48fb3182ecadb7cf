"""Read-only queries of payouts.banking: the finance reconciliation report.

Figures per (program, method), from the payouts table in one GROUP BY:

- **owed**: payouts the company must pay — created, issued, notified or settled (failed, expired and
  cancelled payouts are not owed; their re-offers are);
- **sent**: issued, notified or settled (the code / file / refund request went out);
- **settled**: received by the customer (picked up, transfer done);
- **expired**: not received by the deadline;
- **unclaimed**: sent and not settled yet (issued or notified);
- **failed**: returned / refused (a re-offer follows where the rules say so).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.db.models import Count, Q, Sum

from claims.models import PayoutMethod
from payouts.banking.models import BankResultImport, ImportOutcome, RefundRequest, SettlementImport
from payouts.models import Payout, PayoutStatus

MEASURES = ("owed", "sent", "settled", "expired", "unclaimed", "failed")
_FILTERS = {
    "owed": Q(status__in=(PayoutStatus.CREATED, PayoutStatus.ISSUED, PayoutStatus.NOTIFIED, PayoutStatus.SETTLED)),
    "sent": Q(status__in=(PayoutStatus.ISSUED, PayoutStatus.NOTIFIED, PayoutStatus.SETTLED)),
    "settled": Q(status=PayoutStatus.SETTLED),
    "expired": Q(status=PayoutStatus.EXPIRED),
    "unclaimed": Q(status__in=(PayoutStatus.ISSUED, PayoutStatus.NOTIFIED)),
    "failed": Q(status=PayoutStatus.FAILED),
}


@dataclasses.dataclass(frozen=True)
class ReportRow:
    program: str
    method: str
    method_label: str
    counts: dict[str, int]
    amounts: dict[str, int]


def finance_report_rows(*, program_id: int | None = None) -> list[ReportRow]:
    """One row per (program, method), ordered by program slug and method: count and yen of each measure."""
    aggregates: dict[str, Any] = {}
    for measure, condition in _FILTERS.items():
        aggregates[f"{measure}_n"] = Count("pk", filter=condition)
        aggregates[f"{measure}_jpy"] = Sum("amount_jpy", filter=condition, default=0)
    queryset = Payout.objects.all()
    if program_id is not None:
        queryset = queryset.filter(program_id=program_id)
    labels = dict(PayoutMethod.choices)
    rows = []
    grouped: Any = queryset.values("program__slug", "method").annotate(**aggregates)
    for values in grouped.order_by("program__slug", "method"):
        rows.append(
            ReportRow(
                program=values["program__slug"],
                method=values["method"],
                method_label=str(labels.get(values["method"], values["method"])),
                counts={m: int(values[f"{m}_n"]) for m in MEASURES},
                amounts={m: int(values[f"{m}_jpy"]) for m in MEASURES},
            )
        )
    return rows


def report_totals(rows: list[ReportRow]) -> dict[str, dict[str, int]]:
    return {
        "counts": {m: sum(row.counts[m] for row in rows) for m in MEASURES},
        "amounts": {m: sum(row.amounts[m] for row in rows) for m in MEASURES},
    }


@dataclasses.dataclass(frozen=True)
class Difference:
    source: str  # "bank result" / "settlement"
    import_id: int
    file_name: str
    imported_at: object
    kind: str
    detail: str


DIFFERENCE_KINDS = ("missing", "unexpected", "amount_mismatches", "status_mismatches", "duplicates", "conflicts")


def reconciliation_differences(*, limit: int = 50) -> list[Difference]:
    """Every difference recorded by the latest imports that found any (newest first)."""
    found: list[Difference] = []
    sources = (
        ("bank result", BankResultImport.objects.filter(outcome=ImportOutcome.DIFFERENCES)),
        ("settlement", SettlementImport.objects.filter(outcome=ImportOutcome.DIFFERENCES)),
    )
    for source, queryset in sources:
        for record in queryset.order_by("-imported_at")[:limit]:
            for kind in DIFFERENCE_KINDS:
                for item in record.differences.get(kind, []):
                    detail = item if isinstance(item, str) else ", ".join(f"{k}={v}" for k, v in item.items())
                    found.append(Difference(source, record.pk, record.file_name, record.imported_at, kind, detail))
    found.sort(key=lambda d: (str(d.imported_at), d.import_id), reverse=True)
    return found[:limit]


def refunds_flagged_count() -> int:
    """Unsent refund requests flagged as due soon or late."""
    return RefundRequest.objects.filter(flagged_at__isnull=False, sent_at__isnull=True, outcome="pending").count()
