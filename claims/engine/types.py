"""What the engine produces: one Entitlement per subject, with lines each naming its rule."""

from __future__ import annotations

import dataclasses
import datetime as dt
from enum import StrEnum


class Reason(StrEnum):
    """Stable codes for "why not eligible" (the dry-run CSV's `reason` column)."""

    NO_APPLICATION = "no_application"
    LATE_APPLICATION = "late_application"
    OUTSIDE_WINDOW = "outside_window"
    USED = "used"
    PROMOTIONAL = "promotional"
    APP_STORE = "app_store"
    NOT_COVERED = "not_covered"
    NO_CHARGE = "no_charge"
    ALREADY_COMPENSATED = "already_compensated"
    FRAUD = "fraud"
    REASON_REQUIRED = "reason_required"
    STORE_NOT_CONFIRMED = "store_not_confirmed"
    NOTHING_DUE = "nothing_due"
    UNKNOWN_SUBJECT = "unknown_subject"
    # autorenew-60day merge offer (claims.models.MergeOffer): the licence was extended instead / withdrawn.
    MERGED = "merged"
    MERGE_DECLINED = "merge_declined"


# What the customer is told when the store, not us, must refund (SPEC: "the claim ends with instructions").
APP_STORE_INSTRUCTIONS = {
    "apple_iap": "Apple のサポート（reportaproblem.apple.com）から返金を申請してください。",
    "google_play": "Google Play の購入履歴から返金をリクエストしてください。",
}


@dataclasses.dataclass
class Line:
    label: str
    amount_jpy: int
    rule: str
    # Empty: the line follows the claim's first keyed line (a penalty follows its refund).
    grant_key: str = ""
    excluded_reason: str = ""


@dataclasses.dataclass
class Entitlement:
    subject: str
    customer_id: str | None
    payee_id: str | None
    eligible: bool
    reason: str = ""
    lines: list[Line] = dataclasses.field(default_factory=list)
    official_submission_id: str | None = None
    payout_method: str = ""
    provider_request_due_on: dt.date | None = None
    # What the customer is told beyond the amount (e.g. how to ask the app store for the refund).
    note: str = ""
    # The first JST date on which a run would answer differently for the same inputs (None: never),
    # e.g. a provider due date counted from the run's own date (claims.inputs rechecks it then).
    changes_on: dt.date | None = None

    @property
    def amount_jpy(self) -> int:
        return sum(line.amount_jpy for line in self.lines) if self.eligible else 0

    def exclude_keys(self, owners: dict[str, str]) -> None:
        """Marks lines whose grant key another program already holds (`owners`: key -> program slug).

        A line without a key follows the claim's last keyed line before it. When every line is excluded,
        the claim is not eligible with reason `already_compensated:<slug>`.
        """
        if not self.eligible or not owners:
            return
        current_owner = ""
        for line in self.lines:
            if line.grant_key:
                current_owner = owners.get(line.grant_key, "")
            if current_owner:
                line.excluded_reason = f"{Reason.ALREADY_COMPENSATED}:{current_owner}"
                line.amount_jpy = 0
        paid = [line for line in self.lines if not line.excluded_reason]
        if not paid or sum(line.amount_jpy for line in paid) <= 0:
            first_excluded = next((line for line in self.lines if line.excluded_reason), None)
            self.eligible = False
            self.reason = first_excluded.excluded_reason if first_excluded else Reason.NOTHING_DUE

    def paid_grant_keys(self) -> dict[str, int]:
        """Grant key -> amount of the lines it covers (following unkeyed lines), for an eligible claim."""
        if not self.eligible:
            return {}
        keys: dict[str, int] = {}
        current = ""
        for line in self.lines:
            if line.grant_key:
                current = line.grant_key
            if current and not line.excluded_reason:
                keys[current] = keys.get(current, 0) + line.amount_jpy
        return keys
