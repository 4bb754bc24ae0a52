"""The publisher's atomic writes on a real file system: every file lands whole, nothing is
renamed into place when one of a publication's files cannot be written, no temporary is left."""
from __future__ import annotations

import pytest

from services.publisher.output import write_all_atomic


def test_all_files_land_whole_and_replace_the_old_ones(tmp_path):
    (tmp_path / "feed.xml").write_text("old")
    files = {"feed.xml": "<rss/>" * 10_000, "day/2024-11-28.html": b"<html>\xe2\x9c\x93</html>",
             "static/style.css": "body{}"}
    assert write_all_atomic(tmp_path, files) == 3
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == (data.encode() if isinstance(data, str) else data)
        assert oct((tmp_path / name).stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.rglob(".*.tmp")) == []
    assert write_all_atomic(tmp_path, {**files, "feed.xml": "<rss/>"}) == 1  # only the changed one
    assert (tmp_path / "feed.xml").read_text() == "<rss/>"


def test_a_file_that_cannot_be_written_publishes_none(tmp_path):
    (tmp_path / "feed.xml").write_text("old")
    (tmp_path / "day").write_text("a file where a folder is needed")
    with pytest.raises(OSError):
        write_all_atomic(tmp_path, {"feed.xml": "new", "day/2024-11-28.html": "page"})
    assert (tmp_path / "feed.xml").read_text() == "old"  # not renamed: the set failed as a whole
    assert list(tmp_path.rglob(".*.tmp")) == []            # and no temporary was left behind
