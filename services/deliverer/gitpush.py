"""The git channel: commit the profile's README.md and the day's archive file, and push.

With the git command line (subprocess, each command under delivery.timeout_seconds, no prompt:
GIT_TERMINAL_PROMPT=0, ssh in batch mode). Credentials come from the environment (a credential
helper, GIT_CONFIG_* variables, a token in the URL) or the SSH agent, never from config.json.
Each delivery clones `branch` of `repo` (a path or a URL) into a temporary folder, writes `path`
(README.md by default) and archive/<day>.md beside it, commits once and pushes:
- never with --force. When the remote moved meanwhile (push rejected), the commit is made again
  on top of the remote's new tip (a rebase of our one commit: the others' commits are kept, the
  generated files are ours), at most three times;
- the commit message carries the pass and a delivery marker (day, profile, channel); before
  committing, the branch's history is searched for the marker, so a retry after a crash between
  the push and recording it finds its commit there and never commits twice;
- nothing changed (the same README already there): nothing to commit, delivered.
The repository's README keeps its history: each day is one commit on top of the previous ones.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from shared.errors import PermanentError, TransientError
from shared.smtp_url import mask_url

PUSH_ATTEMPTS = 3
PERMANENT = re.compile(r"authentication failed|permission denied|could not read (username|password)|"
                       r"repository not found|does not appear to be a git repository|terminal prompts disabled|"
                       r"not found|returned error: 40[134]|protected branch|hook declined|denied", re.I)
REJECTED = re.compile(r"\[rejected\]|non-fast-forward|fetch first|failed to push some refs", re.I)
_CREDENTIALS = re.compile(r"(://)[^/@\s]+@")


class GitChannelPusher:
    def __init__(self, channel, timeout: float):
        self.channel = channel
        self.timeout = timeout
        self.shown = mask_url(channel.repo) if "://" in channel.repo else channel.repo
        env = dict(os.environ)
        env.update(GIT_TERMINAL_PROMPT="0", LC_ALL="C", LANGUAGE="C")
        env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        self.env = env

    def _scrub(self, text: str) -> str:
        text = text.replace(self.channel.repo, self.shown)
        return " ".join(_CREDENTIALS.sub(r"\1***@", text).split())[:300]

    def _git(self, *args: str, cwd: Path | None = None, check: bool = True, deadline: float | None = None):
        timeout = self.timeout if deadline is None else max(1.0, min(self.timeout, deadline - time.monotonic()))
        try:
            res = subprocess.run(["git", *args], cwd=cwd, env=self.env, capture_output=True, text=True,
                                 timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise TransientError(f"git {args[0]} of {self.shown} timed out after {timeout:.0f}s") from None
        except FileNotFoundError:
            raise PermanentError("the git command is not installed") from None
        if check and res.returncode != 0:
            raise self.error(args[0], res.stderr or res.stdout)
        return res

    def error(self, what: str, stderr: str) -> Exception:
        lines = [ln for ln in stderr.strip().splitlines() if ln.strip()] or [f"git {what} failed"]
        text = self._scrub(next((ln for ln in lines if ln.startswith(("fatal:", "error:", " ! ["))), lines[-1]))
        if PERMANENT.search(stderr):
            return PermanentError(f"git {what} {self.shown}: {text}")
        return TransientError(f"git {what} {self.shown}: {text}")

    def deliver(self, d, channel_key: str) -> str:
        """Commit and push the digest `d`; returns what was done (recorded with the delivery)."""
        if not d.readme:
            raise PermanentError(f"no published README.md for {d.profile} on {d.day}")
        ch = self.channel
        marker = f"Arxiv-Bot-Delivery: {d.day.isoformat()}/{d.profile}/{channel_key[:12]}"
        message = f"arXiv digest {d.day.isoformat()} ({d.profile}): {d.count} papers\n\nArxiv-Bot-Pass: {d.pass_id}\n{marker}\n"
        deadline = time.monotonic() + 4 * self.timeout
        with tempfile.TemporaryDirectory(prefix="arxiv-bot-git-") as tmp:
            work = Path(tmp) / "repo"
            heads = self._git("ls-remote", "--heads", ch.repo, f"refs/heads/{ch.branch}", deadline=deadline).stdout
            if heads.strip():
                self._git("clone", "--quiet", "--no-tags", "--single-branch", "--branch", ch.branch, ch.repo, str(work),
                          deadline=deadline)
            else:  # an empty repository, or a branch that does not exist yet
                self._git("init", "--quiet", str(work))
                self._git("checkout", "--quiet", "-b", ch.branch, cwd=work)
                self._git("remote", "add", "origin", ch.repo, cwd=work)
            identity = [] if self._git("config", "user.email", cwd=work, check=False).stdout.strip() else [
                "-c", "user.name=arxiv-bot", "-c", "user.email=arxiv-bot@users.noreply.invalid"]
            for _attempt in range(PUSH_ATTEMPTS):
                log = self._git("log", "--format=%B", "-n", "200", cwd=work, check=False).stdout
                if marker in log:
                    return "already in the repository (an earlier attempt pushed it)"
                files = self._write(work, d)
                self._git("add", "--", *files, cwd=work)
                if self._git("diff", "--cached", "--quiet", cwd=work, check=False).returncode == 0:
                    return "unchanged: the repository already has this digest"
                self._git(*identity, "-c", "commit.gpgsign=false", "commit", "--quiet", "-m", message, cwd=work)
                push = self._git("push", "--quiet", "origin", f"HEAD:refs/heads/{ch.branch}", cwd=work, check=False,
                                 deadline=deadline)
                if push.returncode == 0:
                    sha = self._git("rev-parse", "--short", "HEAD", cwd=work).stdout.strip()
                    return f"committed {sha} to {ch.branch}"
                if not REJECTED.search(push.stderr) or PERMANENT.search(push.stderr):
                    raise self.error("push", push.stderr)
                # The remote moved: redo our commit on top of its new tip (never force).
                self._git("fetch", "--quiet", "origin", ch.branch, cwd=work, deadline=deadline)
                self._git("reset", "--quiet", "--hard", "FETCH_HEAD", cwd=work)
        raise TransientError(f"git push {self.shown}: the branch {ch.branch} kept moving; retrying later")

    def _write(self, work: Path, d) -> list[str]:
        path = Path(self.channel.path)
        archive = path.parent / "archive" / f"{d.day.isoformat()}.md"
        for rel in (path, archive):
            target = work / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(d.readme, encoding="utf-8")
        return [str(path), str(archive)]
