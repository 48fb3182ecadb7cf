"""Reconciliation: the settlement CSV (typed rows, line-numbered errors) and reconcile()."""

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payouts.data import samples
from payouts.reconciliation import (
    AmountMismatch,
    Expected,
    LineError,
    Matched,
    SettlementFileError,
    SettlementRow,
    SettlementStatus,
    StatusMismatch,
    parse_settlement_csv,
    reconcile,
)
from payouts.zengin import parse_transfer_results

JST = ZoneInfo("Asia/Tokyo")
ATM = "sevenbank-atm-simulator"
AMAZON = "points-amazon-simulator"
HEADER = "provider,reference,status,amount_jpy,at\n"


def errors_of(data: str | bytes) -> list[str]:
    with pytest.raises(SettlementFileError) as raised:
        parse_settlement_csv(data)
    return [str(error) for error in raised.value.errors]


@dataclasses.dataclass(frozen=True)
class Row:
    reference: str
    amount_jpy: int
    status: str


# --- parsing ------------------------------------------------------------------------------------


def test_parse_gives_typed_rows():
    # given a file with offsets, UTC and a JST time without offset, columns in another order, and a BOM
    data = (
        "\ufeffreference,provider,amount_jpy,status,at\r\n"
        "SBA-1,sevenbank-atm-simulator,5500,picked_up,2026-05-20T10:15:00+09:00\r\n"
        "SBA-2,sevenbank-atm-simulator,1100,expired,2026-06-30 23:59:59\r\n"
        "PCS-3,points-amazon-simulator,330,returned,2026-05-21T01:02:03Z\r\n"
    ).encode()
    # then each row is typed, and an instant without offset is JST
    assert parse_settlement_csv(data) == [
        SettlementRow(2, ATM, "SBA-1", SettlementStatus.PICKED_UP, 5500, dt.datetime(2026, 5, 20, 10, 15, tzinfo=JST)),
        SettlementRow(
            3, ATM, "SBA-2", SettlementStatus.EXPIRED, 1100, dt.datetime(2026, 6, 30, 23, 59, 59, tzinfo=JST)
        ),
        SettlementRow(
            4, AMAZON, "PCS-3", SettlementStatus.RETURNED, 330, dt.datetime(2026, 5, 21, 10, 2, 3, tzinfo=JST)
        ),
    ]


def test_parse_skips_blank_lines_and_keeps_physical_line_numbers():
    data = (
        HEADER + "\n" + "p,R1,picked_up,1,2026-05-20T10:00:00+09:00\n\n" + "p,R2,expired,2,2026-05-20T10:00:00+09:00\n"
    )
    assert [(row.line, row.reference) for row in parse_settlement_csv(data)] == [(3, "R1"), (5, "R2")]


def test_parse_reports_every_bad_line_with_its_column():
    data = HEADER + (
        "p,R1,picked_up,5500,2026-05-20T10:15:00+09:00\n"
        ",R2,picked_up,5500,2026-05-20T10:15:00+09:00\n"
        "p,,lost,0,yesterday\n"
        "p,R4,expired,12.5,2026-05-20\n"
        "p,R5,returned,-3,2026-13-01T00:00:00\n"
        "p,R1,expired,100,2026-05-20T10:15:00+09:00\n"
        "p,R7,picked_up\n"
        "p,R8,picked_up,10000000000,2026-05-20T10:15:00\n"
    )
    assert errors_of(data) == [
        "line 3, provider: is required",
        "line 4, reference: is required",
        "line 4, status: must be picked_up, expired or returned, got 'lost'",
        "line 4, amount_jpy: must be whole yen from 1 to 9999999999, got '0'",
        "line 4, at: must be an ISO 8601 date-time, got 'yesterday'",
        "line 5, amount_jpy: must be whole yen from 1 to 9999999999, got '12.5'",
        "line 5, at: must be an ISO 8601 date-time, got '2026-05-20'",
        "line 6, amount_jpy: must be whole yen from 1 to 9999999999, got '-3'",
        "line 6, at: must be an ISO 8601 date-time, got '2026-13-01T00:00:00'",
        "line 7, reference: repeats line 2",
        "line 8: has 3 fields, the header has 5",
        "line 9, amount_jpy: must be whole yen from 1 to 9999999999, got '10000000000'",
    ]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("provider,reference,status,amount_jpy\n", ["line 1, at: missing column"]),
        (
            "provider,reference,status,amount_jpy,at,note\n",
            ["line 1, note: unknown column (expected provider, reference, status, amount_jpy, at)"],
        ),
        ("provider,reference,status,amount_jpy,at,at\n", ["line 1, at: repeated column"]),
    ],
)
def test_parse_checks_the_header(header, expected):
    assert errors_of(header + "p,R1,picked_up,1,2026-05-20T10:00:00+09:00,x\n") == expected


def test_parse_refuses_empty_and_non_utf8_files():
    assert errors_of("") == ["line 1: the file is empty (a header row is required)"]
    assert errors_of((HEADER + "p,ﾃｽﾄ,picked_up,1,2026-05-20T10:00:00\n").encode("cp932")) == [
        "line 2: is not UTF-8 (invalid continuation byte)"
    ]


def test_parse_of_a_header_only_file_is_empty():
    assert parse_settlement_csv(HEADER) == []


def test_parse_reports_unreadable_csv():
    assert errors_of(HEADER + 'p,"R1,picked_up,1,2026-05-20T10:00:00\n') == [
        "line 2: unreadable CSV (unexpected end of data)"
    ]


def test_committed_sample_settlement_file_parses():
    assert samples.SAMPLE_SETTLEMENT.read_text(encoding="utf-8") == samples.sample_settlement_csv()
    rows = parse_settlement_csv(samples.SAMPLE_SETTLEMENT.read_bytes())
    assert [(row.reference, row.status, row.amount_jpy) for row in rows] == [
        ("SBA-0A1B2C3D4E5F", "picked_up", 5500),
        ("SBA-112233445566", "expired", 1100),
        ("PCS-AMAZON-A1B2C3D4E5F6", "picked_up", 330),
        ("PCS-PAYPAY-0F0E0D0C0B0A", "returned", 2750),
    ]


def test_line_error_str():
    assert str(LineError(3, "status", "bad")) == "line 3, status: bad"
    assert str(LineError(3, "", "bad")) == "line 3: bad"


# --- reconcile ----------------------------------------------------------------------------------


def test_reconcile_sorts_every_reference_into_one_place():
    # given what we expect and what the provider reported
    expected: dict[str, Expected | int] = {
        "A": Expected(1000),
        "B": Expected(2000, status="picked_up"),
        "C": 3000,
        "D": Expected(4000, status="picked_up"),
        "E": Expected(5000, status="picked_up"),
        "F": 6000,
    }
    reported = [
        Row("A", 1000, "picked_up"),
        Row("B", 2000, "picked_up"),
        Row("C", 3001, "expired"),
        Row("D", 4000, "returned"),
        Row("E", 4999, "expired"),
        Row("X", 700, "picked_up"),
        Row("A", 1000, "picked_up"),
    ]
    # when reconciled
    result = reconcile(expected=expected, reported=reported)
    # then each reference is where it belongs
    assert result.matched == (Matched("A", 1000, "picked_up"), Matched("B", 2000, "picked_up"))
    assert result.missing == ("F",)
    assert result.unexpected == (Row("X", 700, "picked_up"),)
    assert result.amount_mismatches == (
        AmountMismatch("C", 3000, 3001, "expired"),
        AmountMismatch("E", 5000, 4999, "expired"),
    )
    assert [mismatch.difference_jpy for mismatch in result.amount_mismatches] == [1, -1]
    assert result.status_mismatches == (
        StatusMismatch("D", "picked_up", "returned"),
        StatusMismatch("E", "picked_up", "expired"),
    )
    assert result.duplicates == (Row("A", 1000, "picked_up"),)
    assert result.is_clean is False
    assert result.matched_totals() == {"picked_up": (2, 3000)}


def test_reconcile_clean():
    result = reconcile(expected={"A": 100, "B": 200}, reported=[Row("B", 200, "expired"), Row("A", 100, "picked_up")])
    assert result.is_clean is True
    assert result.matched == (Matched("B", 200, "expired"), Matched("A", 100, "picked_up"))
    assert result.matched_totals() == {"expired": (1, 200), "picked_up": (1, 100)}


def test_reconcile_nothing():
    result = reconcile(expected={}, reported=[])
    assert (result.is_clean, result.matched, result.missing) == (True, (), ())


def test_reconcile_accepts_settlement_rows_and_bank_results():
    # given settlement rows and the sample bank result (two returned transfers)
    rows = parse_settlement_csv(samples.sample_settlement_csv())
    bank = parse_transfer_results(samples.SAMPLE_ZENGIN_RESULT.read_bytes(), year=2026)
    # when the bank result is reconciled against the payouts we sent (all expected settled)
    expected = {line.customer_code: Expected(line.amount_jpy, "settled") for line in samples.sample_lines()}
    result = reconcile(expected=expected, reported=bank)
    # then the returned ones are flagged as status differences
    assert result.status_mismatches == (
        StatusMismatch("0000001004", "settled", "returned"),
        StatusMismatch("0000001006", "settled", "returned"),
    )
    assert result.matched_totals() == {"settled": (4, 5500 + 12000 + 330 + 88000)}
    # and settlement rows reconcile the same way
    settlement = reconcile(expected={row.reference: row.amount_jpy for row in rows}, reported=rows)
    assert settlement.is_clean is True
    assert settlement.matched_totals() == {"picked_up": (2, 5830), "expired": (1, 1100), "returned": (1, 2750)}


@given(
    expected=st.dictionaries(st.text(min_size=1, max_size=4), st.integers(min_value=1, max_value=10_000), max_size=30),
    reported=st.lists(
        st.tuples(st.text(min_size=1, max_size=4), st.integers(min_value=1, max_value=10_000)), max_size=30
    ),
)
def test_reconcile_partitions_references(expected, reported):
    rows = [Row(reference, amount, "picked_up") for reference, amount in reported]
    result = reconcile(expected=expected, reported=rows)
    matched = {item.reference for item in result.matched}
    mismatched = {item.reference for item in result.amount_mismatches}
    unexpected = {row.reference for row in result.unexpected}
    missing = set(result.missing)
    # every expected reference is matched, mismatched or missing — exactly one of them
    assert matched | mismatched | missing == set(expected)
    assert len(matched) + len(mismatched) + len(missing) == len(expected)
    # every distinct reported reference is matched, mismatched or unexpected
    assert matched | mismatched | unexpected == {reference for reference, _amount in reported}
    assert len(result.duplicates) == len(reported) - len({reference for reference, _amount in reported})
    assert result.is_clean == (not missing and not unexpected and not mismatched and not result.duplicates)
