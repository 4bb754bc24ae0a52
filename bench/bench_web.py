"""Requests/s for GET /feed.xml served by arxiv-bot's web app under gunicorn, measured with wrk,
next to two references measured in the same run on the same bytes:
  minimal  a Flask app returning the precomputed bytes (with the same ETag logic): the ceiling
           for a Python/Flask/gunicorn server, so "ratio" = our overhead over plain Flask;
  nginx    nginx serving the same bytes as static files.
Cases: 200 and 304 (If-None-Match), default and ?category=cs.LG, each plain and with
"Accept-Encoding: gzip" (the minimal app then serves precomputed gzip bytes, nginx its
gzip_static file). Target: ratio >= 0.8 for every case. Everything listens on 127.0.0.1 only;
each wrk run is bounded (--seconds).

Usage: .venv/bin/python bench/bench_web.py [--seconds 5] [--workers 2] [--connections 32] [--repeat 3]
Each case is measured --repeat times per server, interleaved, and the median is reported.
Needs the Debian packages wrk and nginx.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
# (path, conditional, gzip)
CASES = [(path, conditional, gz) for gz in (False, True) for path in ("/feed.xml", "/feed.xml?category=cs.LG")
         for conditional in (False, True)]

MINIMAL_APP = '''
import json
from flask import Flask, Response, request
BODIES = {k: bytes.fromhex(v) for k, v in json.load(open(%(bodies)r)).items()}
ETAGS = json.load(open(%(etags)r))
app = Flask(__name__)

@app.get("/feed.xml")
def feed():
    gz = "gzip" in request.headers.get("Accept-Encoding", "")
    key = request.full_path.rstrip("?") + (" gzip" if gz else "")
    etag = ETAGS[key]
    headers = {"ETag": etag, "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == etag:
        return Response(status=304, headers=headers)
    if gz:
        headers["Content-Encoding"] = "gzip"
    return Response(BODIES[key], content_type="application/rss+xml; charset=utf-8", headers=headers)
'''

NGINX_CONF = '''
worker_processes %(workers)d;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %(dir)s/tmp; proxy_temp_path %(dir)s/tmp; fastcgi_temp_path %(dir)s/tmp;
  uwsgi_temp_path %(dir)s/tmp; scgi_temp_path %(dir)s/tmp;
  types { application/rss+xml xml; }
  server {
    listen 127.0.0.1:%(port)d;
    root %(dir)s/www;
    gzip_static on;
    location = /feed.xml { if ($arg_category = "cs.LG") { rewrite ^ /feed-cs.LG.xml last; } }
  }
}
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server at {url} did not come up")


def fill_database(url: str) -> None:
    """A realistic digest: 30 ranked papers on one day, half summarised."""
    sys.path.insert(0, str(ROOT))
    from shared.db import make_engine, session_factory
    from shared.models import Base
    from tests.test_web import publish

    engine = make_engine(url)
    Base.metadata.create_all(engine)
    abstract = ("We study efficient inference for large language models with sparse attention kernels, "
                "speculative decoding and quantization, and report throughput on commodity GPUs. ") * 3
    papers = [(f"2411.{20000 + i}", f"Paper {i}: efficient LLM inference", ("cs.LG" if i % 2 == 0 else "cs.CL", "cs.AI"),
               10.0 - i * 0.25, abstract, i % 2 == 0) for i in range(30)]
    publish(session_factory(engine), dt.date(2024, 11, 28), papers, dt.datetime(2024, 11, 28, 6, tzinfo=dt.timezone.utc))
    engine.dispose()


def raw_get(url: str, headers: dict) -> tuple[int, dict, bytes]:
    """(status, headers, body) exactly as sent: no decoding of the content-coding."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def accept(gz: bool) -> dict:
    return {"Accept-Encoding": "gzip" if gz else "identity"}


def wrk(url: str, seconds: int, connections: int, etag: str | None, gz: bool = False) -> float:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", url]
    if etag:
        cmd[1:1] = ["-H", f"If-None-Match: {etag}"]
    if gz:
        cmd[1:1] = ["-H", "Accept-Encoding: gzip"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not match or "Non-2xx" in out and not etag:
        raise SystemExit(f"wrk failed for {url}:\n{out}")
    return float(match.group(1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"{tool} is not installed (apt-get install {tool})")
    venv_bin = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    work.chmod(0o755)  # nginx workers run as an unprivileged user and must read www/
    procs: list[subprocess.Popen] = []
    try:
        db = f"sqlite:///{work / 'bench.db'}"
        fill_database(db)
        (work / "config.json").write_text(json.dumps({"categories": ["cs.LG", "cs.CL"], "keywords": ["LLM"]}))
        env = dict(os.environ, DATABASE_URL=db, ARXIV_BOT_CONFIG=str(work / "config.json"),
                   PYTHONPATH=str(ROOT))
        ports = {"arxiv-bot": free_port(), "minimal": free_port(), "nginx": free_port()}
        # gthread workers keep connections alive: sync workers close each one, and the reconnect
        # churn (ports in TIME_WAIT) then dominates and makes runs swing by several times.
        gunicorn = [str(venv_bin / "gunicorn"), "-w", str(args.workers), "-k", "gthread", "--threads", "4",
                    "--keep-alive", "30", "--log-level", "warning"]
        procs.append(subprocess.Popen([*gunicorn, "-b", f"127.0.0.1:{ports['arxiv-bot']}", "web.app:create_app()"],
                                      env=env, cwd=ROOT))
        base = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        wait_http(base["arxiv-bot"] + "/healthz")

        bodies, etags = {}, {}
        (work / "www").mkdir()
        (work / "tmp").mkdir()
        for path, _, gz in CASES:
            status, headers, body = raw_get(base["arxiv-bot"] + path, accept(gz))
            assert status == 200 and headers.get("Content-Encoding") == ("gzip" if gz else None), (path, status)
            key = path + (" gzip" if gz else "")
            bodies[key], etags[key] = body.hex(), headers["ETag"]
            name = ("feed-cs.LG.xml" if "category" in path else "feed.xml") + (".gz" if gz else "")
            (work / "www" / name).write_bytes(body)
        (work / "bodies.json").write_text(json.dumps(bodies))
        (work / "etags.json").write_text(json.dumps(etags))
        (work / "minimal_app.py").write_text(MINIMAL_APP % {"bodies": str(work / "bodies.json"),
                                                             "etags": str(work / "etags.json")})
        procs.append(subprocess.Popen([*gunicorn, "-b", f"127.0.0.1:{ports['minimal']}", "minimal_app:app"],
                                      env=dict(env, PYTHONPATH=str(work)), cwd=work))
        (work / "nginx.conf").write_text(NGINX_CONF % {"workers": args.workers, "dir": work, "port": ports["nginx"]})
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.append(subprocess.Popen([nginx, "-c", str(work / "nginx.conf"), "-p", str(work), "-g", "daemon off;"]))
        wait_http(base["minimal"] + "/feed.xml")
        wait_http(base["nginx"] + "/feed.xml")

        rows = []
        for path, conditional, gz in CASES:
            samples = {name: [] for name in ("arxiv-bot", "minimal", "nginx")}
            for _ in range(args.repeat):  # interleaved, so drift on the machine hits all three alike
                for name in samples:
                    etag = None
                    if conditional:
                        status, headers, body = raw_get(base[name] + path, accept(gz))
                        assert status == 200 and (headers.get("Content-Encoding") == "gzip") == gz, (name, path, gz)
                        etag = headers["ETag"]
                        assert raw_get(base[name] + path, {**accept(gz), "If-None-Match": etag})[0] == 304
                    samples[name].append(wrk(base[name] + path, args.seconds, args.connections, etag, gz))
            rates = {name: statistics.median(values) for name, values in samples.items()}
            rows.append((path + (" gzip" if gz else ""), 304 if conditional else 200, rates))

        print(f"\nGET /feed.xml, median of {args.repeat}, wrk -t2 -c{args.connections} -d{args.seconds}s, gunicorn -w {args.workers} -k gthread --threads 4, "
              f"nginx {args.workers} workers, {len(bytes.fromhex(bodies['/feed.xml']))} bytes "
              f"({len(bytes.fromhex(bodies['/feed.xml gzip']))} gzipped)\n")
        print(f"{'case':<39}{'arxiv-bot':>12}{'minimal':>12}{'nginx':>12}{'bot/minimal':>13}{'bot/nginx':>11}")
        worst = 10.0
        for path, status, r in rows:
            ratio = r["arxiv-bot"] / r["minimal"]
            worst = min(worst, ratio)
            print(f"{path + ' ' + str(status):<39}{r['arxiv-bot']:>12.0f}{r['minimal']:>12.0f}{r['nginx']:>12.0f}"
                  f"{ratio:>13.2f}{r['arxiv-bot'] / r['nginx']:>11.2f}")
        print(f"\nworst arxiv-bot/minimal ratio: {worst:.2f} (target >= 0.80: {'met' if worst >= 0.8 else 'NOT met'})")
        return 0
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
