"""Encrypts TOTP secrets at rest with a Fernet key derived from SECRET_KEY (and its fallbacks, for rotation).

Rotating SECRET_KEY keeps devices working while the old key is listed in SECRET_KEY_FALLBACKS; a device
whose key is gone must be re-enrolled (`manage.py reset_2fa <username>`).
"""

import base64
import hashlib

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


def _fernet() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"accounts.totp:{key}".encode()).digest())) for key in keys]
    )


def secret_encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode("ascii")


def secret_decrypt(token: str) -> str:
    return _fernet().decrypt(token.encode("ascii")).decode()
