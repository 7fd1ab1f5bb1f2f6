"""The document types catch misspelt keys: mypy over ``tests/typing/documents.py``."""

from __future__ import annotations

import re
from pathlib import Path

from mypy import api

CHECKED = Path(__file__).with_name("documents.py")


def _mypy(path: Path) -> tuple[str, int]:
    out, err, status = api.run(["--strict", str(path)])
    return out + err, status


def test_each_ignore_in_the_typing_file_is_needed() -> None:
    output, status = _mypy(CHECKED)
    assert status == 0, output


def test_without_the_ignores_every_line_is_an_error(tmp_path: Path) -> None:
    source = re.sub(r"  # type: ignore\[[a-z-]+\]", "", CHECKED.read_text())
    bare = tmp_path / "documents_bare.py"
    bare.write_text(source)
    output, status = _mypy(bare)
    assert status == 1
    errors = re.findall(r"error: .*\[([a-z-]+)\]", output)
    assert errors.count("typeddict-item") == 4, output
    assert errors.count("typeddict-unknown-key") == 1, output
