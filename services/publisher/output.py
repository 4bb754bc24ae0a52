"""Atomic file output: a reader of OUTPUT_DIR never sees half a file.

Each file is written to a temporary file in the same directory, flushed and fsynced, then
renamed over the old one (rename is atomic on POSIX within one file system). `write_all_atomic`
does that for a publication's files together, skipping those that already hold the same bytes
(10,000 profiles must not rewrite 60,000 unchanged files): all fsyncs at once (the file system
commits them in one go: a quarter of the waiting of one after another), then the renames.
"""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path


def _unchanged(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except FileNotFoundError:
        return False


def write_all_atomic(out_dir: Path, files: dict[str, bytes | str]) -> int:
    """Write every `name: data` under `out_dir` atomically unless the file already holds exactly
    these bytes; no file is renamed into place before all of them are on disk. On any failure
    the temporaries are removed. Returns how many files were written."""
    staged: list[list] = []  # [fd or None once closed, temporary path, final path]
    try:
        for name, data in files.items():
            path = out_dir / name
            data = data.encode("utf-8") if isinstance(data, str) else data
            if _unchanged(path, data):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            staged.append([fd, tmp, path])
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        errors: list[OSError] = []

        def sync(fd: int) -> None:
            try:
                os.fsync(fd)
            except OSError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=sync, args=(entry[0],)) for entry in staged]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        for entry in staged:
            os.close(entry[0])
            entry[0] = None
            os.chmod(entry[1], 0o644)
        for _, tmp, path in staged:
            os.replace(tmp, path)
        return len(staged)
    except BaseException:
        for fd, tmp, _ in staged:
            if fd is not None:
                os.close(fd)
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        raise


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """One file, atomically, unless it already holds exactly these bytes; True when it wrote."""
    return write_all_atomic(path.parent, {path.name: data}) == 1


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
