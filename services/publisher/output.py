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


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """write_atomic unless the file already holds exactly these bytes (10,000 profiles must not
    rewrite 60,000 unchanged files); True when it wrote."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


STALE_AFTER = 3600.0  # far longer than any publisher task runs (time limit 660 s)


def remove_stale_temporaries(out_dir: Path, older_than: float = STALE_AFTER) -> int:
    """Delete temporary files a killed publisher left behind. Publishers of other batches may be
    writing at the same time, so only temporaries older than any live task are removed."""
    import time

    removed = 0
    if not out_dir.exists():
        return 0
    cutoff = time.time() - older_than
    for tmp in out_dir.rglob(".*.tmp"):
        try:
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed
