"""Masks personal data for lists and logs: enough to recognise, not enough to use."""


def mask_email(email: str) -> str:
    if not email or "@" not in email:
        return "" if not email else "***"
    local, domain = email.rsplit("@", 1)
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    return "*" * max(len(digits) - 4, 0) + digits[-4:]


def mask_secret(value: str, *, visible: int = 4) -> str:
    """Codes and account numbers: only the last few characters."""
    if not value:
        return ""
    return "•" * max(len(value) - visible, 4) + value[-visible:]
