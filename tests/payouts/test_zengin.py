"""Zengin 総合振込: kana conversion, account validation, the writer, the parser/validator and bank results."""

import dataclasses
import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts.bank_codes import yucho_bank_account, yucho_to_zengin
from payouts.data import samples
from payouts.zengin import (
    DATA_FIELDS,
    LAYOUTS,
    RECORD_LENGTH,
    RESULT_REASONS,
    ZENGIN_CHARS,
    BankAccount,
    BankAccountError,
    TransferLine,
    TransferStatus,
    ZenginError,
    ZenginFieldsError,
    ZenginFormatError,
    ZenginHeader,
    ZenginKanaError,
    customer_code_for,
    encode_zengin,
    iter_zengin_records,
    parse_transfer_results,
    simulate_bank_results,
    split_records,
    to_zengin_kana,
    validate_bank_account,
    zengin_export,
    zengin_parse,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "zengin.md"


def header(**overrides) -> ZenginHeader:
    values: dict[str, Any] = {
        "requester_code": "0000123456",
        "requester_name_kana": "ｻﾎﾟ-ﾄﾎﾟ-ﾀﾙ(ｶ",
        "transfer_date": dt.date(2026, 5, 15),
        "bank_code": "0001",
        "bank_name_kana": "ﾐｽﾞﾎ",
        "branch_code": "001",
        "branch_name_kana": "ﾄｳｷﾖｳ",
        "account_type": "2",
        "account_number": "7654321",
    }
    values.update(overrides)
    return ZenginHeader(**values)


def account(**overrides) -> BankAccount:
    values: dict[str, Any] = {
        "bank_code": "0005",
        "branch_code": "123",
        "account_type": "1",
        "account_number": "1234567",
        "holder_kana": "ﾔﾏﾀﾞ ﾀﾛｳ",
    }
    values.update(overrides)
    return BankAccount(**values)


def line(amount: int = 5500, code: str = "1001", **overrides) -> TransferLine:
    return TransferLine(account=account(**overrides), amount_jpy=amount, customer_code=code)


def records_of(data: bytes) -> list[bytes]:
    records, errors = split_records(data)
    assert errors == []
    return records


def replace_at(data: bytes, record: int, start: int, new: bytes) -> bytes:
    """The file with bytes from 1-based position `start` of 1-based record `record` replaced (CRLF files)."""
    records = records_of(data)
    target = records[record - 1]
    records[record - 1] = target[: start - 1] + new + target[start - 1 + len(new) :]
    return b"".join(r + b"\r\n" for r in records)


def errors_of(data: bytes, *, result: bool = False) -> list[str]:
    with pytest.raises(ZenginFormatError) as raised:
        if result:
            parse_transfer_results(data, year=2026)
        else:
            zengin_parse(data, year=2026)
    return [str(error) for error in raised.value.errors]


# --- layout -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LAYOUTS))
def test_every_layout_covers_120_bytes_without_gaps(kind):
    # given a record layout
    fields = LAYOUTS[kind]
    # then its fields follow each other from byte 1 to byte 120
    position = 1
    for field in fields:
        assert field.start == position, field
        position = field.end + 1
    assert position == RECORD_LENGTH + 1


def test_docs_list_every_field_with_its_positions():
    # given docs/zengin.md
    text = DOCS.read_text(encoding="utf-8")
    # then each layout field appears as a table row "| name_ja | start | end | length | kind |"
    for fields in LAYOUTS.values():
        for field in fields:
            row = f"| {field.name_ja} | `{field.name}` | {field.start} | {field.end} | {field.length} | {field.kind} |"
            assert row in text, row


# --- kana ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        ("ヤマダ\u3000ハナコ", "ﾔﾏﾀﾞ ﾊﾅｺ"),
        ("キョウコ", "ｷﾖｳｺ"),
        ("ｷｮｳｺ", "ｷﾖｳｺ"),
        ("まっちゃ", "ﾏﾂﾁﾔ"),
        ("ァィゥェォヮヵヶ", "ｱｲｳｴｵﾜｶｹ"),
        ("ヴァイオリン", "ｳﾞｱｲｵﾘﾝ"),
        ("ゔ", "ｳﾞ"),
        ("パーク", "ﾊﾟ-ｸ"),
        ("ｶﾞｰﾃﾞﾝ", "ｶﾞ-ﾃﾞﾝ"),
        ("ヲサム", "ｵｻﾑ"),
        ("ゐゑ", "ｲｴ"),
        ("ｊｏｈｎ ｓｍｉｔｈ", "JOHN SMITH"),
        ("John Smith 2", "JOHN SMITH 2"),
        ("１２３ＡＢＣ", "123ABC"),
        ("ジョン・スミス", "ｼﾞﾖﾝ ｽﾐｽ"),
        ("（カ）ヤマダショウテン", "(ｶ)ﾔﾏﾀﾞｼﾖｳﾃﾝ"),
        ("ヤマダ－タロウ／ＡＢ．", "ﾔﾏﾀﾞ-ﾀﾛｳ/AB."),
        ("「テスト」￥，", "｢ﾃｽﾄ｣¥,"),
        ("  スペース  ", "ｽﾍﾟ-ｽ"),
        ("ｱﾞﾞ゛゜", "ｱﾞﾞﾞﾟ"),
        ("カ\u3099ハ\u309a", "ｶﾞﾊﾟ"),
        ("", ""),
    ],
)
def test_to_zengin_kana_converts(typed, expected):
    assert to_zengin_kana(typed) == expected


@pytest.mark.parametrize(
    ("typed", "position", "char"),
    [
        ("株式会社", 1, "株"),
        ("ヤマダ太郎", 4, "太"),
        ("ヤマダ㈱", 4, "株"),
        ("ab@c", 3, "@"),
        ("ゝ", 1, "ゝ"),
        ("タロウ!", 4, "!"),
    ],
)
def test_to_zengin_kana_refuses_what_has_no_half_width_form(typed, position, char):
    # when the text has a character a Zengin name cannot hold
    with pytest.raises(ZenginKanaError) as raised:
        to_zengin_kana(typed)
    # then the error names it and where it is
    assert (raised.value.position, raised.value.char) == (position, char)
    assert f"character {char!r}" in str(raised.value)
    assert f"at position {position}" in str(raised.value)


def test_encoding_is_shift_jis_single_byte():
    # given every allowed character except ¥ (which cp932 cannot encode; it is JIS X 0201 0x5C)
    text = "".join(sorted(ZENGIN_CHARS - {"¥"}))
    # then our bytes equal cp932's and Shift_JIS's, one byte per character
    assert encode_zengin(text) == text.encode("cp932") == text.encode("shift_jis")
    assert len(encode_zengin(text)) == len(text)
    assert encode_zengin("¥") == b"\x5c" == "¥".encode("shift_jis")


def test_encoding_refuses_other_characters():
    with pytest.raises(ValueError, match="character 'ｧ' at position 2"):
        encode_zengin("ｱｧ")


kana_source = st.text(
    alphabet=st.sampled_from(
        "あいうえおかがきぎくぐけげこごさざしじすずせぜそぞただちぢっつづてでとどなにぬねのはばぱひびぴふぶぷへべぺほぼぽ"
        "まみむめもゃやゅゆょよらりるれろゎわゐゑをんゔァアィイゥウェエォオカガキギクグケゲコゴヴヵヶー・　"
        "ABCxyz0129０９ＡＺａｚ()（）-－./／ ｶﾞﾊﾟｧｯｰ"
    ),
    max_size=40,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(text=kana_source)
def test_kana_conversion_only_produces_writable_names_in_120_byte_records(text):
    # given any mix of kana, latin, digits and symbols
    converted = to_zengin_kana(text)
    # then the result is only Zengin characters, one byte each
    assert set(converted) <= ZENGIN_CHARS
    assert len(encode_zengin(converted)) == len(converted)
    # and when it fits the holder name, the data record is exactly 120 bytes and parses back to it
    name = converted[:30].strip(" ") or "ｱ"
    the_line = line(holder_kana=name)
    records = list(iter_zengin_records(header=header(), lines=[the_line]))
    assert [len(record) for record in records] == [120, 120, 120, 120]
    assert zengin_parse(b"".join(records), year=2026).lines == (the_line,)


# --- accounts ---------------------------------------------------------------------------------------


def test_validate_bank_account_accepts_a_valid_account():
    assert (
        validate_bank_account(
            bank_code="0005", branch_code="123", account_type="1", account_number="1234567", holder_kana="ﾔﾏﾀﾞ ﾀﾛｳ"
        )
        == {}
    )


def test_validate_bank_account_lists_every_bad_field():
    errors = validate_bank_account(
        bank_code="05",
        branch_code="12a",
        account_type="3",
        account_number="12345678",
        holder_kana="やまだ",
        bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ ｷﾞﾝｺｳ",
    )
    assert errors == {
        "account_number": "must be 7 digits, got '12345678'",
        "account_type": "must be one of 1 (普通), 2 (当座), 4 (貯蓄), 9 (その他), got '3'",
        "bank_code": "must be 4 digits, got '05'",
        "bank_name_kana": "is 19 characters long; at most 15 fit (ﾞ and ﾟ count as one each)",
        "branch_code": "must be 3 digits, got '12a'",
        "holder_kana": "has characters a Zengin file cannot hold: 'やまだ' (use to_zengin_kana)",
    }


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("holder_kana", "", "is required"),
        ("holder_kana", " ﾔﾏﾀﾞ", "must not start or end with a space"),
        ("holder_kana", "ｱ" * 31, "is 31 characters long; at most 30 fit (ﾞ and ﾟ count as one each)"),
        ("account_number", "0000000", "must not be all zeros"),
        ("account_number", "１２３４５６７", "must be 7 digits, got '１２３４５６７'"),
        ("bank_code", "00051", "must be 4 digits, got '00051'"),
    ],
)
def test_bank_account_refuses(field, value, message):
    with pytest.raises(BankAccountError) as raised:
        account(**{field: value})
    assert raised.value.errors == {field: message}


def test_account_types_are_the_four_of_the_format():
    assert [account(account_type=kind).account_type for kind in ("1", "2", "4", "9")] == ["1", "2", "4", "9"]


def test_bank_account_from_input_normalises_what_customers_type():
    # when a customer types full-width digits, a 6-digit number and a hiragana name
    result = BankAccount.from_input(
        bank_code="０００５",
        branch_code=" 123 ",
        account_type="１",
        account_number="12345",
        holder_name="やまだ　たろう",
        bank_name="みつびしゆーえふじぇい",
    )
    # then the account is what the file needs
    assert result == BankAccount(
        bank_code="0005",
        branch_code="123",
        account_type="1",
        account_number="0012345",
        holder_kana="ﾔﾏﾀﾞ ﾀﾛｳ",
        bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ",
    )


def test_bank_account_from_input_reports_every_field():
    with pytest.raises(BankAccountError) as raised:
        BankAccount.from_input(
            bank_code="1", branch_code="12", account_type="5", account_number="12345678", holder_name="山田"
        )
    assert sorted(raised.value.errors) == ["account_number", "account_type", "bank_code", "branch_code", "holder_kana"]
    assert raised.value.errors["holder_kana"].startswith("character '山' (U+5C71) at position 1")


def test_account_number_never_in_repr():
    assert "1234567" not in repr(account())
    assert account().masked_number() == "***4567"


# --- lines and header -------------------------------------------------------------------------------


@pytest.mark.parametrize("amount", [0, -1, 10_000_000_000, True, 1.5])
def test_transfer_line_refuses_amounts(amount):
    with pytest.raises(ZenginError, match="amount_jpy must be a whole number of yen from 1 to 9999999999"):
        line(amount=amount)


def test_transfer_line_pads_the_customer_code():
    assert line(code="42").customer_code == "0000000042"
    assert customer_code_for(42) == "0000000042"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customer_code": ""}, "customer_code is required"),
        ({"customer_code": "12345678901"}, "customer_code must be 10 digits"),
        ({"customer_code": "12a"}, "customer_code must be 10 digits"),
        ({"new_code": "3"}, "new_code must be one of"),
        ({"transfer_type": "9"}, "transfer_type must be 7"),
        ({"clearing_house": "12"}, "clearing_house must be empty or 4 digits"),
    ],
)
def test_transfer_line_refuses(overrides, message):
    values = {"account": account(), "amount_jpy": 1, "customer_code": "1", **overrides}
    with pytest.raises(ZenginError, match=message):
        TransferLine(**values)


def test_customer_code_for_refuses_ids_that_do_not_fit():
    with pytest.raises(ZenginError, match="does not fit"):
        customer_code_for(10_000_000_000)


def test_header_refuses_bad_values():
    with pytest.raises(ZenginFieldsError) as raised:
        header(requester_code="123", requester_name_kana="ｶﾌﾞｼｷｶﾞｲｼﾔ" * 5, account_type="3", type_code="11")
    assert sorted(raised.value.errors) == ["account_type", "requester_code", "requester_name_kana", "type_code"]


# --- writer ---------------------------------------------------------------------------------------


def test_export_writes_the_exact_records():
    # given a header and two transfers
    data = zengin_export(header=header(), lines=[line(5500, "1001"), line(1, "1002", holder_kana="ｽｽﾞｷ")])
    # then the file is these five 120-byte records, CRLF-separated, in Shift_JIS
    assert data.decode("shift_jis").split("\r\n") == [
        "1210" + "0000123456" + "ｻﾎﾟ-ﾄﾎﾟ-ﾀﾙ(ｶ".ljust(40) + "0515" + "0001" + "ﾐｽﾞﾎ".ljust(15) + "001"
        + "ﾄｳｷﾖｳ".ljust(15) + "2" + "7654321" + " " * 17,
        "2" + "0005" + " " * 15 + "123" + " " * 15 + "    " + "1" + "1234567" + "ﾔﾏﾀﾞ ﾀﾛｳ".ljust(30)
        + "0000005500" + "0" + "0000001001" + " " * 10 + "7" + " " + " " * 7,
        "2" + "0005" + " " * 15 + "123" + " " * 15 + "    " + "1" + "1234567" + "ｽｽﾞｷ".ljust(30)
        + "0000000001" + "0" + "0000001002" + " " * 10 + "7" + " " + " " * 7,
        "8" + "000002" + "000000005501" + " " * 101,
        "9" + " " * 119,
        "",
    ]  # fmt: skip
    assert [len(record) for record in records_of(data)] == [120] * 5


@pytest.mark.parametrize(("ending", "size"), [(b"\r\n", 122 * 4), (b"\n", 121 * 4), (b"", 120 * 4)])
def test_export_line_endings_all_parse(ending, size):
    data = zengin_export(header=header(), lines=[line()], line_ending=ending)
    assert len(data) == size
    assert zengin_parse(data, year=2026).lines == (line(),)


def test_export_refuses_an_unknown_line_ending():
    with pytest.raises(ZenginError, match="line_ending"):
        zengin_export(header=header(), lines=[line()], line_ending=b"\r")


def test_export_refuses_an_empty_file():
    with pytest.raises(ZenginError, match="at least one transfer"):
        zengin_export(header=header(), lines=[])


def test_export_refuses_a_total_that_does_not_fit():
    lines = [line(9_999_999_999, str(n)) for n in range(1, 102)]
    with pytest.raises(ZenginError, match="does not fit the 12-digit 合計金額"):
        zengin_export(header=header(), lines=lines)


def test_records_stream_lazily():
    # given a generator of lines that would fail on its third item
    def lines():
        yield line(code="1")
        yield line(code="2")
        raise AssertionError("consumed too far")

    # when only the first records are taken
    stream = iter_zengin_records(header=header(), lines=lines())
    first = [next(stream), next(stream)]
    # then only one line has been consumed
    assert [record[:1] for record in first] == [b"1", b"2"]


# --- parser ---------------------------------------------------------------------------------------


def test_parse_round_trips_the_file():
    lines = [line(5500, "1001"), line(12_000, "1002", account_type="4", bank_name_kana="ﾐﾂｲｽﾐﾄﾓ")]
    parsed = zengin_parse(zengin_export(header=header(), lines=lines), year=2026)
    assert parsed.header == header()
    assert parsed.lines == tuple(lines)
    assert (parsed.total_count, parsed.total_amount_jpy) == (2, 17_500)


def test_parse_accepts_an_eof_byte_and_infers_the_year(monkeypatch):
    # given "today" is 2026-12-28 JST and the file's 取組日 is 01-05
    monkeypatch.setattr("payouts.zengin.timezone.now", lambda: dt.datetime(2026, 12, 28, 3, 0, tzinfo=dt.UTC))
    data = zengin_export(header=header(transfer_date=dt.date(2027, 1, 5)), lines=[line()]) + b"\x1a"
    # then the nearest 01-05 is in 2027
    assert zengin_parse(data).header.transfer_date == dt.date(2027, 1, 5)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(
        st.tuples(
            st.from_regex(r"\A[0-9]{4}\Z"),
            st.from_regex(r"\A[0-9]{3}\Z"),
            st.sampled_from(["1", "2", "4", "9"]),
            st.from_regex(r"\A[0-9]{6}[1-9]\Z"),
            st.text(alphabet=st.sampled_from(sorted(ZENGIN_CHARS)), min_size=1, max_size=30).map(
                lambda name: name.strip(" ") or "ｱ"
            ),
            st.integers(min_value=1, max_value=9_999_999_999),
            st.sampled_from(["0", "1", "2"]),
            st.sampled_from(["7", "8"]),
        ),
        min_size=1,
        max_size=30,
    ),
    ending=st.sampled_from([b"\r\n", b"\n", b""]),
)
def test_round_trip_of_random_valid_lines(items, ending):
    # given random valid transfers
    lines = [
        TransferLine(
            account=BankAccount(
                bank_code=bank, branch_code=branch, account_type=kind, account_number=number, holder_kana=name
            ),
            amount_jpy=amount,
            customer_code=str(index + 1),
            new_code=new_code,
            transfer_type=transfer_type,
        )
        for index, (bank, branch, kind, number, name, amount, new_code, transfer_type) in enumerate(items)
    ]
    # when written and read back
    data = zengin_export(header=header(), lines=lines, line_ending=ending)
    parsed = zengin_parse(data, year=2026)
    # then everything comes back, every record is 120 bytes and the totals add up
    assert parsed.lines == tuple(lines)
    assert parsed.header == header()
    assert (parsed.total_count, parsed.total_amount_jpy) == (len(lines), sum(item.amount_jpy for item in lines))
    assert all(len(record) == 120 for record in iter_zengin_records(header=header(), lines=lines))


def sample() -> bytes:
    return zengin_export(header=header(), lines=[line(5500, "1001"), line(1100, "1002")])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda data: replace_at(data, 2, 44, b"12a4567"),
            ["record 2 (data), 口座番号 (account_number): must be 7 digits, got '12a4567'"],
        ),
        (
            lambda data: replace_at(data, 3, 2, b"12 4"),
            ["record 3 (data), 被仕向銀行番号 (bank_code): must be 4 digits, got '12 4'"],
        ),
        (
            lambda data: replace_at(data, 2, 43, b"3"),
            [
                "record 2 (data), 預金種目 (account_type): "
                "must be one of 1 (普通), 2 (当座), 4 (貯蓄), 9 (その他), got '3'"
            ],
        ),
        (
            lambda data: replace_at(data, 2, 81, b"0000000000"),
            [
                "record 2 (data), 振込金額 (amount_jpy): must be more than 0",
                "record 4 (trailer), 合計金額 (total_amount_jpy): says 6600 but the file has 1100 yen",
            ],
        ),
        (
            lambda data: replace_at(data, 4, 2, b"000003"),
            ["record 4 (trailer), 合計件数 (total_count): says 3 but the file has 2 data records"],
        ),
        (
            lambda data: replace_at(data, 4, 8, b"000000006601"),
            ["record 4 (trailer), 合計金額 (total_amount_jpy): says 6601 but the file has 6600 yen"],
        ),
        (
            lambda data: replace_at(data, 2, 51, "ﾔｯﾀ".encode("cp932")),
            ["record 2 (data), 受取人名 (holder_kana): byte 0xAF at position 52 is not an allowed character"],
        ),
        (
            lambda data: replace_at(data, 2, 51, b"yamada"),
            ["record 2 (data), 受取人名 (holder_kana): byte 0x79 at position 51 is not an allowed character"],
        ),
        (
            lambda data: replace_at(data, 2, 51, b" " * 30),
            ["record 2 (data), 受取人名 (holder_kana): is required"],
        ),
        (
            lambda data: replace_at(data, 1, 2, b"11"),
            ["record 1 (header), 種別コード (type_code): must be 21 (総合振込), got '11'"],
        ),
        (
            lambda data: replace_at(data, 1, 4, b"1"),
            ["record 1 (header), コード区分 (code_division): must be 0 (JIS), got '1'"],
        ),
        (
            lambda data: replace_at(data, 1, 55, b"0230"),
            ["record 1 (header), 取組日 (transfer_date): '0230' is not a date (MMDD)"],
        ),
        (
            lambda data: replace_at(data, 2, 113, b"Y"),
            ["record 2 (data), 識別表示 (edi_flag): must be a space (EDI information is not supported), got 'Y'"],
        ),
        (
            lambda data: replace_at(data, 2, 114, b"0"),
            ["record 2 (data), ダミー (dummy): must be spaces, got '0'"],
        ),
        (
            lambda data: replace_at(data, 3, 91, b"5"),
            ["record 3 (data), 新規コード (new_code): must be 0, 1 or 2, got '5'"],
        ),
        (
            lambda data: replace_at(data, 3, 112, b"1"),
            ["record 3 (data), 振込指定区分 (transfer_type): must be 7 or 8, got '1'"],
        ),
        (
            lambda data: replace_at(data, 3, 92, b"          "),
            ["record 3 (data), 顧客コード1 (customer_code): is required"],
        ),
    ],
)
def test_parse_errors_name_record_and_field(mutate, expected):
    assert errors_of(mutate(sample())) == expected


def test_parse_reports_records_of_the_wrong_length():
    records = records_of(sample())
    records[1] = records[1][:119]
    data = b"".join(record + b"\r\n" for record in records)
    # then only that record is reported (it still counts towards the trailer's totals)
    assert errors_of(data) == ["record 2 (data): is 119 bytes long, not 120"]


def test_parse_reports_a_file_that_is_not_a_multiple_of_120_bytes():
    data = zengin_export(header=header(), lines=[line()], line_ending=b"")[:-1]
    assert errors_of(data) == [
        "file: 479 bytes without line breaks is not a multiple of 120",
        "record 4 (end): is 119 bytes long, not 120",
    ]


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (
            [1, 0, 2, 3, 4],
            [
                "record 1 (data): expected a header (1) record, got record type '2'",
                "record 2 (header): expected a data (2) or a trailer (8) record, got record type '1'",
            ],
        ),
        ([0, 3, 4], ["record 2 (trailer): expected a data (2) record, got record type '8'"]),
        ([0, 1, 2, 4], ["record 4 (end): expected a data (2) or a trailer (8) record, got record type '9'"]),
        ([0, 1, 2, 3], ["file: the file does not end with a trailer (8) and an end (9) record"]),
        ([0, 1, 2, 3, 4, 4], ["record 6 (end): expected nothing (after the end record) record, got record type '9'"]),
        ([0, 0, 1, 2, 3, 4], ["record 2 (header): expected a data (2) record, got record type '1'"]),
    ],
)
def test_parse_checks_record_type_order(order, expected):
    records = records_of(sample())
    data = b"".join(records[index] + b"\r\n" for index in order)
    assert errors_of(data) == expected


def test_parse_refuses_an_unknown_record_type():
    data = replace_at(sample(), 2, 1, b"3")
    assert errors_of(data)[0] == "record 2 (unknown): expected a data (2) record, got record type '3'"


def test_parse_refuses_an_empty_file():
    assert errors_of(b"") == ["file: the file is empty"]


def test_parse_lists_every_error_of_the_file():
    data = replace_at(replace_at(sample(), 2, 44, b"abcdefg"), 3, 2, b"xxxx")
    assert errors_of(data) == [
        "record 2 (data), 口座番号 (account_number): must be 7 digits, got 'abcdefg'",
        "record 3 (data), 被仕向銀行番号 (bank_code): must be 4 digits, got 'xxxx'",
    ]


# --- bank results --------------------------------------------------------------------------------


def test_bank_results_round_trip():
    # given a transfer file of three payouts and a bank that returns one of them
    data = zengin_export(header=header(), lines=[line(5500, "1"), line(1100, "2"), line(330, "3")])
    result_file = simulate_bank_results(data, returned={"0000000002": "3"})
    # when the result file is imported
    results = parse_transfer_results(result_file, year=2026)
    # then each transfer has its status and reason
    assert [(r.record, r.customer_code, r.status, r.reason_code, r.amount_jpy) for r in results] == [
        (2, "0000000001", TransferStatus.SETTLED, "0", 5500),
        (3, "0000000002", TransferStatus.RETURNED, "3", 1100),
        (4, "0000000003", TransferStatus.SETTLED, "0", 330),
    ]
    assert (results[1].reason_ja, results[1].reason_en, results[1].reference) == (
        "名義相違",
        "holder name does not match",
        "0000000002",
    )
    # and the result trailer carries the settled/returned sub-totals
    assert records_of(result_file)[4][:55] == b"8000003000000006930000002000000005830000001000000001100"


def test_a_transfer_file_is_not_a_result_file():
    assert errors_of(sample(), result=True) == [
        "record 2 (data), 振込結果コード (result_code): is required in a result file",
        "record 3 (data), 振込結果コード (result_code): is required in a result file",
        "record 4 (trailer), 振込済件数 (settled_count): is required",
        "record 4 (trailer), 振込済金額 (settled_amount_jpy): is required",
        "record 4 (trailer), 振込不能件数 (returned_count): is required",
        "record 4 (trailer), 振込不能金額 (returned_amount_jpy): is required",
    ]


def test_result_file_with_an_unknown_code_or_wrong_subtotals():
    result_file = simulate_bank_results(sample(), returned={"0000001002": "1"})
    changed = replace_at(result_file, 2, 114, b"5")
    assert errors_of(changed, result=True) == [
        "record 2 (data), 振込結果コード (result_code): must be one of 0, 1, 2, 3, 4, 8, 9, got '5'",
        "record 4 (trailer), 振込済件数 (settled_count): says 1 but the file has 0 settled records",
        "record 4 (trailer), 振込済金額 (settled_amount_jpy): says 5500 but the file has 0 settled yen",
    ]


def test_result_file_with_a_repeated_customer_code():
    result_file = simulate_bank_results(sample(), returned={})
    changed = replace_at(result_file, 3, 92, b"0000001001")
    assert errors_of(changed, result=True) == ["record 3 (data), 顧客コード1 (customer_code): repeats record 2"]


def test_simulated_bank_refuses_unknown_codes():
    with pytest.raises(ZenginError, match=re.escape("customer codes not in the file: ['0000000999']")):
        simulate_bank_results(sample(), returned={"0000000999": "1"})
    with pytest.raises(ZenginError, match=re.escape("not return reason codes: ['0']")):
        simulate_bank_results(sample(), returned={"0000001001": "0"})


def test_result_reasons_are_one_character_codes():
    assert all(len(code) == 1 and code.isdigit() for code in RESULT_REASONS)


# --- the committed sample ------------------------------------------------------------------------


def test_committed_sample_files_are_what_the_writer_builds():
    assert samples.SAMPLE_ZENGIN.read_bytes() == samples.sample_zengin_file()
    assert samples.SAMPLE_ZENGIN_RESULT.read_bytes() == samples.sample_zengin_result_file()


def test_committed_sample_validates():
    parsed = zengin_parse(samples.SAMPLE_ZENGIN.read_bytes(), year=2026)
    assert parsed.header == samples.sample_header()
    assert parsed.lines == tuple(samples.sample_lines())
    assert (parsed.total_count, parsed.total_amount_jpy) == (6, 109_680)
    assert [item.account.holder_kana for item in parsed.lines] == [
        "ﾔﾏﾀﾞ ﾀﾛｳ",
        "ｻﾄｳ ｷﾖｳｺ",
        "ｽｽﾞｷ ｼﾞﾛｳ",
        "ﾀｶﾊｼ ｼﾖｳﾍｲ",
        "(ｶ)ﾔﾏﾀﾞｼﾖｳﾃﾝ",
        "ｼﾞﾖﾝ ｽﾐｽ",
    ]
    results = parse_transfer_results(samples.SAMPLE_ZENGIN_RESULT.read_bytes(), year=2026)
    assert [(r.customer_code, r.status, r.reason_code) for r in results if r.status == "returned"] == [
        ("0000001004", TransferStatus.RETURNED, "1"),
        ("0000001006", TransferStatus.RETURNED, "3"),
    ]


def test_data_record_fields_are_named_for_docs():
    assert [field.name for field in DATA_FIELDS if field.kind == "N"] == [
        "record_type",
        "bank_code",
        "branch_code",
        "clearing_house",
        "account_type",
        "account_number",
        "amount_jpy",
        "new_code",
        "customer_code",
        "customer_code2",
        "transfer_type",
    ]
    assert dataclasses.fields(TransferLine)[0].name == "account"


# --- ゆうちょ 記号・番号 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kigou", "bangou", "expected"),
    [
        ("10530", "12345671", ("058", "1", "1234567")),
        ("１０５３０", "１２３４５６７１", ("058", "1", "1234567")),
        ("14020", "2345671", ("408", "1", "0234567")),
        ("00530", "123456", ("059", "2", "0123456")),
        ("01234", "1234567", ("129", "2", "1234567")),
    ],
)
def test_yucho_to_zengin(kigou, bangou, expected):
    assert yucho_to_zengin(kigou=kigou, bangou=bangou) == expected


@pytest.mark.parametrize(
    ("kigou", "bangou", "errors"),
    [
        ("20530", "12345671", {"kigou": "must be 5 digits starting with 1 or 0, got '20530'"}),
        ("1053", "12345671", {"kigou": "must be 5 digits starting with 1 or 0, got '1053'"}),
        ("10530", "12345678", {"bangou": "a 通常貯金 番号 ends with 1 (8 digits), got '12345678'"}),
        ("10530", "123456789", {"bangou": "must be 1 to 8 digits, got '123456789'"}),
        ("00530", "12345678", {"bangou": "a 振替口座 番号 has at most 7 digits, got '12345678'"}),
    ],
)
def test_yucho_to_zengin_refuses(kigou, bangou, errors):
    with pytest.raises(BankAccountError) as raised:
        yucho_to_zengin(kigou=kigou, bangou=bangou)
    assert raised.value.errors == errors


def test_yucho_bank_account():
    assert yucho_bank_account(kigou="10530", bangou="12345671", holder_name="ゆうちょ はなこ") == BankAccount(
        bank_code="9900",
        branch_code="058",
        account_type="1",
        account_number="1234567",
        holder_kana="ﾕｳﾁﾖ ﾊﾅｺ",
        bank_name_kana="ﾕｳﾁﾖ",
    )
    with pytest.raises(BankAccountError) as raised:
        yucho_bank_account(kigou="10530", bangou="12345671", holder_name="郵便")
    assert list(raised.value.errors) == ["holder_kana"]


def test_header_name_starting_with_a_space_is_a_field_error():
    data = replace_at(sample(), 1, 63, b" \xd0\xbd\xde\xce")  # " ﾐｽﾞﾎ"
    assert errors_of(data) == ["record 1 (header), 仕向銀行名 (bank_name_kana): must not start or end with a space"]


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(min_value=0, max_value=5 * 122 - 1),
    byte=st.integers(min_value=0, max_value=255),
    result=st.booleans(),
)
def test_any_single_byte_change_parses_or_fails_with_format_errors(position, byte, result):
    # given a valid transfer (or result) file with one byte changed anywhere
    data = sample()
    if result:
        data = simulate_bank_results(data, returned={"0000001002": "1"})
    changed = data[:position] + bytes([byte]) + data[position + 1 :]
    # then parsing either succeeds or raises ZenginFormatError listing at least one located problem
    try:
        if result:
            parse_transfer_results(changed, year=2026)
        else:
            zengin_parse(changed, year=2026)
    except ZenginFormatError as error:
        assert error.errors
        assert all(str(item) for item in error.errors)


def test_docs_list_every_result_code():
    text = DOCS.read_text(encoding="utf-8")
    for code, (ja, en) in RESULT_REASONS.items():
        status = "settled" if code == "0" else "returned"
        assert f"| `{code}` | {status} | {ja} | {en} |" in text
