"""Rendered files and the one writer that puts them on disk atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class File:
    """A file a renderer wants on disk."""

    path: Path
    text: str
    mode: int = 0o644


Check = Callable[[Path], None]
"""Validates a temporary copy of a file before it replaces the real one; raises on bad content."""


def write_files(
    files: Iterable[File],
    owner: tuple[int, int] | None = None,
    check: Check | None = None,
) -> list[Path]:
    """Write each file atomically: temp file in the same folder, check, chmod/chown, rename.

    Returns the paths whose content changed. A file whose content is already
    on disk is left alone, so an unchanged config keeps its mtime.
    """
    changed: list[Path] = []
    for file in files:
        file.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if file.path.read_text(encoding="utf-8") == file.text:
                os.chmod(file.path, file.mode)
                if owner is not None:
                    os.chown(file.path, *owner)
                continue
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        fd, tmp_name = tempfile.mkstemp(dir=file.path.parent, prefix=f".{file.path.name}.")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(file.text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, file.mode)
            if owner is not None:
                os.chown(tmp, *owner)
            if check is not None:
                check(tmp)
            tmp.replace(file.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        changed.append(file.path)
    return changed
