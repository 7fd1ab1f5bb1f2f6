"""Where the project is: relative paths of its settings (``SCV_DATA_DIR``) resolve against it.

The project root is the nearest directory, from the working directory upwards, whose
``pyproject.toml`` names this project; from outside the project it is the checkout the
``gateway`` package is installed from (``make run`` installs it editable). Without either
(an installed wheel run elsewhere) relative paths stay relative to the working directory.
"""

from __future__ import annotations

import re
from pathlib import Path

PROJECT_NAME = "scv-gateway"
_NAME_LINE = re.compile(rf'^name\s*=\s*"{re.escape(PROJECT_NAME)}"\s*$', re.MULTILINE)


def is_project_root(directory: Path) -> bool:
    try:
        text = (directory / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return _NAME_LINE.search(text) is not None


def project_root(start: Path | None = None) -> Path | None:
    """The project's directory as seen from ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if is_project_root(directory):
            return directory
    installed = Path(__file__).resolve().parent.parent
    return installed if is_project_root(installed) else None


def resolve_in_project(path: Path) -> Path:
    """An absolute path: ``path`` itself when absolute, else relative to the project root."""
    path = path.expanduser()
    if path.is_absolute():
        return path
    return (project_root() or Path.cwd()).resolve() / path
