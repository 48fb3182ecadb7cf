"""The SMS seam: customers without an email address get their notice by SMS through an `SmsGateway`.

A gateway sends one message per message key: asked again with the same key (a re-send after a crash) it
returns the first result and sends nothing new. The local simulator records what it "sent" in
`SimulatedSms` (UNIQUE message key) — the phone number and the length only, never the text.
`settings.PAYOUT_SMS_GATEWAY` (dotted path of a class) selects a real gateway; the simulator is the default.
A gateway that can say whether it accepted a key offers `lookup(message_key=…)` (the simulator does): the
sweep then settles an uncertain attempt (its sender died mid-send) without a person.
"""

from __future__ import annotations

import hashlib
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from payouts.models import SimulatedSms

DEFAULT_GATEWAY = "payouts.sms.SmsSimulator"


class SmsError(Exception):
    """The gateway refused the message: it was not sent (tried again later). Never contains the text.
    Any other exception from `send` (a timeout, a dropped connection) leaves the attempt uncertain."""


@runtime_checkable
class SmsGateway(Protocol):
    name: str

    def send(self, *, message_key: str, phone: str, text: str) -> str:
        """Sends `text` to `phone` once per `message_key`; returns the gateway's message id."""
        ...


class SmsSimulator:
    name = "sms-simulator"

    def send(self, *, message_key: str, phone: str, text: str) -> str:
        digits = "".join(ch for ch in phone if ch.isdigit())
        if len(digits) < 10:
            raise SmsError("not a phone number")
        table = SimulatedSms._meta.db_table
        reference = "SMS-" + hashlib.sha256(message_key.encode()).hexdigest()[:12].upper()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table} (message_key, phone, length, reference, requests, created_at)
                VALUES (%s, %s, %s, %s, 1, %s)
                ON CONFLICT (message_key) DO UPDATE SET requests = {table}.requests + 1
                RETURNING reference
                """,
                [message_key, phone, len(text), reference, timezone.now()],
            )
            row = cursor.fetchone()
        assert row is not None
        return str(row[0])

    def lookup(self, *, message_key: str) -> str | None:
        """The reference of what was accepted under `message_key`, None when nothing was (the provider
        check of an uncertain attempt: payouts.notices.default_provider_check)."""
        found = SimulatedSms.objects.filter(message_key=message_key).values_list("reference", flat=True).first()
        return str(found) if found is not None else None


def sms_gateway() -> SmsGateway:
    gateway: SmsGateway = import_string(getattr(settings, "PAYOUT_SMS_GATEWAY", DEFAULT_GATEWAY))()
    return gateway
