"""API key services: create (the key is returned once, never stored in clear), revoke, and the check of a
presented key. Each change runs under `audit_context` in one transaction (the ApiKey history triggers
record it with the acting user)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from support_portal.api.models import ApiKey, ApiScope
from support_portal.core.audit import audit_context

if TYPE_CHECKING:
    from django.contrib.auth.models import User

KEY_PREFIX = "spk_"
# last_used_at is written at most this often per key (one UPDATE a minute, not one per request).
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# A hash compared when no key has the presented prefix, so a miss costs the same as a wrong secret.
_NO_KEY_HASH = hashlib.sha256(b"no such key").hexdigest()


class ApiKeyRefused(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    key: str = dataclasses.field(repr=False)  # shown once; only its hash is stored


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, name: str, scopes: list[str], actor: User) -> CreatedApiKey:
    """A new key `spk_<prefix>_<secret>` with these scopes; the caller shows `key` once."""
    unknown = sorted(set(scopes) - set(ApiScope.values))
    if unknown or not scopes:
        raise ApiKeyRefused(f"scopes must be some of {', '.join(ApiScope.values)} (got {', '.join(unknown) or 'none'})")
    if not name.strip():
        raise ApiKeyRefused("name the integration the key is for")
    prefix = secrets.token_hex(4)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with audit_context(actor=actor, action="api_key_create"), transaction.atomic():
        api_key = ApiKey.objects.create(
            name=name.strip(),
            prefix=prefix,
            secret_hash=_hash(key),
            scopes=sorted(set(scopes)),
            created_by=actor,
            created_at=timezone.now(),
        )
    return CreatedApiKey(api_key=api_key, key=key)


def api_key_revoke(*, api_key_id: int, actor: User) -> ApiKey:
    """Revokes the key at once (its next request is refused); revoking twice changes nothing."""
    with audit_context(actor=actor, action="api_key_revoke"), transaction.atomic():
        api_key = ApiKey.objects.select_for_update().get(pk=api_key_id)
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.revoked_by = actor
            api_key.save(update_fields=["revoked_at", "revoked_by"])
    return api_key


def api_key_authenticate(*, key: str, now: dt.datetime | None = None) -> ApiKey | None:
    """The active key `key` names, or None (unknown, wrong secret, revoked). Compares in constant time;
    notes the use (last_used_at, at most once a minute)."""
    prefix = key[len(KEY_PREFIX) :].split("_", 1)[0] if key.startswith(KEY_PREFIX) else ""
    api_key = ApiKey.objects.filter(prefix=prefix).first() if prefix else None
    matches = hmac.compare_digest(_hash(key), api_key.secret_hash if api_key is not None else _NO_KEY_HASH)
    if api_key is None or not matches or api_key.revoked_at is not None:
        return None
    now = now or timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        # Not an audited change (the history trigger skips it): one UPDATE, no lock.
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key
