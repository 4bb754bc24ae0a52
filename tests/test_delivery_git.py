"""Git delivery into a local bare repository with the real git command line: the commit and
README.md as a clone sees them, the repository's history kept, a remote that moved between our
clone and our push (rebased onto, never overwritten), a retry that finds its commit already
pushed, and a repository that does not exist."""
from __future__ import annotations

import subprocess
from pathlib import Path

from services.deliverer import gitpush
from shared.models import DELIVERY_PENDING, Delivery
from tests.delivery_seed import DAY, deliver_now, make_runtime, paper_rows, plan, seed_pass, statuses


def git(*args, cwd=None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@example.org", "PATH": "/usr/bin:/bin",
                               "HOME": str(cwd or "/tmp")}).stdout


def bare_repo(tmp: Path) -> Path:
    """A bare repository whose `main` has a hand-written README.md and another file."""
    remote, seed = tmp / "digest.git", tmp / "seed"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    git("clone", "--quiet", str(remote), str(seed))
    (seed / "README.md").write_text("# my digest\n")
    (seed / "NOTES.md").write_text("kept\n")
    git("add", ".", cwd=seed)
    git("commit", "--quiet", "-m", "start", cwd=seed)
    git("push", "--quiet", "origin", "HEAD:main", cwd=seed)
    return remote


def clone(remote: Path, to: Path) -> Path:
    git("clone", "--quiet", "--branch", "main", str(remote), str(to))
    return to


def _rt(tmp_path, db_url, remote, **kw):
    return make_runtime(tmp_path, db_url, deliver=[{"type": "git", "repo": str(remote), "branch": "main"}], **kw)


def test_commit_readme_and_archive_keeping_history(tmp_path, db_url):
    remote = bare_repo(tmp_path)
    rt = _rt(tmp_path, db_url, remote)
    pass_id = seed_pass(rt, paper_rows(3))
    deliver_now(rt, plan(rt, pass_id))
    [(_, status, note, _)] = statuses(rt)
    assert status == "sent" and note.startswith("committed ")
    work = clone(remote, tmp_path / "check")
    with rt.session() as s:
        from shared.models import Publication
        readme = s.get(Publication, ("default", DAY)).readme_md
    assert (work / "README.md").read_text() == readme and "**Total Papers Found**: 3" in readme
    assert (work / "archive" / "2024-11-28.md").read_text() == readme
    assert (work / "NOTES.md").read_text() == "kept\n"
    log = git("log", "--format=%s%n%b%x00", cwd=work).split("\x00")
    assert log[0].strip().startswith("arXiv digest 2024-11-28 (default): 3 papers")
    assert f"Arxiv-Bot-Pass: {pass_id}" in log[0] and "Arxiv-Bot-Delivery: 2024-11-28/default/" in log[0]
    assert [line.strip() for line in log[1:] if line.strip()] == ["start"]  # one commit on top of the history
    assert git("show", "HEAD~1:README.md", cwd=work) == "# my digest\n"   # the README's history is kept


def test_a_remote_that_moved_is_rebased_onto_not_overwritten(tmp_path, sqlite_url, monkeypatch):
    remote = bare_repo(tmp_path)
    other = clone(remote, tmp_path / "other")
    original = gitpush.GitChannelPusher._write
    moved = []

    def write_then_someone_pushes(self, work, d):
        if not moved:  # between our clone and our push, somebody else pushes to main
            (other / "NOTES.md").write_text("changed by someone else\n")
            git("commit", "--quiet", "-am", "someone else", cwd=other)
            git("push", "--quiet", "origin", "HEAD:main", cwd=other)
            moved.append(True)
        return original(self, work, d)

    monkeypatch.setattr(gitpush.GitChannelPusher, "_write", write_then_someone_pushes)
    rt = _rt(tmp_path, sqlite_url, remote)
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(2))))
    assert statuses(rt)[0][1] == "sent"
    work = clone(remote, tmp_path / "check")
    subjects = git("log", "--format=%s", cwd=work).split("\n")[:3]
    assert subjects == ["arXiv digest 2024-11-28 (default): 2 papers", "someone else", "start"]
    assert (work / "NOTES.md").read_text() == "changed by someone else\n"  # their commit is kept
    assert "**Total Papers Found**: 2" in (work / "README.md").read_text()


def test_a_retry_after_the_push_finds_its_commit_and_commits_nothing(tmp_path, sqlite_url):
    remote = bare_repo(tmp_path)
    rt = _rt(tmp_path, sqlite_url, remote)
    work = plan(rt, seed_pass(rt, paper_rows(2)))
    deliver_now(rt, work)
    # A crash after the push and before the mark: the row is sent again.
    with rt.session() as s:
        s.query(Delivery).update({Delivery.status: DELIVERY_PENDING})
    deliver_now(rt, work)
    [(_, status, note, attempts)] = statuses(rt)
    assert status == "sent" and attempts == 2 and note.startswith("already in the repository")
    check = clone(remote, tmp_path / "check")
    assert git("log", "--format=%s", cwd=check).split("\n")[:2] == ["arXiv digest 2024-11-28 (default): 2 papers",
                                                                     "start"]


def test_an_empty_repository_gets_its_first_commit(tmp_path, sqlite_url):
    remote = tmp_path / "empty.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    rt = _rt(tmp_path, sqlite_url, remote)
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(1))))
    assert statuses(rt)[0][1] == "sent"
    assert (clone(remote, tmp_path / "check") / "README.md").read_text().startswith("# ")


def test_a_missing_repository_is_a_permanent_failure(tmp_path, sqlite_url):
    rt = _rt(tmp_path, sqlite_url, tmp_path / "nowhere.git")
    deliver_now(rt, plan(rt, seed_pass(rt, paper_rows(1))))
    [(_, status, error, attempts)] = statuses(rt)
    assert status == "failed" and attempts == 1 and "does not appear to be a git repository" in error


def test_credentials_in_a_repository_url_are_masked():
    from shared.config import GitChannel

    ch = GitChannel(type="git", repo="https://user:tok3n@git.example.org/d.git")
    pusher = gitpush.GitChannelPusher(ch, 5)
    err = pusher.error("push", "fatal: unable to access 'https://user:tok3n@git.example.org/d.git/': "
                               "Could not resolve host: git.example.org")
    assert "tok3n" not in str(err) and "https://user:***@git.example.org/d.git" in str(err)
    assert type(err).__name__ == "TransientError"
    from shared.outbox import channel_label
    assert "tok3n" not in channel_label(ch)
