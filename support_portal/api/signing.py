"""Signed callbacks, Stripe's scheme: `X-Signature: t=<unix seconds>,v1=<hex>` where the hex is
HMAC-SHA256(secret, f"{t}.{body}"). Several `v1=` may be sent (a sender rotating its secret); the receiver
accepts any that matches any of its secrets, compared in constant time, and refuses a timestamp more than
`tolerance` seconds away from now (a replay of an old capture, or a clock far off)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

SIGNATURE_HEADER = "X-Signature"
DEFAULT_TOLERANCE_SECONDS = 5 * 60


class SignatureInvalid(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(*, secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def signature_verify(
    *,
    secrets: Sequence[str],
    body: bytes,
    header: str,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """The signed timestamp, or SignatureInvalid naming why not (never which secret nearly matched)."""
    if not secrets:
        raise SignatureInvalid("no signing secret is configured for this sender")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, _sep, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid(f"{SIGNATURE_HEADER} must be t=<unix seconds>,v1=<hex HMAC-SHA256>")
    expected = [_mac(secret, timestamp, body) for secret in secrets if secret]
    # Every pair compared, so the time taken does not depend on which (if any) matched.
    matched = False
    for signature in signatures:
        for candidate in expected:
            matched |= hmac.compare_digest(signature.encode(), candidate.encode())
    if not matched:
        raise SignatureInvalid("signature does not match")
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureInvalid(f"timestamp more than {tolerance} seconds from now")
    return timestamp
