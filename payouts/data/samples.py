"""The committed sample files, built by the real writers: `python -m payouts.data.samples` rewrites them.

- sample_zengin.txt — a 総合振込 file of six transfers (CRLF between records, Shift_JIS half-width kana);
- sample_zengin_result.txt — the bank's answer to it: two transfers returned (口座なし, 名義相違);
- sample_settlement.csv — a provider settlement file (picked up / expired / returned).

tests/payouts/test_zengin.py and test_reconciliation.py check that the files equal what these functions
build and that they parse, so a format change cannot leave stale samples behind.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from payouts.zengin import (
    BankAccount,
    TransferLine,
    ZenginHeader,
    customer_code_for,
    simulate_bank_results,
    zengin_export,
)

DATA_DIR = Path(__file__).resolve().parent
SAMPLE_ZENGIN = DATA_DIR / "sample_zengin.txt"
SAMPLE_ZENGIN_RESULT = DATA_DIR / "sample_zengin_result.txt"
SAMPLE_SETTLEMENT = DATA_DIR / "sample_settlement.csv"

SAMPLE_TRANSFER_DATE = dt.date(2026, 5, 15)
# Payout ids of the sample whose transfers the bank returns, with the 振込結果コード.
SAMPLE_RETURNED = {customer_code_for(1004): "1", customer_code_for(1006): "3"}


def sample_header() -> ZenginHeader:
    return ZenginHeader(
        requester_code="0000123456",
        requester_name_kana="ｻﾎﾟ-ﾄﾎﾟ-ﾀﾙ(ｶ",
        transfer_date=SAMPLE_TRANSFER_DATE,
        bank_code="0001",
        bank_name_kana="ﾐｽﾞﾎ",
        branch_code="001",
        branch_name_kana="ﾄｳｷﾖｳ",
        account_type="2",
        account_number="7654321",
    )


def sample_lines() -> list[TransferLine]:
    """Six transfers; the holder names are typed the way customers type them and converted on the way."""
    people = [
        # (payout id, bank, bank name, branch, branch name, type, number, holder name as typed, amount)
        (1001, "0005", "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ", "123", "ｼﾌﾞﾔ", "1", "1234567", "やまだ たろう", 5500),
        (1002, "0009", "ﾐﾂｲｽﾐﾄﾓ", "456", "ｼﾝｼﾞﾕｸ", "1", "0012345", "サトウ　キョウコ", 12000),
        (1003, "0036", "ﾗｸﾃﾝ", "251", "", "1", "7000001", "ｽｽﾞｷ ｼﾞﾛｳ", 330),
        (1004, "9900", "ﾕｳﾁﾖ", "018", "", "1", "1122334", "タカハシ　ショウヘイ", 1100),
        (1005, "0001", "ﾐｽﾞﾎ", "100", "ﾎﾝﾃﾝ", "2", "3003003", "（カ）ヤマダショウテン", 88000),
        (1006, "0010", "ﾘｿﾅ", "310", "", "4", "0900001", "ｼﾞｮﾝ・スミス", 2750),
    ]
    lines: list[TransferLine] = []
    for payout_id, bank, bank_name, branch, branch_name, kind, number, holder, amount in people:
        account = BankAccount.from_input(
            bank_code=bank,
            branch_code=branch,
            account_type=kind,
            account_number=number,
            holder_name=holder,
            bank_name=bank_name,
            branch_name=branch_name,
        )
        lines.append(TransferLine(account=account, amount_jpy=amount, customer_code=customer_code_for(payout_id)))
    return lines


def sample_zengin_file() -> bytes:
    return zengin_export(header=sample_header(), lines=sample_lines())


def sample_zengin_result_file() -> bytes:
    return simulate_bank_results(sample_zengin_file(), returned=SAMPLE_RETURNED)


def sample_settlement_csv() -> str:
    return (
        "provider,reference,status,amount_jpy,at\n"
        "sevenbank-atm-simulator,SBA-0A1B2C3D4E5F,picked_up,5500,2026-05-20T10:15:00+09:00\n"
        "sevenbank-atm-simulator,SBA-112233445566,expired,1100,2026-06-30 23:59:59\n"
        "points-amazon-simulator,PCS-AMAZON-A1B2C3D4E5F6,picked_up,330,2026-05-21T01:02:03Z\n"
        "points-paypay-simulator,PCS-PAYPAY-0F0E0D0C0B0A,returned,2750,2026-05-22T09:00:00+09:00\n"
    )


def write_samples() -> list[Path]:
    SAMPLE_ZENGIN.write_bytes(sample_zengin_file())
    SAMPLE_ZENGIN_RESULT.write_bytes(sample_zengin_result_file())
    SAMPLE_SETTLEMENT.write_text(sample_settlement_csv(), encoding="utf-8", newline="")
    return [SAMPLE_ZENGIN, SAMPLE_ZENGIN_RESULT, SAMPLE_SETTLEMENT]


if __name__ == "__main__":
    for path in write_samples():
        print(f"wrote {path}")  # noqa: T201 - a developer command
