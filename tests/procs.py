"""Real processes for tests: `arxiv-bot worker` processes and one-shot CLI runs.

`Stack` holds the environment of one deployment under test (database, broker, stand-ins,
output folder, config file) and starts real `arxiv-bot` processes with it. Workers are started
through the installed console script exactly as docker-compose.yml starts them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Child side of fork: SIGKILL us when the test process dies, so a killed or timed-out test
    run never leaves workers behind consuming the next run's queues."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    os.setsid()
BIN = Path(sys.executable).parent / "arxiv-bot"


def write_config(tmp: Path, **overrides) -> Path:
    """The project's config.json with test pacing (no 3 s spacing against the local stand-in).
    Summaries read the abstract unless `ai_summary={"input": "fulltext"}` is given: the full text
    needs ARXIV_HTML_URL / ARXIV_PDF_URL pointed at a stand-in (tests/test_summarizer_fulltext_service.py),
    and no test may reach arxiv.org."""
    cfg = json.loads((ROOT / "config.json").read_text())
    cfg["ai_summary"]["input"] = "abstract"
    cfg["fetch"] = {"min_interval_seconds": 0.0, "timeout_seconds": 10, "max_retries": 2}
    cfg["days_back"] = 0
    cfg["sweep"] = {"interval_seconds": 2, "stuck_after_seconds": 5}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = tmp / "config.json"
    path.write_text(json.dumps(cfg, indent=2))
    return path


class Worker:
    def __init__(self, service: str, proc: subprocess.Popen, log: Path):
        self.service, self.proc, self.log = service, proc, log

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float = 180) -> "Worker":  # a parallel run starts many at once
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.output()
            if " ready." in out:
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker {self.service} exited {self.proc.returncode}:\n{out[-3000:]}")
            time.sleep(0.1)
        raise TimeoutError(f"worker {self.service} not ready after {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children (a crash, not a shutdown)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill()


class Stack:
    def __init__(self, tmp: Path, env: dict[str, str]):
        self.tmp = tmp
        self.env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.workers: list[Worker] = []

    @property
    def output_dir(self) -> Path:
        return Path(self.env["OUTPUT_DIR"])

    def start_worker(self, service: str, *extra: str, wait: bool = True) -> Worker:
        log = self.tmp / f"worker-{service}-{len(self.workers)}.log"
        fh = open(log, "wb")
        proc = subprocess.Popen([str(BIN), "worker", service, "--concurrency", "1", *extra], env=self.env,
                                stdout=fh, stderr=subprocess.STDOUT, cwd=self.tmp, preexec_fn=_die_with_parent)
        worker = Worker(service, proc, log)
        self.workers.append(worker)
        return worker.wait_ready() if wait else worker

    def start_all(self, summarizers: int = 1) -> list[Worker]:
        services = ["fetcher", "scorer", *["summarizer"] * summarizers, "publisher"]
        started = [self.start_worker(s, wait=False) for s in services]
        return [w.wait_ready() for w in started]

    def cli(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        res = subprocess.run([str(BIN), *args], env=self.env, cwd=self.tmp, capture_output=True, text=True,
                             timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"arxiv-bot {' '.join(args)} exited {res.returncode}:\n"
                                 f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}")
        return res

    def stop(self) -> None:
        for w in self.workers:
            w.stop()
        self.workers.clear()


def peak_mb(pid: int) -> float:
    """The largest VmHWM (peak resident memory) among the worker and its pool children."""
    peak = 0.0
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout.split()
    for p in [str(pid), *out]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peak
