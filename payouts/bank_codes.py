"""Bank-code helpers that need no code master: the Japan Post Bank (ゆうちょ銀行) 記号・番号 conversion.

ゆうちょ accounts are known to their owners by 記号 (5 digits) and 番号 (up to 8 digits); other banks — and
the Zengin file — need bank 9900, a 3-digit branch (店番) and a 7-digit account number:

- 記号 starting with 1 (総合口座・通常貯金): 店番 = 記号's 2nd and 3rd digits + "8", 預金種目 1 (普通),
  口座番号 = 番号 (left-padded with zeros to 8 digits, always ending in 1) without its last digit.
  Example: 記号 10530, 番号 12345671 → 店番 058, 普通, 1234567.
- 記号 starting with 0 (振替口座): 店番 = 記号's 2nd and 3rd digits + "9", 預金種目 2 (当座),
  口座番号 = 番号 left-padded with zeros to 7 digits.

There is no bank/branch code master here (it is the 全銀協 list, updated monthly): codes are checked
for their format only (payouts.zengin.validate_bank_account).
"""

from __future__ import annotations

import unicodedata

from payouts.zengin import BankAccount, BankAccountError, ZenginKanaError, to_zengin_kana

YUCHO_BANK_CODE = "9900"
YUCHO_BANK_NAME_KANA = "ﾕｳﾁﾖ"


def yucho_to_zengin(*, kigou: str, bangou: str) -> tuple[str, str, str]:
    """(branch_code, account_type, account_number) of a ゆうちょ 記号・番号; BankAccountError when invalid."""
    kigou = unicodedata.normalize("NFKC", kigou).strip().replace("-", "")
    bangou = unicodedata.normalize("NFKC", bangou).strip().replace("-", "")
    errors: dict[str, str] = {}
    if not (kigou.isascii() and kigou.isdigit() and len(kigou) == 5 and kigou[0] in "01"):
        errors["kigou"] = f"must be 5 digits starting with 1 or 0, got {kigou!r}"
    if not (bangou.isascii() and bangou.isdigit() and 1 <= len(bangou) <= 8):
        errors["bangou"] = f"must be 1 to 8 digits, got {bangou!r}"
    if not errors and kigou[0] == "1" and not bangou.zfill(8).endswith("1"):
        errors["bangou"] = f"a 通常貯金 番号 ends with 1 (8 digits), got {bangou!r}"
    if not errors and kigou[0] == "0" and len(bangou) > 7:
        errors["bangou"] = f"a 振替口座 番号 has at most 7 digits, got {bangou!r}"
    if errors:
        raise BankAccountError(errors)
    if kigou[0] == "1":
        return kigou[1:3] + "8", "1", bangou.zfill(8)[:7]
    return kigou[1:3] + "9", "2", bangou.zfill(7)


def yucho_bank_account(*, kigou: str, bangou: str, holder_name: str) -> BankAccount:
    """A Zengin BankAccount for a ゆうちょ 記号・番号 and the holder's name as typed (converted to kana)."""
    branch_code, account_type, account_number = yucho_to_zengin(kigou=kigou, bangou=bangou)
    try:
        holder_kana = to_zengin_kana(holder_name)
    except ZenginKanaError as error:
        raise BankAccountError({"holder_kana": str(error)}) from error
    return BankAccount(
        bank_code=YUCHO_BANK_CODE,
        branch_code=branch_code,
        account_type=account_type,
        account_number=account_number,
        holder_kana=holder_kana,
        bank_name_kana=YUCHO_BANK_NAME_KANA,
    )
