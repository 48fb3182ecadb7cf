"""The company's sender accounts (振込依頼人) for Zengin files: from settings, else the environment, else a demo.

`settings.ZENGIN_SENDERS` may be a dict key → ZenginHeader fields (without transfer_date). Without it the
environment variable ZENGIN_SENDER (one account: ``requester_code,requester_name_kana,bank_code,
bank_name_kana,branch_code,branch_name_kana,account_type,account_number``) is read; without that the demo
account below is used (not a real account: production should set one).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os

from django.conf import settings

from payouts.zengin import ZenginHeader

ENV_VAR = "ZENGIN_SENDER"
DEMO_SENDERS: dict[str, dict[str, str]] = {
    "demo": {
        "requester_code": "0000123456",
        "requester_name_kana": "ｻﾎﾟ-ﾄﾎﾟ-ﾀﾙ(ｶ",
        "bank_code": "0001",
        "bank_name_kana": "ﾐｽﾞﾎ",
        "branch_code": "001",
        "branch_name_kana": "ﾄｳｷﾖｳ",
        "account_type": "2",
        "account_number": "7654321",
    }
}
_ENV_FIELDS = (
    "requester_code",
    "requester_name_kana",
    "bank_code",
    "bank_name_kana",
    "branch_code",
    "branch_name_kana",
    "account_type",
    "account_number",
)


@dataclasses.dataclass(frozen=True)
class Sender:
    key: str
    fields: dict[str, str] = dataclasses.field(repr=False)

    @property
    def label(self) -> str:
        f = self.fields
        return (
            f"{self.key}: {f['requester_name_kana']} {f['bank_code']}-{f['branch_code']} "
            f"{f['account_type']} ***{f['account_number'][-4:]}"
        )

    def header(self, *, transfer_date: dt.date) -> ZenginHeader:
        return ZenginHeader(transfer_date=transfer_date, **self.fields)


def senders() -> dict[str, Sender]:
    configured = getattr(settings, "ZENGIN_SENDERS", None)
    if configured:
        return {key: Sender(key, dict(values)) for key, values in configured.items()}
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw:
        values = [part.strip() for part in raw.split(",")]
        if len(values) != len(_ENV_FIELDS):
            raise ValueError(f"{ENV_VAR} needs {len(_ENV_FIELDS)} comma-separated values: {', '.join(_ENV_FIELDS)}")
        return {"default": Sender("default", dict(zip(_ENV_FIELDS, values, strict=True)))}
    return {key: Sender(key, dict(values)) for key, values in DEMO_SENDERS.items()}
