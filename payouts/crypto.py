"""Encryption at rest of payout secrets (voucher codes, PINs, receive URLs, bank account numbers and the
bank files that carry them) with Fernet.

The key comes from the environment variable PAYOUT_ENCRYPTION_KEY (a urlsafe-base64 32-byte Fernet key;
several keys separated by commas rotate: the first encrypts, all decrypt). Outside production a fixed
development key is used when the variable is empty; production refuses to encrypt or decrypt without one.
After adding a key in front, `manage.py rotate_payout_key` re-encrypts every stored token with it, so the
old key can then be removed.
"""

from __future__ import annotations

import functools

import environ
from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

ENV_VAR = "PAYOUT_ENCRYPTION_KEY"
# Development and tests only; never accepted under the production settings.
DEV_KEY = "2O46A9Xo3j6x8KgyIUgRDuOeZfEsTh1O-RXOf3R4GAo="


def is_production() -> bool:
    return str(getattr(settings, "SETTINGS_MODULE", "") or "").endswith(".production")


@functools.cache
def _fernet(raw: str, production: bool) -> MultiFernet:
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        if production:
            raise ImproperlyConfigured(f"{ENV_VAR} must be set in production: payout codes are encrypted with it")
        keys = [DEV_KEY]
    if production and DEV_KEY in keys:
        raise ImproperlyConfigured(f"{ENV_VAR} must not be the development key in production")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(f"{ENV_VAR} is not a valid Fernet key") from exc


def _current() -> MultiFernet:
    return _fernet(environ.Env().str(ENV_VAR, default=""), is_production())


def require_key() -> None:
    """Raises ImproperlyConfigured when no usable key is configured (production without the variable)."""
    _current()


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return _current().decrypt(token.encode()).decode()


def encrypt_bytes(data: bytes) -> str:
    return _current().encrypt(data).decode()


def decrypt_bytes(token: str) -> bytes:
    return _current().decrypt(token.encode())


def rotate(token: str) -> str:
    """The same plaintext encrypted with the first (current) key; raises InvalidToken for an unknown key."""
    return _current().rotate(token.encode()).decode()


def reset_key_cache() -> None:
    _fernet.cache_clear()
