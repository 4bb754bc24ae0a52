"""Atomic file output: a reader of OUTPUT_DIR never sees half a file.

Each file is written to a temporary file in the same directory, flushed and fsynced, then
renamed over the old one (rename is atomic on POSIX within one file system).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def remove_stale_temporaries(out_dir: Path) -> int:
    """Delete temporary files a killed publisher left behind (publishing is serialised by the
    pass row lock, so no other writer's file is in flight)."""
    removed = 0
    if not out_dir.exists():
        return 0
    for tmp in out_dir.rglob(".*.tmp"):
        try:
            tmp.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed
