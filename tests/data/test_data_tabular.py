"""Reading tables robustly: encodings, delimiters, streaming, and a clear BadInput for every bad file."""

from __future__ import annotations

import codecs
from pathlib import Path

import pandas as pd
import pytest

from fedledger.data.tabular import (
    cell_location,
    decode_bytes,
    detect_source,
    iter_batches,
    read_table,
    table_columns,
    write_table,
)
from fedledger.exceptions import BadInput


def test_utf8_comma_csv_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"name": ["Zoë", "Jürgen"], "zip": ["01234", "99999"]})
    path = write_table(frame, tmp_path / "t.csv")
    back = read_table(path, as_text=True)
    assert back.equals(frame)
    assert back.attrs["source"]["encoding"] == "utf-8"
    assert back.attrs["source"]["note"] == ""


def test_parquet_round_trip_and_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    path = write_table(frame, tmp_path / "t.parquet")
    assert detect_source(path).format == "parquet"
    assert read_table(path).equals(frame)
    assert list(read_table(path, columns=["b"]).columns) == ["b"]
    assert read_table(path, as_text=True)["a"].tolist() == ["1", "2", "3"]
    assert [len(b) for b in iter_batches(path, batch_rows=2)] == [2, 1]


def test_bom_and_semicolon_and_tab(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffname;city\nAnna;Köln\nBen;Bonn\n".encode())
    frame = read_table(path)
    assert list(frame.columns) == ["name", "city"]
    assert frame.attrs["source"]["encoding"] == "utf-8-sig"
    assert frame.attrs["source"]["delimiter"] == ";"
    tsv = tmp_path / "t.tsv"
    tsv.write_text("a\tb\n1\t2\n")
    assert detect_source(tsv).delimiter == "\t"


def test_cp1252_file_is_read_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "win.csv"
    path.write_bytes("name,price\nJosé,5 €\nFrançois,7 €\n".encode("cp1252"))
    frame = read_table(path)
    assert frame["name"].tolist() == ["José", "François"]
    assert frame["price"].tolist() == ["5 €", "7 €"]
    note = frame.attrs["source"]["note"]
    assert "not valid UTF-8" in note and "line 2" in note and "cp1252" in note


def test_mixed_encodings_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"name\n" + "Zoë\n".encode() + "José\n".encode("cp1252"))
    source = detect_source(path)
    assert source.encoding == "cp1252"
    assert "mixed encodings" in source.note and "line 3" in source.note


def test_malformed_csv_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,4\n5,6,7\n")
    with pytest.raises(BadInput, match=r"bad\.csv: malformed CSV: .*line 4"):
        read_table(path)


def test_malformed_line_after_first_batch_raises_from_the_stream(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "1,2\n" * 50 + "1,2,3\n")
    stream = iter_batches(path, batch_rows=10)
    with pytest.raises(BadInput, match="malformed CSV"):
        for _ in stream:
            pass


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"  \n\n", "empty"), (b"PAR1garbage", "unreadable Parquet")],
)
def test_empty_and_corrupt_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        read_table(path)


def test_unknown_format_and_missing_file(tmp_path: Path) -> None:
    binary = tmp_path / "x.xlsx"
    binary.write_bytes(b"PK\x03\x04\x00\x00")
    with pytest.raises(BadInput, match="unknown format"):
        read_table(binary)
    with pytest.raises(BadInput, match="no such file"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(BadInput, match="unknown output format"):
        write_table(pd.DataFrame({"a": [1]}), tmp_path / "out.xlsx")
    fake = tmp_path / "fake.parquet"
    fake.write_text("a,b\n1,2\n")
    with pytest.raises(BadInput, match="not a Parquet file"):
        read_table(fake)


def test_header_only_yields_one_empty_batch(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("email,age\n")
    batches = list(iter_batches(path, batch_rows=10))
    assert len(batches) == 1 and batches[0].empty and list(batches[0].columns) == ["email", "age"]


def test_streaming_covers_every_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("i,v\n" + "".join(f"{i},{i % 7}\n" for i in range(2_345)))
    batches = list(iter_batches(path, batch_rows=1_000))
    assert [len(b) for b in batches] == [1_000, 1_000, 345]
    assert pd.concat(batches)["i"].tolist() == list(range(2_345))


def test_unknown_column_is_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(BadInput, match="no column"):
        read_table(path, columns=["c"])


def test_space_after_comma_export(tmp_path: Path) -> None:
    path = tmp_path / "adult.csv"
    path.write_text("age, sex\n39, Male\n50, Female\n")
    assert read_table(path, as_text=True)["sex"].tolist() == ["Male", "Female"]


# -- encodings: what spreadsheets and legacy systems actually export --------------------------------------


def _excel_unicode_text(rows: list[list[str]]) -> bytes:
    """Excel's "Unicode text" export: UTF-16 little-endian with a byte-order mark, tab-separated, CRLF lines."""
    return codecs.BOM_UTF16_LE + "".join("\t".join(r) + "\r\n" for r in rows).encode("utf-16-le")


def test_excel_unicode_text_is_read_as_utf16(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    rows = [["name", "city", "phone"], ["Zoë", "Köln", "+49 221 1234567"], ["李", "", "x"]]
    path.write_bytes(_excel_unicode_text(rows))
    source = detect_source(path)
    assert (source.encoding, source.delimiter, source.note) == ("utf-16", "\t", "")
    frame = read_table(path, as_text=True)
    assert list(frame.columns) == ["name", "city", "phone"]
    assert frame["name"].tolist() == ["Zoë", "李"]
    assert frame["city"].tolist() == ["Köln", None]  # the empty cell is missing, not ""
    assert frame.attrs["source"]["encoding"] == "utf-16"
    assert table_columns(path) == ["name", "city", "phone"]


def test_utf16_without_bom_is_recognised_and_binary_is_still_refused(tmp_path: Path) -> None:
    path = tmp_path / "be.csv"
    path.write_bytes("name,city\nZoë,Köln\nAnna,Bonn\n".encode("utf-16-be") * 1)
    frame = read_table(path, as_text=True)
    assert frame["city"].tolist() == ["Köln", "Bonn"]
    assert frame.attrs["source"]["encoding"] == "utf-16-be" and "no byte-order mark" in frame.attrs["source"]["note"]
    binary = tmp_path / "blob.csv"
    binary.write_bytes(b"a,b\n\x00\x01\x02\x03\xff\xfe\x00\x00" * 40)
    with pytest.raises(BadInput, match="binary content"):
        read_table(binary)


def test_broken_utf16_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "broken.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "a\tb\r\n1\t2\r\n".encode("utf-16-le") + b"\x00\xd8A\x00")  # lone surrogate
    with pytest.raises(BadInput, match=r"broken\.txt: not valid utf-16 at byte \d+"):
        read_table(path)


def test_latin1_file_with_bytes_cp1252_leaves_undefined(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,code\nGenève,\x81\nZürich,B\n".encode("latin-1"))
    frame = read_table(path, as_text=True)
    assert frame.attrs["source"]["encoding"] == "latin-1"
    assert frame["name"].tolist() == ["Genève", "Zürich"]


def test_non_latin_legacy_encodings_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "ru.csv"
    text = "Имя,Город\n" + "Иван,Москва\nПётр,Санкт-Петербург\n" * 5
    path.write_bytes(text.encode("cp1251"))
    frame = read_table(path, as_text=True)
    assert frame.attrs["source"]["encoding"] == "cp1251"
    assert frame["Город"].tolist()[:2] == ["Москва", "Санкт-Петербург"]


def test_decode_bytes_is_shared_with_prepare() -> None:
    from fedledger.data.prepare import decode_bytes as prepare_decode

    assert prepare_decode is decode_bytes
    assert decode_bytes("José".encode("cp1252")) == ("José", "cp1252")  # too short for statistics: Western default
    assert decode_bytes(codecs.BOM_UTF16_LE + "a,b".encode("utf-16-le")) == ("a,b", "utf-16")
    with pytest.raises(BadInput, match="cannot decode as ascii"):
        decode_bytes("é".encode(), "ascii")


def test_cell_location_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('a,b\n1,"two\nlines"\n\n3,x\n')
    frame = read_table(path, as_text=True)
    assert frame["b"].tolist() == ["two\nlines", "x"]
    assert cell_location(frame.attrs["source"], 1, "b") == f"{path} line 5, column 'b'"
    parquet = write_table(frame, tmp_path / "t.parquet")
    assert cell_location(read_table(parquet).attrs["source"], 1, "b") == f"{parquet} row 2, column 'b'"
    assert cell_location(None, 0, "b") == "row 1, column 'b'"
