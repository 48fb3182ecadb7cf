"""The provider boundary of the chaos benchmark: every message actually handed to the "transport" is one
line appended (O_APPEND, one write) to CHAOS_CAPTURE_FILE, so duplicates are counted where a customer
would see them, across worker processes that get SIGKILLed.

- `CaptureEmailBackend` — `email <notice id> <attempt id>` per message (after a short transport delay);
- `CaptureSmsGateway` — `sms <notice id> <message key>` per send (no de-duplication: a repeat counts);
- `provider_check` — the PAYOUT_NOTICE_PROVIDER_CHECK hook: looks the attempt (email) or the key (SMS)
  up in the file, as a provider's status API would.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from django.core.mail.backends.base import BaseEmailBackend

from payouts.notices import AttemptToCheck, ProviderAnswer

TRANSPORT_DELAY = float(os.environ.get("CHAOS_TRANSPORT_DELAY", "0.002"))
_NOTICE = re.compile(r"<payout-notice-(\d+)@")


def _path() -> str:
    return os.environ["CHAOS_CAPTURE_FILE"]


def _append(line: str) -> None:
    fd = os.open(_path(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class CaptureEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Any) -> int:
        for message in email_messages:
            time.sleep(TRANSPORT_DELAY)
            match = _NOTICE.search(message.extra_headers.get("Message-ID", ""))
            attempt = message.extra_headers.get("X-Payout-Notice-Attempt", "-")
            _append(f"email {match[1] if match else '?'} {attempt}\n")
        return len(email_messages)


class CaptureSmsGateway:
    name = "sms-capture"

    def send(self, *, message_key: str, phone: str, text: str) -> str:
        time.sleep(TRANSPORT_DELAY)
        _append(f"sms {message_key.rsplit('-', 1)[-1]} {message_key}\n")
        return f"CAP-{message_key}"

    def lookup(self, *, message_key: str) -> str | None:
        needle = f" {message_key}\n"
        with open(_path(), encoding="ascii") as handle:
            return f"CAP-{message_key}" if any(line.endswith(needle) for line in handle) else None


def provider_check(attempt: AttemptToCheck) -> ProviderAnswer:
    needle = f" {attempt.attempt_id}\n" if attempt.channel == "email" else f" {attempt.message_key}\n"
    if not os.path.exists(_path()):
        return ProviderAnswer(delivered=False)
    with open(_path(), encoding="ascii") as handle:
        found = any(line.endswith(needle) for line in handle)
    return ProviderAnswer(delivered=found, provider_id=f"CAP-{attempt.message_key}" if found else "")
