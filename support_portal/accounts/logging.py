"""A logging filter that masks personal data (emails, phone numbers, long codes) in every log record."""

import logging
import re

from support_portal.core.masking import mask_email, mask_phone, mask_secret

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Japanese numbers (0X0-XXXX-XXXX, 03-XXXX-XXXX, +81 …): 10–11 digits with optional separators.
PHONE = re.compile(r"(?<![\w-])(?:\+81[- ]?|0)\d{1,4}[- ]?\d{1,4}[- ]?\d{3,4}(?![\w-])")
# Voucher/ATM/point codes and account numbers: 8+ characters of digits or upper-case letters and digits
# mixed (after masking phones, so a phone is never double-masked).
CODE = re.compile(r"(?<![\w•*-])(?=[A-Z0-9-]*\d)[A-Z0-9][A-Z0-9-]{6,}[A-Z0-9](?![\w-])")


def mask_text(text: str) -> str:
    text = EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    text = PHONE.sub(lambda m: mask_phone(m.group(0)), text)
    return CODE.sub(lambda m: mask_secret(m.group(0)), text)


class PersonalDataMaskingFilter(logging.Filter):
    """Rewrites the record's message with personal data masked; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: leave it for the handler to report
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
