"""Reading tables robustly: encodings, delimiters, streaming, and a clear BadInput for every bad file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fedledger.data.tabular import detect_source, iter_batches, read_table, write_table
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
