"""Payout providers of the bank transfer and the original payment method (payouts.providers registers them).

- **Bank transfer** (`bank_transfer_provider`): a bank transfer is not issued one by one — it is issued by
  being written into a Zengin 総合振込 file (`services.zengin_export_create`), which issues the file's
  payouts together, set-based, with the reference ``ZEN-<export>-<customer code>`` (provider
  `zengin-transfer`); no code or URL: the money goes to the customer's account. There is no provider
  for one payout of the method (`ProviderNotRegistered`: `payout_issue` then refuses and changes
  nothing, a batch leaves the payout to the export).
- **Original method** (`OriginalMethodProvider`): sends the refund request through a `RefundProvider`
  (the local `RefundProviderSimulator` by default) with the payout's idempotency key. The payout's
  `RefundRequest` row records when the customer asked, the due date (3 business days), when it was sent and
  the delay interest, fixed at the first attempt so a retry asks for the same total. App-store purchases
  (ask the store) and payments with no account to refund to end with a permanent error: the payout fails
  with the reason, nothing is sent (the refund task re-offers the latter as a bank transfer).
"""

from __future__ import annotations

import datetime as dt
from typing import NoReturn

from django.utils import timezone

from payouts.banking.models import RefundOutcomeChoice, RefundRequest
from payouts.models import Payout
from payouts.providers.base import IssueResult, ProviderNotRegistered, ProviderPermanentError
from payouts.providers.refund_simulator import RefundProviderSimulator
from payouts.refunds import RefundOutcome, RefundProvider, delay_interest_jpy, refund_charge_for
from payouts.refunds import RefundRequest as RefundCall

BANK_TRANSFER_PROVIDER_NAME = "zengin-transfer"


def bank_transfer_provider() -> NoReturn:
    """There is no provider to issue one bank transfer: the export issues its file's payouts together."""
    raise ProviderNotRegistered("bank transfers are issued by a Zengin transfer export (finance), not one by one")


class OriginalMethodProvider:
    """Refunds to the original payment method through a RefundProvider (see the module docstring)."""

    name = "original-method"

    def __init__(self, *, backend: RefundProvider | None = None) -> None:
        self.backend: RefundProvider = backend or RefundProviderSimulator()

    def issue(
        self, *, idempotency_key: str, amount_jpy: int, expires_at: dt.datetime | None, payee_ref: str
    ) -> IssueResult:
        from payouts.banking.services import refund_request_ensure  # noqa: PLC0415 - services import this module

        payout = Payout.objects.filter(idempotency_key=idempotency_key).select_related("claim").first()
        if payout is None:
            raise ProviderPermanentError("no payout has this idempotency key")
        refund_request_ensure(payout=payout)
        request = RefundRequest.objects.select_for_update().get(payout=payout)
        charge = refund_charge_for(payout.claim.subject)
        if charge is None:
            request.outcome = RefundOutcomeChoice.FAILED
            request.save(update_fields=["outcome"])
            raise ProviderPermanentError(f"charge {payout.claim.subject!r} of the claim does not exist")
        if request.sent_at is None:
            now = timezone.now()
            request.sent_at = now
            request.interest_jpy = delay_interest_jpy(amount_jpy=amount_jpy, due_at=request.due_at, sent_at=now)
            # Kept even when the provider answers with a temporary error (payout_issue commits that).
            request.save(update_fields=["sent_at", "interest_jpy"])
        result = self.backend.refund(
            request=RefundCall(
                idempotency_key=idempotency_key,
                charge=charge,
                amount_jpy=amount_jpy,
                interest_jpy=request.interest_jpy,
            )
        )
        if result.outcome == RefundOutcome.REQUESTED:
            request.outcome = RefundOutcomeChoice.REQUESTED
            request.reference = result.reference
            request.save(update_fields=["outcome", "reference"])
            return IssueResult(reference=result.reference)
        # Nothing was sent: no send time, no interest.
        request.sent_at = None
        request.interest_jpy = 0
        request.instructions = result.instructions
        if result.outcome == RefundOutcome.ASK_STORE:
            request.outcome = RefundOutcomeChoice.ASK_STORE
            request.save(update_fields=["sent_at", "interest_jpy", "instructions", "outcome"])
            raise ProviderPermanentError("app-store purchase: the customer asks the store (instructions recorded)")
        request.outcome = RefundOutcomeChoice.NEEDS_BANK_ACCOUNT
        request.save(update_fields=["sent_at", "interest_jpy", "instructions", "outcome"])
        raise ProviderPermanentError(f"{result.payment_method} payment: no account to refund to, needs a bank account")


def original_method_provider() -> OriginalMethodProvider:
    return OriginalMethodProvider()
