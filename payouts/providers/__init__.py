"""The provider of each payout method: simulators for ATM cash and point codes (payouts.providers.simulators),
bank transfer (issued only through a Zengin export) and the original payment method (payouts.banking)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from claims.models import PayoutMethod
from payouts.providers.base import PayoutProvider, ProviderNotRegistered
from payouts.providers.simulators import PointCodeSimulator, SevenBankAtmSimulator

_REGISTRY: dict[str, Callable[[], PayoutProvider]] = {
    PayoutMethod.ATM_CASH: SevenBankAtmSimulator,
    PayoutMethod.POINTS_AMAZON: lambda: PointCodeSimulator(brand="amazon"),
    PayoutMethod.POINTS_PONTA: lambda: PointCodeSimulator(brand="ponta"),
    PayoutMethod.POINTS_PAYPAY: lambda: PointCodeSimulator(brand="paypay"),
    PayoutMethod.POINTS_EDY: lambda: PointCodeSimulator(brand="edy"),
    PayoutMethod.POINTS_NANACO: lambda: PointCodeSimulator(brand="nanaco"),
    # Issued by a Zengin transfer export only (ProviderNotRegistered outside one): payouts.banking.
    PayoutMethod.BANK_TRANSFER: lambda: importlib.import_module("payouts.banking.providers").bank_transfer_provider(),
    PayoutMethod.ORIGINAL_METHOD: lambda: importlib.import_module(
        "payouts.banking.providers"
    ).original_method_provider(),
}


def registered_methods() -> frozenset[str]:
    return frozenset(_REGISTRY)


def provider_for(method: str) -> PayoutProvider:
    factory = _REGISTRY.get(method)
    if factory is None:
        raise ProviderNotRegistered(f"no payout provider for method {method!r} (not supported in this step)")
    return factory()
