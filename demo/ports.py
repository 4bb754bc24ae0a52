"""`make demo`'s first step: are the two ports it needs free? (standard library only)

    python demo/ports.py PORT DEMO_ARXIV_PORT
    python demo/ports.py --wait PORT        (then: wait up to 15 s until something answers there)

Exit 0 when both can be bound on 127.0.0.1; else one line per busy port saying what it is for
and how to choose another, and exit 1, before anything is started.
"""
from __future__ import annotations

import socket
import sys
import time

USES = (("PORT", "the web page"), ("DEMO_ARXIV_PORT", "the local arXiv stand-in"))


def busy(port: int) -> str | None:
    """Why `port` cannot be used on 127.0.0.1, or None when it is free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def wait_for(port: int, seconds: float = 15.0) -> int:
    """0 once a connection to 127.0.0.1:`port` succeeds, 1 after `seconds` without one."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return 0
        except OSError:
            time.sleep(0.1)
    print(f"make demo: the arXiv stand-in did not start on port {port} (its log follows)", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--wait" and argv[1].isdigit():
        return wait_for(int(argv[1]))
    if len(argv) != 2 or not all(a.isdigit() and 0 < int(a) < 65536 for a in argv):
        print("usage: python demo/ports.py PORT DEMO_ARXIV_PORT (two port numbers)", file=sys.stderr)
        return 2
    ports = [int(a) for a in argv]
    if ports[0] == ports[1]:
        print(f"make demo: PORT and DEMO_ARXIV_PORT are both {ports[0]}: choose two different ports, "
              f"e.g. `make demo DEMO_ARXIV_PORT={ports[0] + 1}`", file=sys.stderr)
        return 1
    failed = False
    for (name, use), port in zip(USES, ports):
        reason = busy(port)
        if reason:
            failed = True
            free = next(p for p in range(port + 10, port + 1000) if p not in ports and busy(p) is None)
            print(f"make demo: port {port} ({name}, {use}) is busy ({reason}): choose another, "
                  f"e.g. `make demo {name}={free}`", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
