"""The seam between payouts and the companies that pay the money out (ATM vouchers, point codes…).

A provider issues one payout per idempotency key: asked again with the same key it returns the same
result and issues nothing new. Errors are either temporary (retry later with the same key) or permanent
(the payout fails).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Protocol, runtime_checkable

from support_portal.core.masking import mask_secret


class ProviderError(Exception):
    """A provider refused or could not answer. Messages never contain codes or URLs."""


class ProviderTemporaryError(ProviderError):
    """Try again later with the same idempotency key (timeouts, 5xx, rate limits)."""


class ProviderPermanentError(ProviderError):
    """Retrying will not help (invalid amount, key reused with other parameters, account closed…)."""


class ProviderNotRegistered(ProviderPermanentError):
    """No provider is registered for this payout method (yet)."""


@dataclasses.dataclass(frozen=True)
class IssueResult:
    """What a provider returns; the secrets never appear in repr or logs."""

    reference: str
    code: str = dataclasses.field(default="", repr=False)
    pin: str = dataclasses.field(default="", repr=False)
    url: str = dataclasses.field(default="", repr=False)

    def masked(self) -> str:
        return mask_secret(self.code or self.url)


@runtime_checkable
class PayoutProvider(Protocol):
    name: str

    def issue(
        self, *, idempotency_key: str, amount_jpy: int, expires_at: dt.datetime | None, payee_ref: str
    ) -> IssueResult: ...
