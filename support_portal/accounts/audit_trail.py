"""The audit viewer's read: one timeline per claim or payout, merged from three sources.

- pghistory events (database triggers, support_portal/core/audit.py): every insert/update of the row,
  with the changed fields and the user of the request or service that made the change;
- ClaimDecision rows (review decisions: who approved, rejected, asked, reopened, with reason and note);
- PayoutTransition rows (every payout status change, with its actor; none for the system).

A claim's timeline includes its payouts (their events and transitions). Values of fields that hold
secrets never appear (payout codes are in their own table, which is not read here).
"""

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from pghistory.models import Events

from claims.models import Claim, ClaimDecision
from payouts.models import Payout, PayoutTransition
from support_portal.core.csv_export import CsvWriter

_HIDDEN_FIELD_PARTS = ("secret", "code", "encrypted", "token", "password")
CSV_HEADER = ["at", "actor", "object", "source", "what", "details"]


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    actor: str
    object: str
    source: str
    what: str
    details: str


def _visible(field: str) -> bool:
    return not any(part in field for part in _HIDDEN_FIELD_PARTS)


def _format_diff(diff: dict[str, Any] | None, data: dict[str, Any] | None, label: str) -> str:
    if label == "insert" or not diff:
        fields = {k: v for k, v in (data or {}).items() if _visible(k) and k in ("status", "amount_jpy")}
        return ", ".join(f"{key}={value}" for key, value in fields.items())
    return ", ".join(f"{key}: {old} → {new}" for key, (old, new) in sorted(diff.items()) if _visible(key))


def _usernames(ids: Iterable[Any]) -> dict[str, str]:
    wanted = {str(i) for i in ids if i is not None}
    if not wanted:
        return {}
    user_model = get_user_model()
    return {
        str(pk): name
        for pk, name in user_model.objects.filter(pk__in=wanted).values_list("pk", user_model.USERNAME_FIELD)
    }


def _events(objs: list[models.Model]) -> list[TimelineEntry]:
    # pghistory aggregates per model: one query per kind of object (claims, payouts).
    by_model: dict[type[models.Model], list[models.Model]] = {}
    for obj in objs:
        by_model.setdefault(type(obj), []).append(obj)
    rows = [
        row
        for same_model in by_model.values()
        for row in Events.objects.tracks(same_model)
        .order_by("pgh_created_at", "pgh_id")
        .values("pgh_created_at", "pgh_label", "pgh_diff", "pgh_data", "pgh_context", "pgh_obj_model", "pgh_obj_id")
    ]
    names = _usernames((row["pgh_context"] or {}).get("user") for row in rows)
    entries = []
    for row in rows:
        context = row["pgh_context"] or {}
        user = context.get("user")
        if user is not None:
            actor = names.get(str(user), f"user {user}")
        else:
            # An API key (`api:<prefix>`) or a provider's callback (`provider:<name>`), else the system.
            actor = str(context["actor"]) if context.get("actor") else _system_label(context)
        model_name = row["pgh_obj_model"].rsplit(".", 1)[-1].lower()
        entries.append(
            TimelineEntry(
                at=row["pgh_created_at"],
                actor=actor,
                object=f"{model_name} {row['pgh_obj_id']}",
                source="change",
                what=row["pgh_label"],
                details=_format_diff(row["pgh_diff"], row["pgh_data"], row["pgh_label"]),
            )
        )
    return entries


def _system_label(context: dict[str, Any]) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(context.items()) if k not in ("user", "url") and _visible(k))
    return f"system ({extra})" if extra else "system"


def _decisions(claim_ids: list[int]) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=decision.at,
            actor=decision.actor.get_username(),
            object=f"claim {decision.claim_id}",
            source="decision",
            what=decision.action,
            details=", ".join(
                part
                for part in (
                    f"{decision.status_before} → {decision.status_after}",
                    f"amount_jpy={decision.amount_jpy}",
                    f"reason={decision.reason_code}" if decision.reason_code else "",
                    f"note={decision.note}" if decision.note else "",
                )
                if part
            ),
        )
        for decision in ClaimDecision.objects.filter(claim_id__in=claim_ids)
        .select_related("actor")
        .order_by("at", "pk")
    ]


def _transitions(payout_ids: list[int]) -> list[TimelineEntry]:
    return [
        TimelineEntry(
            at=transition.at,
            actor=transition.actor.get_username() if transition.actor is not None else "system",
            object=f"payout {transition.payout_id}",
            source="payout transition",
            what=transition.status_after,
            details=", ".join(
                part
                for part in (f"{transition.status_before or '—'} → {transition.status_after}", transition.note)
                if part
            ),
        )
        for transition in PayoutTransition.objects.filter(payout_id__in=payout_ids)
        .select_related("actor")
        .order_by("at", "pk")
    ]


def audit_timeline(*, kind: str, object_id: int) -> list[TimelineEntry] | None:
    """The merged timeline of a claim (with its payouts) or a payout, oldest first; None if it does not exist."""
    if kind == "claim":
        claim = Claim.objects.filter(pk=object_id).first()
        if claim is None:
            return None
        payouts = list(Payout.objects.filter(claim_id=claim.pk).order_by("pk"))
        entries = [
            *_events([claim, *payouts]),
            *_decisions([claim.pk]),
            *_transitions([payout.pk for payout in payouts]),
        ]
    elif kind == "payout":
        payout = Payout.objects.filter(pk=object_id).first()
        if payout is None:
            return None
        entries = [*_events([payout]), *_transitions([payout.pk])]
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return sorted(entries, key=lambda entry: entry.at)


def timeline_csv(entries: list[TimelineEntry]) -> str:
    buffer = io.StringIO()
    writer = CsvWriter(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        writer.writerow([entry.at.isoformat(), entry.actor, entry.object, entry.source, entry.what, entry.details])
    return buffer.getvalue()
