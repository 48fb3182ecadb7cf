"""A local simulator of the payment providers' refund APIs (the real ones are not public: SPEC "Payout methods").

It implements `payouts.refunds.RefundProvider` the way `simulators.py` implements PayoutProvider:

- the route follows the SPEC rule (`payouts.refunds.refund_route`): same payment method as the charge,
  the payer refunded when the payer is not the user;
- app-store purchases are answered ASK_STORE with the instructions, convenience-store and bank payments
  NEEDS_BANK_ACCOUNT — and in both cases nothing is recorded (no issuance row: nothing was sent);
- an accepted refund records one `SimulatorIssuance` row per idempotency key (INSERT … ON CONFLICT, in the
  caller's transaction). Asked again with the same key it returns the same reference and only counts
  the request; the same key with another amount, payment method or charge is refused permanently.
  The row's provider is ``refund-<method>-simulator`` and its payee_ref the charge id (a refund is made
  against the original transaction; the payee is the charge's payer).
"""

from __future__ import annotations

from payouts.providers.simulators import _digest, _record_issuance
from payouts.refunds import RefundOutcome, RefundRequest, RefundResult, refund_route


class RefundProviderSimulator:
    """Refunds to the original payment method (card, carrier billing, points)."""

    name = "refund-simulator"

    def refund(self, *, request: RefundRequest) -> RefundResult:
        route = refund_route(charge=request.charge)
        if route.outcome != RefundOutcome.REQUESTED:
            return RefundResult(
                outcome=route.outcome,
                payment_method=route.payment_method,
                payee_id=route.payee_id,
                instructions=route.instructions,
            )
        provider = f"refund-{route.payment_method}-simulator"
        digest = _digest(self.name, request.idempotency_key)
        reference = f"RFS-{route.payment_method.upper()}-{digest[:6].hex().upper()}"
        _record_issuance(
            provider=provider,
            idempotency_key=request.idempotency_key,
            amount_jpy=request.total_jpy,
            payee_ref=request.charge.charge_id,
            reference=reference,
        )
        return RefundResult(
            outcome=RefundOutcome.REQUESTED,
            payment_method=route.payment_method,
            payee_id=route.payee_id,
            amount_jpy=request.total_jpy,
            reference=reference,
        )
