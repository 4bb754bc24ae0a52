"""/healthz while slow clients hold connections open (issue 17.1): `arxiv-bot serve` (waitress,
2 processes x 8 threads) against the previous setup (gunicorn gthread, 2 workers x 4 threads,
keepalive 75 s), on an empty SQLite database.

For each number of slowloris connections (headers sent a line at a time, never finished; half as
many again send a POST body slowly), prints the median and worst /healthz latency of 20 requests,
or how many timed out (10 s). Numbers only; tests/test_serve_slow_clients.py asserts the outcome.

    .venv/bin/python bench/bench_slow_clients.py [--counts 0,50,500]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port: int, proc) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited {proc.returncode}")
            time.sleep(0.2)
    raise SystemExit("server did not come up")


def probe(port: int, slow: int) -> str:
    socks = []
    for i in range(slow + slow // 2):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" if i < slow else
                  b"POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nt=")
        socks.append(s)
    took, failed = [], 0
    try:
        for n in range(20):
            for s in socks:
                try:
                    s.sendall(b"X-a: b\r\n" if socks.index(s) < slow else b"aa")
                except OSError:
                    pass
            t0 = time.monotonic()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
                took.append(time.monotonic() - t0)
            except OSError:
                failed += 1
    finally:
        for s in socks:
            s.close()
    if not took:
        return "all 20 timed out"
    return (f"median {statistics.median(took) * 1000:7.1f} ms  worst {max(took) * 1000:7.1f} ms"
            + (f"  ({failed} of 20 timed out)" if failed else ""))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="0,50,500")
    args = ap.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text("{}")
        env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bot.db", "ARXIV_BOT_CONFIG": f"{tmp}/config.json",
               "BROKER_URL": ""}
        servers = {
            "arxiv-bot serve (waitress 2x8)": lambda port: [str(BIN / "arxiv-bot"), "serve", "--port", str(port)],
            "gunicorn gthread 2x4 (before)": lambda port: [str(BIN / "gunicorn"), "-w", "2", "-k", "gthread",
                                                           "--threads", "4", "--keep-alive", "75", "-t", "30",
                                                           "-b", f"127.0.0.1:{port}", "web.app:create_app()"],
        }
        subprocess.run([str(BIN / "arxiv-bot"), "db", "upgrade"], env=env, cwd=tmp, check=True, capture_output=True)
        for name, cmd in servers.items():
            port = free_port()
            proc = subprocess.Popen(cmd(port), env={**env, "PYTHONPATH": str(ROOT)}, cwd=tmp,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_up(port, proc)
                for slow in counts:
                    print(f"{name:<32} {slow:4d} slow-header + {slow // 2:3d} slow-body: {probe(port, slow)}",
                          flush=True)
            finally:
                proc.terminate()
                proc.wait(timeout=30)


if __name__ == "__main__":
    main()
