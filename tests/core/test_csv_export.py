"""The shared CSV writer: no spreadsheet formula injection, and every export goes through it."""

import io
import pathlib

import pytest

from support_portal.core.csv_export import CsvDictWriter, CsvWriter, csv_cell

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-120", "-120"),
        ("+3.5", "+3.5"),
        ("C-0001", "C-0001"),
        ("", ""),
        (42, 42),
        (-7, -7),
    ],
)
def test_a_formula_looking_cell_is_written_as_text_and_numbers_stay_numbers(value, written) -> None:
    assert csv_cell(value) == written


def test_the_writers_neutralise_every_cell_header_included() -> None:
    # Given both writers
    out = io.StringIO()
    # When rows with formula-looking cells are written
    CsvWriter(out).writerows([["=a", "b"], [1, "@c"]])
    dict_out = io.StringIO()
    writer = CsvDictWriter(dict_out, fieldnames=["x", "y"])
    writer.writeheader()
    writer.writerow({"x": "-1", "y": "-x"})
    # Then each such cell has its apostrophe, nothing else changed
    assert out.getvalue() == "'=a,b\n1,'@c\n"
    assert dict_out.getvalue() == "x,y\n-1,'-x\n"


def test_no_export_writes_csv_except_through_the_shared_writer() -> None:
    # The demo generator and the API's ingest write input files (not exports: an API batch becomes the CSV
    # the import reads, which must keep its values as sent), so they may use csv directly.
    allowed = {
        ROOT / "support_portal/core/csv_export.py",
        ROOT / "support_portal/core/demo/generator.py",
        ROOT / "support_portal/api/ingest.py",
    }
    sources = [
        path
        for app in ("support_portal", "claims", "payouts")
        for path in (ROOT / app).rglob("*.py")
        if path not in allowed
    ]
    assert len(sources) > 100
    offenders = [
        str(path.relative_to(ROOT))
        for path in sources
        if "csv.writer(" in (text := path.read_text()) or "csv.DictWriter(" in text
    ]
    assert offenders == []
