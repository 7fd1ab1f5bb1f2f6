"""Reading a contacts CSV strictly: one record per line, its encoding and delimiter detected.

A record never spans lines: a quote left open at the end of a line is that line's error, so
one broken row can never swallow the rows after it (ContactInput fields hold no line breaks).
A row with more or fewer cells than the header is an error too. The file is read twice: a
first pass (:func:`inspect_file`) decodes all of it, so an encoding problem stops the import
before anything is written; :func:`read_rows` then streams the rows.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from resolvers.importer import COLUMNS, KNOWN_COLUMNS, BadRow, Row, shown

DELIMITERS = {",": ",", ";": ";", "\t": "\t", "tab": "\t", "\\t": "\t", "|": "|"}
DETECTED_DELIMITERS = (",", ";", "\t")
DETECTED_ENCODINGS = ("utf-8-sig", "cp1252", "latin-1")  # latin-1 decodes any byte
REQUIRED_COLUMNS = ("firstName", "lastName")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


class CsvFileError(Exception):
    """The file cannot be imported at all; the message is one line for a person."""


@dataclass(frozen=True)
class CsvLayout:
    """What the first pass found: how to read the file and which columns to import."""

    encoding: str
    delimiter: str
    columns: list[str]  # the header's cells, trimmed ("" for a column to skip)
    ignored: list[str] = field(default_factory=list)  # unknown columns left out on request
    rows: int = 0  # non-blank lines after the header

    @property
    def description(self) -> str:
        name = DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))
        return f"{self.encoding.removesuffix('-sig')}, {name}-separated"


def delimiter_option(value: str | None) -> str | None:
    """``--delimiter``: ``,``, ``;``, ``tab`` (or ``\\t``) or ``|``; None detects it."""
    if value is None:
        return None
    if value not in DELIMITERS:
        raise CsvFileError(f"--delimiter must be one of , ; tab | (not {value!r})")
    return DELIMITERS[value]


def encoding_option(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return codecs.lookup(value).name
    except LookupError:
        raise CsvFileError(f"unknown encoding {value!r} (e.g. utf-8, cp1252, latin-1)") from None


def inspect_file(
    path: Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    ignore_unknown_columns: bool = False,
) -> CsvLayout:
    """Decode the whole file (trying UTF-8, then Windows-1252, then Latin-1 unless
    ``encoding`` is given), read its header and count its rows."""
    candidates = [encoding] if encoding else _encodings_for(path)
    for index, candidate in enumerate(candidates):
        try:
            header, rows = _scan(path, candidate)
        except UnicodeDecodeError as exc:
            if index + 1 < len(candidates):
                continue
            raise CsvFileError(
                f"{path} is not {candidate}: byte {exc.object[exc.start : exc.start + 1]!r} "
                "cannot be decoded (give --encoding)"
            ) from None
        except OSError as exc:
            raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from None
        break
    if header is None:
        raise CsvFileError(f"{path} is empty; it needs a header row of ContactInput field names")
    chosen = delimiter or _detect_delimiter(header)
    columns = _header_cells(path, header, chosen)
    return CsvLayout(candidate, chosen, *_known(path, columns, ignore_unknown_columns), rows)


def _encodings_for(path: Path) -> list[str]:
    try:
        with path.open("rb") as handle:
            start = handle.read(4)
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not start.startswith(
        codecs.BOM_UTF32_LE
    ):
        return ["utf-16"]  # Excel's "Unicode text"
    return list(DETECTED_ENCODINGS)


def _scan(path: Path, encoding: str) -> tuple[str | None, int]:
    with path.open(newline="", encoding=encoding) as handle:
        header = next((line for line in handle if line.strip()), None)
        return header, sum(1 for line in handle if line.strip())


def _detect_delimiter(header: str) -> str:
    """The delimiter that splits the header into the most known columns, then into the most
    cells; a comma when nothing tells them apart."""

    def score(candidate: str) -> tuple[int, int, bool]:
        cells = _split(header.rstrip("\r\n"), candidate) or []
        known = sum(c.strip() in KNOWN_COLUMNS for c in cells)
        return known, len(cells) if len(cells) > 1 else 0, candidate == ","

    return max(DETECTED_DELIMITERS, key=score)


def _header_cells(path: Path, header: str, delimiter: str) -> list[str]:
    cells = _split(header.rstrip("\r\n").lstrip("\ufeff"), delimiter)
    if cells is None:
        raise CsvFileError(f"{path}: the header row has an unterminated quote")
    columns = [cell.strip() for cell in cells]
    repeated = sorted({c for c in columns if c and columns.count(c) > 1})
    if repeated:
        raise CsvFileError(f"{path}: column(s) {', '.join(map(repr, repeated))} appear twice")
    return columns


def _known(path: Path, columns: list[str], ignore_unknown: bool) -> tuple[list[str], list[str]]:
    unknown = [c for c in columns if c and c not in KNOWN_COLUMNS]
    if unknown and not ignore_unknown:
        raise CsvFileError(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; the accepted columns "
            f"are {', '.join(COLUMNS)} (or --ignore-unknown-columns)"
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CsvFileError(f"{path}: no {' or '.join(missing)} column; every contact needs both")
    return [c if c in KNOWN_COLUMNS else "" for c in columns], unknown


def read_rows(path: Path, layout: CsvLayout) -> Iterator[Row]:
    """Each data row with its line number: cells by column, or the reason the line is bad."""
    with path.open(newline="", encoding=layout.encoding) as handle:
        lines = enumerate(handle, start=1)
        next((line for _, line in lines if line.strip()), None)  # the header
        for number, line in lines:
            text = line.rstrip("\r\n")
            if text.strip():
                yield number, _record(text, layout)


def _record(text: str, layout: CsvLayout) -> dict[str, str | None] | BadRow:
    cells = _split(text, layout.delimiter)
    if cells is None:
        quote = text.find('"')
        return BadRow(f"unterminated quote: {shown(text[quote:] if quote >= 0 else text)}")
    if len(cells) != len(layout.columns):
        return BadRow(
            f"the row has {len(cells)} cells, the header {len(layout.columns)}: {shown(text)}"
        )
    return {column: cell for column, cell in zip(layout.columns, cells, strict=True) if column}


def _split(text: str, delimiter: str) -> list[str] | None:
    """The cells of one line; None when a quote is left open (or misplaced) in it."""
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True), [])
    except csv.Error:
        return None
