"""Zengin 総合振込 (全銀協 総合振込 format): bank accounts, the transfer file and the bank's result file.

Pure code: no models, no database. The layout (docs/zengin.md lists every field with its byte position):

- Every record is exactly 120 bytes of Shift_JIS restricted to its single-byte part: ASCII digits, upper-case
  latin, space, the symbols ``( ) - . / , ¥ ｢ ｣`` and JIS X 0201 half-width katakana (large kana, ﾞ and ﾟ).
  One character is one byte, so a field's length in characters is its length in bytes. ``¥`` is byte 0x5C
  (JIS X 0201 roman); every other character is encoded exactly as cp932 encodes it.
- Records: header ``1`` (one), data ``2`` (one or more), trailer ``8`` (count and amount), end ``9``.
  One requester group per file; 種別コード 21 (総合振込) and コード区分 0 (JIS/Shift_JIS) only.
- N fields are right-aligned zero-padded digits; C fields are left-aligned, space-padded.
- Records are separated by CRLF by default (``line_ending`` chooses CRLF, LF or none); the parser accepts
  all three and one trailing EOF byte 0x1A.

The result file is bank-specific in real life; the layout used here (and by `simulate_bank_results`) is the
submitted file echoed back with a 振込結果コード in byte 114 of each data record (the first byte of its
ダミー) and the settled/returned sub-totals in the trailer's ダミー. See `RESULT_REASONS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum

from django.utils import timezone

from support_portal.core.business_days import JST

RECORD_LENGTH = 120
EOF_BYTE = b"\x1a"
LINE_ENDINGS = (b"\r\n", b"\n", b"")

TYPE_CODE_SOGO_FURIKOMI = "21"
CODE_DIVISION_JIS = "0"

MAX_AMOUNT_JPY = 9_999_999_999  # 振込金額 N(10)
MAX_RECORD_COUNT = 999_999  # 合計件数 N(6)
MAX_TOTAL_JPY = 999_999_999_999  # 合計金額 N(12)
HOLDER_NAME_LENGTH = 30  # 受取人名 C(30)


class AccountType(StrEnum):
    """預金種目."""

    ORDINARY = "1"  # 普通
    CURRENT = "2"  # 当座
    SAVINGS = "4"  # 貯蓄
    OTHER = "9"  # その他


ACCOUNT_TYPE_LABELS = {"1": "普通", "2": "当座", "4": "貯蓄", "9": "その他"}

NEW_CODES = {"0": "その他", "1": "第1回振込分", "2": "変更分"}  # 新規コード
TRANSFER_TYPES = {"7": "テレ振込", "8": "文書振込"}  # 振込指定区分


class TransferStatus(StrEnum):
    SETTLED = "settled"
    RETURNED = "returned"


# 振込結果コード (byte 114 of a result data record) → (ja, en). "0" is the only settled code.
RESULT_REASONS: dict[str, tuple[str, str]] = {
    "0": ("振込済", "settled"),
    "1": ("口座なし", "no such account"),
    "2": ("口座解約済", "account closed"),
    "3": ("名義相違", "holder name does not match"),
    "4": ("預金種目相違", "account type does not match"),
    "8": ("受取拒否・取扱不能", "refused by the payee or the bank"),
    "9": ("その他", "other"),
}
SETTLED_RESULT_CODE = "0"


# --- characters -------------------------------------------------------------------------------------

_HALF_KANA_LARGE = "ｱｲｳｴｵｶｷｸｹｺｻｼｽｾｿﾀﾁﾂﾃﾄﾅﾆﾇﾈﾉﾊﾋﾌﾍﾎﾏﾐﾑﾒﾓﾔﾕﾖﾗﾘﾙﾚﾛﾜﾝ"
_HALF_MARKS = "ﾞﾟ"
_SYMBOLS = " ()-./,¥｢｣"
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Every character a C field may hold.
ZENGIN_CHARS = frozenset(_HALF_KANA_LARGE + _HALF_MARKS + _SYMBOLS + _DIGITS + _UPPER)

_YEN_BYTE = 0x5C


def _char_to_byte(char: str) -> int:
    if char == "¥":
        return _YEN_BYTE
    code = ord(char)
    if code < 0x80:
        return code
    return code - 0xFEC0  # U+FF61..U+FF9F (half-width katakana) → 0xA1..0xDF, as in Shift_JIS/cp932


def _byte_to_char(byte: int) -> str:
    if byte == _YEN_BYTE:
        return "¥"
    if byte < 0x80:
        return chr(byte)
    if 0xA1 <= byte <= 0xDF:
        return chr(byte + 0xFEC0)
    return ""


_ALLOWED_BYTES = frozenset(_char_to_byte(char) for char in ZENGIN_CHARS)


def encode_zengin(text: str) -> bytes:
    """Bytes of a text made only of `ZENGIN_CHARS` (one byte each); ValueError names the first other one."""
    for index, char in enumerate(text):
        if char not in ZENGIN_CHARS:
            raise ValueError(f"character {char!r} at position {index + 1} cannot be written in a Zengin file")
    return bytes(_char_to_byte(char) for char in text)


# Full-width katakana → half-width, built from Unicode's own compatibility mappings (ｱ ↔ ア …).
_KATAKANA_TO_HALF: dict[str, str] = {
    unicodedata.normalize("NFKC", half): half for half in _HALF_KANA_LARGE + "ｦｧｨｩｪｫｬｭｮｯ"
}
# Banks require large kana; ヲ, ヰ, ヱ are written as they sound (the 全銀 name set has no ｦ).
_KANA_REPLACEMENTS = {
    "ァ": "ア", "ィ": "イ", "ゥ": "ウ", "ェ": "エ", "ォ": "オ",
    "ャ": "ヤ", "ュ": "ユ", "ョ": "ヨ", "ッ": "ツ", "ヮ": "ワ", "ヵ": "カ", "ヶ": "ケ",
    "ヲ": "オ", "ヰ": "イ", "ヱ": "エ",
}  # fmt: skip
_DASHES = frozenset("ー‐‑‒–—―−ｰ-")
_SYMBOL_REPLACEMENTS = {"「": "｢", "」": "｣", "・": " ", "\u3000": " "}
_MARKS = {"\u3099": "ﾞ", "\u309a": "ﾟ"}  # combining voiced / semi-voiced sound marks


class ZenginError(ValueError):
    """Something cannot be written to or read from a Zengin file."""


class ZenginKanaError(ZenginError):
    """A text has a character no Zengin name can hold."""

    def __init__(self, text: str, position: int, char: str) -> None:
        self.text = text
        self.position = position
        self.char = char
        super().__init__(
            f"character {char!r} (U+{ord(char):04X}) at position {position} cannot be written in half-width "
            "kana; use katakana/hiragana, A-Z, 0-9, space or ( ) - . / ,"
        )


# Characters with one direct replacement: lower-case latin, dashes and a few symbols.
_DIRECT: dict[str, str] = {
    **{chr(code): chr(code).upper() for code in range(ord("a"), ord("z") + 1)},
    **dict.fromkeys(_DASHES, "-"),
    **_SYMBOL_REPLACEMENTS,
    # A lone (half-width or spacing) sound mark: NFKC turns ﾞ into the combining U+3099.
    "\u3099": "ﾞ",
    "\u309a": "ﾟ",
}


def _kana_char(char: str) -> str:
    """The half-width form of one NFKC-normalised character ('' when there is none)."""
    if char in ZENGIN_CHARS:
        return char
    if char in _DIRECT:
        return _DIRECT[char]
    if "\u3041" <= char <= "\u3096":  # hiragana → katakana (ぁ..ゖ → ァ..ヶ)
        char = chr(ord(char) + 0x60)
    char = _KANA_REPLACEMENTS.get(char, char)
    if char in _KATAKANA_TO_HALF:
        return _KATAKANA_TO_HALF[char]
    decomposed = unicodedata.normalize("NFD", char)  # ガ → カ + U+3099, ヴ → ウ + U+3099
    base = _KANA_REPLACEMENTS.get(decomposed[0], decomposed[0])
    if len(decomposed) == 2 and decomposed[1] in _MARKS and base in _KATAKANA_TO_HALF:
        return _KATAKANA_TO_HALF[base] + _MARKS[decomposed[1]]
    return ""


def to_zengin_kana(text: str) -> str:
    """The Zengin (half-width kana) form of a name, or ZenginKanaError naming the first impossible character.

    NFKC first (full-width latin/digits/symbols → ASCII, half-width kana → full-width), then: hiragana →
    katakana; small kana → large (ャュョッ → ﾔﾕﾖﾂ, ァ → ｱ, ヮ → ﾜ, ヵヶ → ｶｹ); ヲヰヱ → ｵｲｴ; voiced and
    semi-voiced kana → base + ﾞ/ﾟ (ガ → ｶﾞ, ヴ → ｳﾞ, パ → ﾊﾟ); long vowel and dashes (ー ｰ ‐ – — −) → ``-``;
    lower-case latin → upper-case; 「」 → ｢｣; full-width space and ・ → space; leading/trailing spaces
    removed. Kanji, iteration marks and anything else are refused, never dropped.
    """
    out: list[str] = []
    # Character by character, so an error points at the character as typed; a voiced kana typed as two
    # characters (ｶﾞ, or カ + U+3099) converts the same as the composed one (ガ).
    for index, original in enumerate(text.replace("゛", "\u3099").replace("゜", "\u309a")):
        for char in unicodedata.normalize("NFKC", original):
            converted = _kana_char(char)
            if not converted:
                raise ZenginKanaError(text, index + 1, char)
            out.append(converted)
    return "".join(out).strip(" ")


def zengin_text_problem(text: str, *, max_length: int, required: bool) -> str:
    """Why a C-field text is not writable as is ('' when it is)."""
    if not text:
        return "is required" if required else ""
    bad = [char for char in text if char not in ZENGIN_CHARS]
    if bad:
        return f"has characters a Zengin file cannot hold: {''.join(dict.fromkeys(bad))!r} (use to_zengin_kana)"
    if len(text) > max_length:
        return f"is {len(text)} characters long; at most {max_length} fit (ﾞ and ﾟ count as one each)"
    if text != text.strip(" "):
        return "must not start or end with a space"
    return ""


def _digits_problem(value: str, *, length: int, exact: bool = True) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        return f"must be {length} digits, got {value!r}"
    if (exact and len(value) != length) or len(value) > length:
        return f"must be {length} digits, got {value!r}"
    return ""


# --- accounts and lines ----------------------------------------------------------------------------


class ZenginFieldsError(ZenginError):
    """Invalid values; `errors` maps each bad field to its message (form friendly)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))


class BankAccountError(ZenginFieldsError):
    """Invalid bank account details."""


def validate_bank_account(
    *,
    bank_code: str,
    branch_code: str,
    account_type: str,
    account_number: str,
    holder_kana: str,
    bank_name_kana: str = "",
    branch_name_kana: str = "",
) -> dict[str, str]:
    """Field → message for every problem ({} when valid). Checks the format only (no bank code master here)."""
    errors: dict[str, str] = {}
    checks = (
        ("bank_code", _digits_problem(bank_code, length=4)),
        ("branch_code", _digits_problem(branch_code, length=3)),
        ("account_number", _digits_problem(account_number, length=7)),
        ("holder_kana", zengin_text_problem(holder_kana, max_length=HOLDER_NAME_LENGTH, required=True)),
        ("bank_name_kana", zengin_text_problem(bank_name_kana, max_length=15, required=False)),
        ("branch_name_kana", zengin_text_problem(branch_name_kana, max_length=15, required=False)),
    )
    errors.update((field, message) for field, message in checks if message)
    if account_type not in ACCOUNT_TYPE_LABELS:
        errors["account_type"] = f"must be one of 1 (普通), 2 (当座), 4 (貯蓄), 9 (その他), got {account_type!r}"
    if "account_number" not in errors and account_number == "0000000":
        errors["account_number"] = "must not be all zeros"
    return dict(sorted(errors.items()))


@dataclasses.dataclass(frozen=True)
class BankAccount:
    """A payee's account as the Zengin file holds it; invalid values raise BankAccountError."""

    bank_code: str
    branch_code: str
    account_type: str
    account_number: str = dataclasses.field(repr=False)
    holder_kana: str
    bank_name_kana: str = ""
    branch_name_kana: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_type", str(self.account_type))
        errors = validate_bank_account(**dataclasses.asdict(self))
        if errors:
            raise BankAccountError(errors)

    def masked_number(self) -> str:
        return "*" * 3 + self.account_number[-4:]

    @classmethod
    def from_input(
        cls,
        *,
        bank_code: str,
        branch_code: str,
        account_type: str,
        account_number: str,
        holder_name: str,
        bank_name: str = "",
        branch_name: str = "",
    ) -> BankAccount:
        """An account from what a customer typed: full-width digits accepted, a shorter account number
        zero-padded on the left to 7 digits, names converted with `to_zengin_kana`. BankAccountError lists
        every bad field (a name that cannot be converted included)."""
        errors: dict[str, str] = {}
        names: dict[str, str] = {}
        for field, value in (
            ("holder_kana", holder_name),
            ("bank_name_kana", bank_name),
            ("branch_name_kana", branch_name),
        ):
            try:
                names[field] = to_zengin_kana(value)
            except ZenginKanaError as error:
                errors[field] = str(error)
                names[field] = ""
        number = unicodedata.normalize("NFKC", account_number).strip().replace("-", "")
        if number.isascii() and number.isdigit() and len(number) < 7:
            number = number.zfill(7)
        values = {
            "bank_code": unicodedata.normalize("NFKC", bank_code).strip(),
            "branch_code": unicodedata.normalize("NFKC", branch_code).strip(),
            "account_type": unicodedata.normalize("NFKC", str(account_type)).strip(),
            "account_number": number,
        }
        found = validate_bank_account(**values, **names)
        found.update(errors)
        if found:
            raise BankAccountError(dict(sorted(found.items())))
        return cls(**values, **names)


def _required_digits(value: str, *, length: int, name: str) -> str:
    problem = _digits_problem(value, length=length, exact=False) if value else "is required"
    if problem:
        raise ZenginError(f"{name} {problem}")
    return value.zfill(length)


@dataclasses.dataclass(frozen=True)
class TransferLine:
    """One transfer (one data record). `customer_code` (顧客コード1, up to 10 digits, stored zero-padded to
    10) is how the bank's result is matched back: use `customer_code_for(payout_id)`."""

    account: BankAccount
    amount_jpy: int
    customer_code: str
    customer_code2: str = ""
    new_code: str = "0"
    transfer_type: str = "7"
    clearing_house: str = ""

    def __post_init__(self) -> None:
        amount = self.amount_jpy
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT_JPY:
            raise ZenginError(f"amount_jpy must be a whole number of yen from 1 to {MAX_AMOUNT_JPY}, got {amount!r}")
        object.__setattr__(self, "customer_code", _required_digits(self.customer_code, length=10, name="customer_code"))
        if self.customer_code2:
            code2 = _required_digits(self.customer_code2, length=10, name="customer_code2")
            object.__setattr__(self, "customer_code2", code2)
        if self.new_code not in NEW_CODES:
            raise ZenginError(f"new_code must be one of {sorted(NEW_CODES)}, got {self.new_code!r}")
        if self.transfer_type not in TRANSFER_TYPES:
            raise ZenginError(f"transfer_type must be 7 (テレ振込) or 8 (文書振込), got {self.transfer_type!r}")
        if self.clearing_house and _digits_problem(self.clearing_house, length=4):
            raise ZenginError(f"clearing_house must be empty or 4 digits, got {self.clearing_house!r}")


def customer_code_for(payout_id: int) -> str:
    """顧客コード1 for a payout: its id, zero-padded to 10 digits."""
    if not 0 < payout_id <= 9_999_999_999:
        raise ZenginError(f"payout id {payout_id} does not fit the 10-digit customer code")
    return f"{payout_id:010d}"


@dataclasses.dataclass(frozen=True)
class ZenginHeader:
    """The header record: who sends the money (依頼人), from which account, on which day (取組日)."""

    requester_code: str
    requester_name_kana: str
    transfer_date: dt.date
    bank_code: str
    bank_name_kana: str
    branch_code: str
    branch_name_kana: str
    account_type: str
    account_number: str = dataclasses.field(repr=False)
    type_code: str = TYPE_CODE_SOGO_FURIKOMI

    def __post_init__(self) -> None:
        object.__setattr__(self, "account_type", str(self.account_type))
        problems = {
            "requester_code": _digits_problem(self.requester_code, length=10),
            "requester_name_kana": zengin_text_problem(self.requester_name_kana, max_length=40, required=True),
            "bank_code": _digits_problem(self.bank_code, length=4),
            "bank_name_kana": zengin_text_problem(self.bank_name_kana, max_length=15, required=False),
            "branch_code": _digits_problem(self.branch_code, length=3),
            "branch_name_kana": zengin_text_problem(self.branch_name_kana, max_length=15, required=False),
            "account_number": _digits_problem(self.account_number, length=7),
            "account_type": "" if self.account_type in ACCOUNT_TYPE_LABELS else "must be 1, 2, 4 or 9",
            "type_code": "" if self.type_code == TYPE_CODE_SOGO_FURIKOMI else "must be 21 (総合振込)",
            "transfer_date": "" if isinstance(self.transfer_date, dt.date) else "must be a date",
        }
        errors = {field: message for field, message in problems.items() if message}
        if errors:
            raise ZenginFieldsError(errors)


# --- layout ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    """One field of a record: 1-based start byte, length in bytes, N (digits) or C (characters)."""

    name_ja: str
    name: str
    start: int
    length: int
    kind: str

    @property
    def end(self) -> int:
        return self.start + self.length - 1

    def cut(self, record: bytes) -> bytes:
        return record[self.start - 1 : self.end]


HEADER_FIELDS: tuple[Field, ...] = (
    Field("データ区分", "record_type", 1, 1, "N"),
    Field("種別コード", "type_code", 2, 2, "N"),
    Field("コード区分", "code_division", 4, 1, "N"),
    Field("振込依頼人コード", "requester_code", 5, 10, "N"),
    Field("振込依頼人名", "requester_name_kana", 15, 40, "C"),
    Field("取組日", "transfer_date", 55, 4, "N"),
    Field("仕向銀行番号", "bank_code", 59, 4, "N"),
    Field("仕向銀行名", "bank_name_kana", 63, 15, "C"),
    Field("仕向支店番号", "branch_code", 78, 3, "N"),
    Field("仕向支店名", "branch_name_kana", 81, 15, "C"),
    Field("預金種目", "account_type", 96, 1, "N"),
    Field("口座番号", "account_number", 97, 7, "N"),
    Field("ダミー", "dummy", 104, 17, "C"),
)
DATA_FIELDS: tuple[Field, ...] = (
    Field("データ区分", "record_type", 1, 1, "N"),
    Field("被仕向銀行番号", "bank_code", 2, 4, "N"),
    Field("被仕向銀行名", "bank_name_kana", 6, 15, "C"),
    Field("被仕向支店番号", "branch_code", 21, 3, "N"),
    Field("被仕向支店名", "branch_name_kana", 24, 15, "C"),
    Field("手形交換所番号", "clearing_house", 39, 4, "N"),
    Field("預金種目", "account_type", 43, 1, "N"),
    Field("口座番号", "account_number", 44, 7, "N"),
    Field("受取人名", "holder_kana", 51, 30, "C"),
    Field("振込金額", "amount_jpy", 81, 10, "N"),
    Field("新規コード", "new_code", 91, 1, "N"),
    Field("顧客コード1", "customer_code", 92, 10, "N"),
    Field("顧客コード2", "customer_code2", 102, 10, "N"),
    Field("振込指定区分", "transfer_type", 112, 1, "N"),
    Field("識別表示", "edi_flag", 113, 1, "C"),
    Field("ダミー", "dummy", 114, 7, "C"),
)
TRAILER_FIELDS: tuple[Field, ...] = (
    Field("データ区分", "record_type", 1, 1, "N"),
    Field("合計件数", "total_count", 2, 6, "N"),
    Field("合計金額", "total_amount_jpy", 8, 12, "N"),
    Field("ダミー", "dummy", 20, 101, "C"),
)
END_FIELDS: tuple[Field, ...] = (
    Field("データ区分", "record_type", 1, 1, "N"),
    Field("ダミー", "dummy", 2, 119, "C"),
)
# The result file: the same records, with these fields inside the data record's and trailer's ダミー.
RESULT_DATA_FIELDS: tuple[Field, ...] = (
    *DATA_FIELDS[:-1],
    Field("振込結果コード", "result_code", 114, 1, "N"),
    Field("ダミー", "dummy", 115, 6, "C"),
)
RESULT_TRAILER_FIELDS: tuple[Field, ...] = (
    *TRAILER_FIELDS[:-1],
    Field("振込済件数", "settled_count", 20, 6, "N"),
    Field("振込済金額", "settled_amount_jpy", 26, 12, "N"),
    Field("振込不能件数", "returned_count", 38, 6, "N"),
    Field("振込不能金額", "returned_amount_jpy", 44, 12, "N"),
    Field("ダミー", "dummy", 56, 65, "C"),
)
LAYOUTS: dict[str, tuple[Field, ...]] = {
    "header": HEADER_FIELDS,
    "data": DATA_FIELDS,
    "trailer": TRAILER_FIELDS,
    "end": END_FIELDS,
    "result data": RESULT_DATA_FIELDS,
    "result trailer": RESULT_TRAILER_FIELDS,
}
RECORD_KINDS = {"1": "header", "2": "data", "8": "trailer", "9": "end"}


def _build(fields: tuple[Field, ...], values: Mapping[str, str]) -> bytes:
    parts: list[bytes] = []
    for field in fields:
        value = values.get(field.name, "")
        if field.kind == "N":
            text = value if value == "" or len(value) == field.length else value.zfill(field.length)
            text = text or " " * field.length
        else:
            text = value.ljust(field.length)
        if len(text) != field.length:
            raise ZenginError(f"{field.name_ja} ({field.name}) {value!r} does not fit {field.length} bytes")
        parts.append(encode_zengin(text))
    record = b"".join(parts)
    if len(record) != RECORD_LENGTH:  # pragma: no cover - the layouts are checked by tests
        raise ZenginError(f"record is {len(record)} bytes, not {RECORD_LENGTH}")
    return record


def _header_record(header: ZenginHeader) -> bytes:
    values = {
        "record_type": "1",
        "type_code": header.type_code,
        "code_division": CODE_DIVISION_JIS,
        "requester_code": header.requester_code,
        "requester_name_kana": header.requester_name_kana,
        "transfer_date": f"{header.transfer_date:%m%d}",
        "bank_code": header.bank_code,
        "bank_name_kana": header.bank_name_kana,
        "branch_code": header.branch_code,
        "branch_name_kana": header.branch_name_kana,
        "account_type": header.account_type,
        "account_number": header.account_number,
    }
    return _build(HEADER_FIELDS, values)


def _data_values(line: TransferLine) -> dict[str, str]:
    account = line.account
    return {
        "record_type": "2",
        "bank_code": account.bank_code,
        "bank_name_kana": account.bank_name_kana,
        "branch_code": account.branch_code,
        "branch_name_kana": account.branch_name_kana,
        "clearing_house": line.clearing_house,
        "account_type": account.account_type,
        "account_number": account.account_number,
        "holder_kana": account.holder_kana,
        "amount_jpy": str(line.amount_jpy),
        "new_code": line.new_code,
        "customer_code": line.customer_code,
        "customer_code2": line.customer_code2,
        "transfer_type": line.transfer_type,
        "edi_flag": " ",
    }


def _trailer_record(count: int, total: int, extra: Mapping[str, str] | None = None) -> bytes:
    if count > MAX_RECORD_COUNT:
        raise ZenginError(f"{count} transfers do not fit one file (at most {MAX_RECORD_COUNT})")
    if total > MAX_TOTAL_JPY:
        raise ZenginError(f"the total ¥{total} does not fit the 12-digit 合計金額")
    values = {"record_type": "8", "total_count": str(count), "total_amount_jpy": str(total), **(extra or {})}
    return _build(RESULT_TRAILER_FIELDS if extra else TRAILER_FIELDS, values)


def _end_record() -> bytes:
    return _build(END_FIELDS, {"record_type": "9"})


def iter_zengin_records(*, header: ZenginHeader, lines: Iterable[TransferLine]) -> Iterator[bytes]:
    """The file's records one by one (120 bytes each, no separator): lines are consumed lazily, so a
    million transfers stream in constant memory. Raises ZenginError for an empty or oversized file."""
    yield _header_record(header)
    count = total = 0
    for line in lines:
        count += 1
        total += line.amount_jpy
        if count > MAX_RECORD_COUNT:
            raise ZenginError(f"more than {MAX_RECORD_COUNT} transfers do not fit one file")
        yield _build(DATA_FIELDS, _data_values(line))
    if count == 0:
        raise ZenginError("a transfer file needs at least one transfer")
    yield _trailer_record(count, total)
    yield _end_record()


def zengin_export(*, header: ZenginHeader, lines: Iterable[TransferLine], line_ending: bytes = b"\r\n") -> bytes:
    """The whole 総合振込 file. `line_ending` is CRLF (default), LF or b"" (no separators), as the bank asks."""
    if line_ending not in LINE_ENDINGS:
        raise ZenginError(f"line_ending must be one of {LINE_ENDINGS!r}")
    return b"".join(record + line_ending for record in iter_zengin_records(header=header, lines=lines))


# --- parsing ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One problem in a file: the record (1-based; 0 = the file as a whole), its kind and the field."""

    record: int
    kind: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"record {self.record} ({self.kind})" if self.record else "file"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ZenginFormatError(ZenginError):
    """A file that does not follow the format; `errors` lists every problem found."""

    MAX_IN_MESSAGE = 20

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(str(error) for error in errors[: self.MAX_IN_MESSAGE])
        more = len(errors) - self.MAX_IN_MESSAGE
        super().__init__(shown + (f"; … and {more} more" if more > 0 else ""))


@dataclasses.dataclass(frozen=True)
class ZenginFile:
    header: ZenginHeader
    lines: tuple[TransferLine, ...]
    total_count: int
    total_amount_jpy: int


@dataclasses.dataclass(frozen=True)
class TransferResult:
    """The bank's answer for one transfer. `reason_code` is the 振込結果コード ('0' when settled)."""

    record: int
    customer_code: str
    status: TransferStatus
    reason_code: str
    amount_jpy: int
    account: BankAccount

    @property
    def reference(self) -> str:
        """The key reconciliation matches on (see payouts.reconciliation)."""
        return self.customer_code

    @property
    def reason_ja(self) -> str:
        return RESULT_REASONS[self.reason_code][0]

    @property
    def reason_en(self) -> str:
        return RESULT_REASONS[self.reason_code][1]


def split_records(data: bytes) -> tuple[list[bytes], list[FieldError]]:
    """The raw records of a file with CRLF, LF or no separators (one trailing 0x1A allowed)."""
    errors: list[FieldError] = []
    if data.endswith(EOF_BYTE):
        data = data[:-1]
    if not data:
        return [], [FieldError(0, "file", "", "the file is empty")]
    if b"\n" in data:
        # Shift_JIS bytes of the allowed characters never contain 0x0A/0x0D, so splitting is safe.
        records = data.split(b"\n")
        if records[-1] == b"":
            records.pop()
        records = [record.removesuffix(b"\r") for record in records]
    else:
        if len(data) % RECORD_LENGTH:
            errors.append(FieldError(0, "file", "", f"{len(data)} bytes without line breaks is not a multiple of 120"))
        records = [data[start : start + RECORD_LENGTH] for start in range(0, len(data), RECORD_LENGTH)]
    return records, errors


def _decode_field(record: bytes, field: Field) -> tuple[str, str]:
    """(text, problem) of one field; C text loses its trailing padding, an all-space N field is ''."""
    raw = field.cut(record)
    if field.kind == "N":
        if raw.strip(b" ") == b"":
            return "", ""
        if not (raw.isascii() and raw.isdigit()):
            return "", f"must be {field.length} digits, got {raw.decode('cp932', errors='replace')!r}"
        return raw.decode("ascii"), ""
    chars: list[str] = []
    for offset, byte in enumerate(raw):
        if byte not in _ALLOWED_BYTES:
            return "", f"byte 0x{byte:02X} at position {field.start + offset} is not an allowed character"
        chars.append(_byte_to_char(byte))
    return "".join(chars).rstrip(" "), ""


class _RecordReader:
    """Decodes the fields of one record, adding problems to the shared error list."""

    def __init__(self, record: bytes, number: int, kind: str, errors: list[FieldError]) -> None:
        self.record = record
        self.number = number
        self.kind = kind
        self.errors = errors
        self.ok = True

    def error(self, field: Field | None, message: str) -> None:
        self.ok = False
        label = f"{field.name_ja} ({field.name})" if field else ""
        self.errors.append(FieldError(self.number, self.kind, label, message))

    def read(self, fields: tuple[Field, ...]) -> dict[str, str]:
        values: dict[str, str] = {}
        for field in fields:
            text, problem = _decode_field(self.record, field)
            if problem:
                self.error(field, problem)
            values[field.name] = text
        return values

    def has_error(self, name: str) -> bool:
        return any(error.record == self.number and error.field.endswith(f"({name})") for error in self.errors)

    def require(self, fields: tuple[Field, ...], values: dict[str, str], *names: str) -> None:
        by_name = {field.name: field for field in fields}
        for name in names:
            if values[name] == "" and not self.has_error(name):
                self.error(by_name[name], "is required")

    def blank(self, fields: tuple[Field, ...], values: dict[str, str], *names: str) -> None:
        by_name = {field.name: field for field in fields}
        for name in names:
            if values[name].strip(" "):
                self.error(by_name[name], f"must be spaces, got {values[name]!r}")


def _infer_year(month: int, day: int, year: int | None) -> int:
    if year is not None:
        return year
    today = timezone.now().astimezone(JST).date()
    candidates: list[tuple[int, int]] = []
    for candidate in (today.year - 1, today.year, today.year + 1):
        try:
            candidates.append((abs((dt.date(candidate, month, day) - today).days), candidate))
        except ValueError:
            continue
    return min(candidates)[1] if candidates else today.year


def _parse_header(reader: _RecordReader, year: int | None) -> ZenginHeader | None:
    values = reader.read(HEADER_FIELDS)
    fields = {field.name: field for field in HEADER_FIELDS}
    reader.require(HEADER_FIELDS, values, "requester_code", "transfer_date", "bank_code", "branch_code")
    reader.require(HEADER_FIELDS, values, "account_type", "account_number")
    if values["type_code"] and values["type_code"] != TYPE_CODE_SOGO_FURIKOMI:
        reader.error(fields["type_code"], f"must be 21 (総合振込), got {values['type_code']!r}")
    if values["code_division"] != CODE_DIVISION_JIS:
        reader.error(fields["code_division"], f"must be 0 (JIS), got {values['code_division']!r}")
    if values["account_type"] and values["account_type"] not in ACCOUNT_TYPE_LABELS:
        reader.error(fields["account_type"], f"must be 1, 2, 4 or 9, got {values['account_type']!r}")
    if not values["requester_name_kana"]:
        reader.error(fields["requester_name_kana"], "is required")
    elif values["requester_name_kana"].startswith(" "):
        reader.error(fields["requester_name_kana"], "must not start with a space")
    reader.blank(HEADER_FIELDS, values, "dummy")
    transfer_date: dt.date | None = None
    if values["transfer_date"]:
        month, day = int(values["transfer_date"][:2]), int(values["transfer_date"][2:])
        chosen_year = _infer_year(month, day, year) if 1 <= month <= 12 else 0
        try:
            transfer_date = dt.date(chosen_year, month, day)
        except ValueError:
            reader.error(fields["transfer_date"], f"{values['transfer_date']!r} is not a date (MMDD)")
    if not reader.ok or transfer_date is None:
        return None
    try:
        return ZenginHeader(
            requester_code=values["requester_code"],
            requester_name_kana=values["requester_name_kana"],
            transfer_date=transfer_date,
            bank_code=values["bank_code"],
            bank_name_kana=values["bank_name_kana"],
            branch_code=values["branch_code"],
            branch_name_kana=values["branch_name_kana"],
            account_type=values["account_type"],
            account_number=values["account_number"],
        )
    except ZenginFieldsError as error:  # what the checks above leave (a name starting with a space…)
        for name, message in error.errors.items():
            reader.error(fields[name], message)
        return None


def _parse_data(reader: _RecordReader, *, result: bool) -> tuple[TransferLine | None, str]:
    layout = RESULT_DATA_FIELDS if result else DATA_FIELDS
    fields = {field.name: field for field in layout}
    values = reader.read(layout)
    reader.require(layout, values, "bank_code", "branch_code", "account_type", "account_number")
    reader.require(layout, values, "amount_jpy", "new_code", "customer_code", "transfer_type")
    account_errors = validate_bank_account(
        bank_code=values["bank_code"] or "0000",
        branch_code=values["branch_code"] or "000",
        account_type=values["account_type"] or "1",
        account_number=values["account_number"] or "0000001",
        holder_kana=values["holder_kana"],
        bank_name_kana=values["bank_name_kana"],
        branch_name_kana=values["branch_name_kana"].rstrip(" "),
    )
    for name, message in account_errors.items():
        if not reader.has_error(name):
            reader.error(fields[name], message)
    if values["amount_jpy"] and int(values["amount_jpy"]) == 0:
        reader.error(fields["amount_jpy"], "must be more than 0")
    if values["new_code"] and values["new_code"] not in NEW_CODES:
        reader.error(fields["new_code"], f"must be 0, 1 or 2, got {values['new_code']!r}")
    if values["transfer_type"] and values["transfer_type"] not in TRANSFER_TYPES:
        reader.error(fields["transfer_type"], f"must be 7 or 8, got {values['transfer_type']!r}")
    if values["edi_flag"] != "":
        reader.error(
            fields["edi_flag"], f"must be a space (EDI information is not supported), got {values['edi_flag']!r}"
        )
    reader.blank(layout, values, "dummy")
    result_code = values.get("result_code", "")
    if result and values["result_code"] == "":
        reader.error(fields["result_code"], "is required in a result file")
    elif result and result_code not in RESULT_REASONS:
        reader.error(fields["result_code"], f"must be one of {', '.join(RESULT_REASONS)}, got {result_code!r}")
    if not reader.ok:
        return None, result_code
    try:
        line = TransferLine(
            account=BankAccount(
                bank_code=values["bank_code"],
                branch_code=values["branch_code"],
                account_type=values["account_type"],
                account_number=values["account_number"],
                holder_kana=values["holder_kana"],
                bank_name_kana=values["bank_name_kana"],
                branch_name_kana=values["branch_name_kana"],
            ),
            amount_jpy=int(values["amount_jpy"]),
            customer_code=values["customer_code"],
            customer_code2=values["customer_code2"],
            new_code=values["new_code"],
            transfer_type=values["transfer_type"],
            clearing_house=values["clearing_house"],
        )
    except ZenginError as error:  # pragma: no cover - the checks above are meant to leave nothing
        reader.error(None, str(error))
        return None, result_code
    return line, result_code


@dataclasses.dataclass
class _Parsed:
    header: ZenginHeader | None = None
    lines: list[tuple[int, TransferLine, str]] = dataclasses.field(default_factory=list)
    data_records: int = 0
    data_amount: int = 0
    settled: tuple[int, int] = (0, 0)
    returned: tuple[int, int] = (0, 0)
    trailer: dict[str, str] | None = None


_NEXT_KINDS = {"": ("1",), "1": ("2",), "2": ("2", "8"), "8": ("9",), "9": ()}
_KIND_NAMES = {"1": "a header (1)", "2": "a data (2)", "8": "a trailer (8)", "9": "an end (9)"}


def _parse(data: bytes, *, year: int | None, result: bool) -> _Parsed:
    records, errors = split_records(data)
    parsed = _Parsed()
    previous = ""
    for number, record in enumerate(records, start=1):
        record_type = chr(record[0]) if record and record[0] < 0x80 else "?"
        kind = RECORD_KINDS.get(record_type, "unknown")
        reader = _RecordReader(record, number, kind, errors)
        if len(record) != RECORD_LENGTH:
            reader.error(None, f"is {len(record)} bytes long, not {RECORD_LENGTH}")
        expected = _NEXT_KINDS[previous]
        if record_type not in expected:
            wanted = " or ".join(_KIND_NAMES[kind_code] for kind_code in expected) or "nothing (after the end record)"
            reader.error(None, f"expected {wanted} record, got record type {record_type!r}")
        if record_type in RECORD_KINDS:
            previous = record_type
        if reader.ok:
            _parse_record(parsed, reader, record_type, year=year, result=result)
        elif record_type == "2":
            _count_data(parsed, record, result=result)
    if records and previous != "9" and not any(e.message.startswith("expected") for e in errors):
        errors.append(FieldError(0, "file", "", "the file does not end with a trailer (8) and an end (9) record"))
    if errors:
        raise ZenginFormatError(errors)
    return parsed


def _parse_record(parsed: _Parsed, reader: _RecordReader, record_type: str, *, year: int | None, result: bool) -> None:
    if record_type == "1":
        parsed.header = _parse_header(reader, year)
    elif record_type == "2":
        _add_data(parsed, reader, result=result)
    elif record_type == "8":
        parsed.trailer = reader.read(RESULT_TRAILER_FIELDS if result else TRAILER_FIELDS)
        if not result:
            reader.blank(TRAILER_FIELDS, parsed.trailer, "dummy")
        _check_trailer(parsed, reader, result=result)
    else:
        reader.blank(END_FIELDS, reader.read(END_FIELDS), "dummy")


def _count_data(parsed: _Parsed, record: bytes, *, result: bool) -> int:
    """Counts a data record towards the totals (even an invalid one, so the trailer check stays meaningful)."""
    parsed.data_records += 1
    layout = RESULT_DATA_FIELDS if result else DATA_FIELDS
    amount_field = next(field for field in layout if field.name == "amount_jpy")
    amount_text, _problem = _decode_field(record, amount_field)
    amount = int(amount_text) if amount_text else 0
    parsed.data_amount += amount
    return amount


def _add_data(parsed: _Parsed, reader: _RecordReader, *, result: bool) -> None:
    amount = _count_data(parsed, reader.record, result=result)
    line, result_code = _parse_data(reader, result=result)
    if line is None:
        return
    parsed.lines.append((reader.number, line, result_code))
    if result_code == SETTLED_RESULT_CODE:
        parsed.settled = (parsed.settled[0] + 1, parsed.settled[1] + amount)
    elif result_code:
        parsed.returned = (parsed.returned[0] + 1, parsed.returned[1] + amount)


def _check_trailer(parsed: _Parsed, reader: _RecordReader, *, result: bool) -> None:
    values = parsed.trailer or {}
    layout = {field.name: field for field in (RESULT_TRAILER_FIELDS if result else TRAILER_FIELDS)}
    checks = [("total_count", parsed.data_records, "data records"), ("total_amount_jpy", parsed.data_amount, "yen")]
    if result:
        checks += [
            ("settled_count", parsed.settled[0], "settled records"),
            ("settled_amount_jpy", parsed.settled[1], "settled yen"),
            ("returned_count", parsed.returned[0], "returned records"),
            ("returned_amount_jpy", parsed.returned[1], "returned yen"),
        ]
    for name, actual, what in checks:
        text = values.get(name, "")
        if text == "":
            reader.error(layout[name], "is required")
        elif int(text) != actual:
            reader.error(layout[name], f"says {int(text)} but the file has {actual} {what}")


def zengin_parse(data: bytes, *, year: int | None = None) -> ZenginFile:
    """Parse and validate a 総合振込 file; ZenginFormatError lists every problem (record number and field).

    取組日 has no year: `year` gives it; without it the year that puts MMDD nearest today (JST) is used.
    """
    parsed = _parse(data, year=year, result=False)
    if parsed.header is None:  # pragma: no cover - a file without a valid header has raised already
        raise ZenginFormatError([FieldError(0, "file", "", "no valid header record")])
    return ZenginFile(
        header=parsed.header,
        lines=tuple(line for _number, line, _code in parsed.lines),
        total_count=parsed.data_records,
        total_amount_jpy=parsed.data_amount,
    )


def parse_transfer_results(data: bytes, *, year: int | None = None) -> list[TransferResult]:
    """The bank's result file (the layout in the module docstring) → one TransferResult per data record.

    Everything `zengin_parse` checks is checked, plus a known 振込結果コード on every data record and the
    settled/returned sub-totals in the trailer. Customer codes must be unique within the file.
    """
    parsed = _parse(data, year=year, result=True)
    results: list[TransferResult] = []
    seen: dict[str, int] = {}
    errors: list[FieldError] = []
    for number, line, code in parsed.lines:
        if line.customer_code in seen:
            errors.append(
                FieldError(number, "data", "顧客コード1 (customer_code)", f"repeats record {seen[line.customer_code]}")
            )
        seen.setdefault(line.customer_code, number)
        status = TransferStatus.SETTLED if code == SETTLED_RESULT_CODE else TransferStatus.RETURNED
        results.append(
            TransferResult(
                record=number,
                customer_code=line.customer_code,
                status=status,
                reason_code=code,
                amount_jpy=line.amount_jpy,
                account=line.account,
            )
        )
    if errors:
        raise ZenginFormatError(errors)
    return results


def simulate_bank_results(data: bytes, *, returned: Mapping[str, str], line_ending: bytes = b"\r\n") -> bytes:
    """What the bank simulator answers to a transfer file: every transfer settled ('0') except the customer
    codes in `returned`, which get their 振込結果コード. Raises for an invalid file or an unknown code."""
    transfer_file = zengin_parse(data, year=2000)
    unknown = set(returned) - {line.customer_code for line in transfer_file.lines}
    if unknown:
        raise ZenginError(f"customer codes not in the file: {sorted(unknown)}")
    bad = {code for code in returned.values() if code == SETTLED_RESULT_CODE or code not in RESULT_REASONS}
    if bad:
        raise ZenginError(f"not return reason codes: {sorted(bad)}")
    records, _errors = split_records(data)
    out: list[bytes] = [records[0]]
    settled = [0, 0]
    failed = [0, 0]
    for line, record in zip(transfer_file.lines, records[1:-2], strict=True):
        code = returned.get(line.customer_code, SETTLED_RESULT_CODE)
        bucket = settled if code == SETTLED_RESULT_CODE else failed
        bucket[0] += 1
        bucket[1] += line.amount_jpy
        out.append(_build(RESULT_DATA_FIELDS, {**_data_values(line), "result_code": code}))
        if out[-1][:113] != record[:113]:  # pragma: no cover - the echo must be exact
            raise ZenginError(f"record {len(out)} could not be echoed exactly")
    extra = {
        "settled_count": str(settled[0]),
        "settled_amount_jpy": str(settled[1]),
        "returned_count": str(failed[0]),
        "returned_amount_jpy": str(failed[1]),
    }
    out.append(_trailer_record(transfer_file.total_count, transfer_file.total_amount_jpy, extra))
    out.append(_end_record())
    if line_ending not in LINE_ENDINGS:
        raise ZenginError(f"line_ending must be one of {LINE_ENDINGS!r}")
    return b"".join(record + line_ending for record in out)
