"""Typed, validated parameters of each policy (the numbers SPEC.md gives, editable per program).

A program stores its parameters as JSON (`Program.parameters`); `parameters_for(policy, data)` turns
that JSON into the policy's frozen dataclass, filling SPEC defaults for missing keys and raising
`ParameterError` with one message per bad field — never a TypeError or KeyError from deep inside the
engine. `parameters_to_json` is the inverse, so a program's JSON always round-trips.

JSON encodings: dates `YYYY-MM-DD`; months `YYYY-MM`; instants ISO 8601 (without an offset = JST);
amounts whole yen; percentages whole percent; durations whole seconds or days as the name says.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

JST = ZoneInfo("Asia/Tokyo")


class Month(dt.date):
    """A JST calendar month, represented by its first day; JSON form `YYYY-MM`."""

    @classmethod
    def parse(cls, value: str) -> Month:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError(value)
        return cls(int(year), int(month), 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def add(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1, 1)


class ParameterError(ValueError):
    """Invalid parameters; `errors` maps each bad field name to why."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


# Defaults (SPEC), named so the frozen dataclasses share immutable values.
_JST_2023_02_24_16_00_00 = dt.datetime(2023, 2, 24, 16, 0, 0, tzinfo=JST)
_JST_2023_02_24_23_59_59 = dt.datetime(2023, 2, 24, 23, 59, 59, tzinfo=JST)
_JST_2023_02_26_23_59_59 = dt.datetime(2023, 2, 26, 23, 59, 59, tzinfo=JST)
_JST_2023_03_31_23_59_59 = dt.datetime(2023, 3, 31, 23, 59, 59, tzinfo=JST)
_JST_2024_08_05 = dt.datetime(2024, 8, 5, tzinfo=JST)
_MONTH_2024_12 = Month(2024, 12, 1)


def _parse_instant(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        instant = value
    elif isinstance(value, str):
        instant = dt.datetime.fromisoformat(value)
    else:
        raise ValueError("expected an ISO 8601 date-time")
    # A date-time written without an offset is JST (SPEC "Money, time, calendars").
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=JST)


def _parse_value(annotation: Any, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per JSON type
    origin = typing.get_origin(annotation)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError("expected true or false")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("expected a whole number")
        if value < 0:
            raise ValueError("must not be negative")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    if annotation is Month:
        if not isinstance(value, str):
            raise ValueError("expected a month YYYY-MM")
        try:
            return Month.parse(value)
        except ValueError:
            raise ValueError("expected a month YYYY-MM") from None
    if annotation is dt.date:
        if not isinstance(value, str):
            raise ValueError("expected a date YYYY-MM-DD")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError("expected a date YYYY-MM-DD") from None
    if annotation is dt.datetime:
        try:
            return _parse_instant(value)
        except ValueError:
            raise ValueError("expected an ISO 8601 date-time") from None
    if origin is dict:
        key_type, value_type = typing.get_args(annotation)
        if not isinstance(value, Mapping) or not value:
            raise ValueError("expected a non-empty object")
        return {_parse_value(key_type, k): _parse_value(value_type, v) for k, v in value.items()}
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ValueError("expected a list")
        return tuple(_parse_value(item_type, item) for item in value)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return None if value is None else _parse_value(inner[0], value)
    raise TypeError(f"unsupported parameter type {annotation!r}")


def _to_json(value: Any) -> Any:
    if isinstance(value, Month):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(JST).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(_to_json(k)): _to_json(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_json(item) for item in value]
    return value


@dataclasses.dataclass(frozen=True)
class PolicyParameters:
    """Base: parse from JSON with defaults, report every bad field, check cross-field rules."""

    policy: ClassVar[str]

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> typing.Self:
        if data is not None and not isinstance(data, Mapping):
            raise ParameterError({"parameters": "expected a JSON object"})
        data = dict(data or {})
        hints = typing.get_type_hints(cls)
        names = {field.name for field in dataclasses.fields(cls)}
        errors = {key: "unknown parameter" for key in data if key not in names}
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name not in data:
                continue
            try:
                values[field.name] = _parse_value(hints[field.name], data[field.name])
            except ValueError as exc:
                errors[field.name] = str(exc)
        if errors:
            raise ParameterError(errors)
        instance = cls(**values)
        cross_field_errors = instance.check()
        if cross_field_errors:
            raise ParameterError(cross_field_errors)
        return instance

    def check(self) -> dict[str, str]:
        """Rules across fields; field name -> message."""
        return {}

    def to_json(self) -> dict[str, Any]:
        return {field.name: _to_json(getattr(self, field.name)) for field in dataclasses.fields(self)}


def _percent_errors(**percents: int) -> dict[str, str]:
    return {name: "must be between 0 and 100" for name, value in percents.items() if value > 100}


@dataclasses.dataclass(frozen=True)
class LoginOutageParameters(PolicyParameters):
    """`login-outage-2024` (seed 000).

    The notice says service came back on 2024-08-05 (Mon) without a time, so restoration is the start
    of that JST day: any login on 2024-08-05 counts as "after restoration".
    """

    policy: ClassVar[str] = "login-outage-2024"
    first_covered_month_by_plan: dict[str, Month] = dataclasses.field(
        default_factory=lambda: {
            "premium": Month(2024, 9, 1),
            "channel": Month(2024, 9, 1),
            "channel_plus": Month(2024, 9, 1),
            "creator_support": Month(2024, 9, 1),
            "zen_study": Month(2024, 10, 1),
        }
    )
    cap_month: Month = _MONTH_2024_12
    restored_at: dt.datetime = _JST_2024_08_05

    def check(self) -> dict[str, str]:
        late = sorted(plan for plan, month in self.first_covered_month_by_plan.items() if month > self.cap_month)
        if late:
            return {"first_covered_month_by_plan": f"after the cap month for: {', '.join(late)}"}
        return {}


@dataclasses.dataclass(frozen=True)
class CouponOutageParameters(PolicyParameters):
    """`coupon-outage-2023` (seed 001). Instants given to the second include that whole second."""

    policy: ClassVar[str] = "coupon-outage-2023"
    outage_starts_at: dt.datetime = _JST_2023_02_24_16_00_00
    outage_ends_at: dt.datetime = _JST_2023_02_24_23_59_59
    duplicate_interval_seconds: int = 120
    # Class A: original expiry at or before this instant…
    original_expiry_until: dt.datetime = _JST_2023_02_24_23_59_59
    # …still had a balance after the first extension to this instant…
    extended_expiry_at: dt.datetime = _JST_2023_02_26_23_59_59
    # …gets a second extension; the balance left at this instant is paid out.
    remedy_expiry_at: dt.datetime = _JST_2023_03_31_23_59_59
    minimum_balance_jpy: int = 1
    # Receive-URLs for app coupons go out from this date (no application needed for them).
    app_notice_from: dt.date = dt.date(2023, 4, 1)

    def check(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.outage_ends_at <= self.outage_starts_at:
            errors["outage_ends_at"] = "must be after outage_starts_at"
        if self.remedy_expiry_at <= self.extended_expiry_at:
            errors["remedy_expiry_at"] = "must be after extended_expiry_at"
        if self.duplicate_interval_seconds == 0:
            errors["duplicate_interval_seconds"] = "must be at least 1"
        return errors


@dataclasses.dataclass(frozen=True)
class AutorenewParameters(PolicyParameters):
    """`autorenew-60day` (seed 002): request date <= charge date + window days (JST dates, inclusive)."""

    policy: ClassVar[str] = "autorenew-60day"
    window_days: int = 60
    allowed_reasons: tuple[str, ...] = ("no_pc", "duplicate_purchase", "competitor", "price", "other")


@dataclasses.dataclass(frozen=True)
class CoolingOffParameters(PolicyParameters):
    """`cooling-off-7day` (seeds 003, 004)."""

    policy: ClassVar[str] = "cooling-off-7day"
    window_days: int = 7
    processing_fee_jpy: int = 0
    # 004 requires "no usage" for later cycles too, 003 does not; the first payment always requires it.
    later_cycle_requires_no_usage: bool = True


@dataclasses.dataclass(frozen=True)
class ServiceFailureParameters(PolicyParameters):
    """`service-failure-prorata` (seed 003)."""

    policy: ClassVar[str] = "service-failure-prorata"
    penalty_percent: int = 10
    # Longest service period (days) still treated as one billing cycle; longer = long licence.
    cycle_max_days: int = 31
    # Whose fault when the submission does not say: an outage is the company's by default.
    default_fault: str = "company"

    def check(self) -> dict[str, str]:
        errors = _percent_errors(penalty_percent=self.penalty_percent)
        if self.default_fault not in ("company", "member"):
            errors["default_fault"] = "must be company or member"
        return errors


@dataclasses.dataclass(frozen=True)
class CompanyTerminationParameters(PolicyParameters):
    """`company-termination` (seed 004 art. 26): fee = max(fee_percent of the base, minimum_fee_jpy)."""

    policy: ClassVar[str] = "company-termination"
    fee_percent: int = 10
    minimum_fee_jpy: int = 100
    cycle_max_days: int = 31

    def check(self) -> dict[str, str]:
        return _percent_errors(fee_percent=self.fee_percent)


@dataclasses.dataclass(frozen=True)
class OverpaymentParameters(PolicyParameters):
    """`overpayment` (seeds 003, 004 art. 27)."""

    policy: ClassVar[str] = "overpayment"
    # Deducted when the member caused the overpayment (the company's cost of refunding it).
    member_fault_refund_cost_jpy: int = 0
    default_fault: str = "company"

    def check(self) -> dict[str, str]:
        if self.default_fault not in ("company", "member"):
            return {"default_fault": "must be company or member"}
        return {}


PARAMETER_CLASSES: dict[str, type[PolicyParameters]] = {
    cls.policy: cls
    for cls in (
        LoginOutageParameters,
        CouponOutageParameters,
        AutorenewParameters,
        CoolingOffParameters,
        ServiceFailureParameters,
        CompanyTerminationParameters,
        OverpaymentParameters,
    )
}


def parameters_for(policy: str, data: Mapping[str, Any] | None) -> PolicyParameters:
    """The policy's typed parameters from a program's JSON; raises ParameterError when invalid."""
    try:
        cls = PARAMETER_CLASSES[policy]
    except KeyError:
        raise ParameterError({"policy": f"unknown policy {policy!r}"}) from None
    return cls.from_json(data)


def default_parameters_json(policy: str) -> dict[str, Any]:
    return PARAMETER_CLASSES[policy]().to_json()
