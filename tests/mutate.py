"""`make mutate`: mutation testing (mutmut) of the modules that hold the promises in
docs/ARCHITECTURE.md "Decisions", each against a fast, targeted selection of tests.

Every module runs in its own scratch copy of the project (.mutation/<name>/, git-ignored), so the
working tree is never mutated and runs of different modules never share mutmut's state. Tests
are selected per module: those that exercise it in the test process itself (mutmut records
which tests reach which function there; tests that only reach a module through `arxiv-bot`
subprocesses cannot kill its mutants and would only cost time).

A surviving mutant must be killed by a new test or explained in one line in docs/MUTATION.md,
which names it (`shared.passes.x_begin__mutmut_3`). The run prints per module the counts and
every survivor that docs/MUTATION.md does not explain, with its diff, and exits 1 if there is one.

    python -m tests.mutate                 # every module
    python -m tests.mutate passes lease    # some of them (names below)
    MUTATE_CHILDREN=4 python -m tests.mutate
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutation"
MUTMUT = Path(sys.executable).parent / "mutmut"
DOC = ROOT / "docs" / "MUTATION.md"

# name: (module file, tests that exercise it in-process[, the only functions to mutate])
MODULES: dict[str, tuple] = {
    "passes": ("shared/passes.py", ["tests/test_shared_passes.py", "tests/test_cli_embedded.py",
                                    "tests/test_summarizer_claim.py", "tests/test_publisher_pages.py",
                                    "tests/test_delivery_outbox.py"]),
    "lifecycle": ("shared/lifecycle.py", ["tests/test_shared_passes.py", "tests/test_sweep_liveness.py",
                                          "tests/test_cli_embedded.py", "tests/test_delivery_outbox.py"]),
    "liveness": ("shared/liveness.py", ["tests/test_shared_liveness.py", "tests/test_sweep_liveness.py",
                                        "tests/test_summarizer_claim.py"]),
    "lease": ("services/summarizer/lease.py", ["tests/test_summarizer_claim.py", "tests/test_cli_embedded.py"]),
    "ratelimit": ("services/summarizer/ratelimit.py", ["tests/test_summarizer_ratelimit.py"]),
    "arxiv_pacing": ("shared/arxiv_pacing.py", ["tests/test_fetcher_client.py"]),
    # The announce-type rules only (shared/arxiv.py since the readers; the feed parsers have their
    # own tests on every recorded feed).
    "effective_types": ("shared/arxiv.py", ["tests/test_shared_arxiv.py", "tests/test_fetcher_parse.py",
                                            "tests/test_fetcher_client.py", "tests/test_fetcher_watermarks.py"],
                        ["in_set", "relevant", "effective_type"]),
    "sanitize": ("shared/render/sanitize.py", ["tests/test_render_sanitize.py", "tests/test_render_outputs.py",
                                               "tests/test_render_tex.py"]),
    "watches": ("shared/watches.py", ["tests/test_shared_passes.py", "tests/test_sweep_liveness.py",
                                      "tests/test_delivery_outbox.py"]),
    "queued": ("shared/queued.py", ["tests/test_shared_queued.py", "tests/test_sweep_liveness.py"]),
}
# Tests that start OS processes of their own: mutmut's runner reaps its children with wait() and
# stops on a pid it did not start (KeyError in mutmut's isolation runner), so they stay out of the
# selection; the same promise is checked in-process by the module's other tests.
DESELECT: dict[str, list[str]] = {
    "ratelimit": ["tests/test_summarizer_ratelimit.py::test_two_processes_share_the_redis_limit_without_429",
                  "tests/test_summarizer_ratelimit.py::test_token_limit_is_shared_across_processes"],
    "lifecycle": ["tests/test_delivery_outbox.py::test_deliver_retry_failed_and_status_through_the_cli"],
    "passes": ["tests/test_delivery_outbox.py::test_deliver_retry_failed_and_status_through_the_cli"],
    "watches": ["tests/test_shared_passes.py::test_simultaneous_starts_in_processes_open_one_pass",
                "tests/test_delivery_outbox.py::test_deliver_retry_failed_and_status_through_the_cli"],
}
SKIP = {".git", ".venv", ".mutation", "mutants", "data", "output", "bench"}  # at the top level
SKIP_ANYWHERE = {"__pycache__", ".pytest_cache"}
STATUS = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


def scratch(name: str, module: str, tests: list[str], only: list[str] | None = None) -> Path:
    """A fresh copy of the project with a [tool.mutmut] section for this module. With `only`, the
    copy's other top-level functions carry mutmut's "no mutate block" pragma (the copy only)."""
    where = WORK / name
    if where.exists():
        shutil.rmtree(where)
    shutil.copytree(ROOT, where, ignore=lambda d, names: [n for n in names if n in SKIP_ANYWHERE
                                                          or (n in SKIP and Path(d) == ROOT)])
    if only:
        source = where / module
        lines = source.read_text().splitlines(keepends=True)
        for i, line in enumerate(lines):
            m = re.match(r"(def|class) (\w+)\b.*:\s*$", line)
            if m and m.group(2) not in only:
                lines[i] = line.rstrip("\n") + "  # pragma: no mutate block\n"
        source.write_text("".join(lines))
    tests = [t for t in tests if (ROOT / t).exists()]
    deselect = [a for node in DESELECT.get(name, []) for a in ("--deselect", node)]
    project = (ROOT / "pyproject.toml").read_text()
    project += (
        "\n[tool.mutmut]\n"
        'source_paths = ["shared", "services", "web", "arxiv_bot"]\n'
        f"only_mutate = [{module!r}]\n"
        f"pytest_add_cli_args_test_selection = {tests!r}\n"
        f"pytest_add_cli_args = {['-p', 'no:cacheprovider', '-q', *deselect]!r}\n"
        'also_copy = ["config.json", "demo", "docs"]\n'
    ).replace("'", '"')
    (where / "pyproject.toml").write_text(project)
    return where


def explained() -> set[str]:
    return set(re.findall(r"`([\w.]+__mutmut_\d+)`", DOC.read_text())) if DOC.exists() else set()


def run(name: str, children: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    module, tests, *only = MODULES[name]
    where = scratch(name, module, tests, only[0] if only else None)
    started = time.monotonic()
    with open(where / "mutmut.log", "wb") as log:
        subprocess.run([str(MUTMUT), "run", "--max-children", str(children)], cwd=where, stdout=log,
                       stderr=subprocess.STDOUT, check=False)
    out = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=where, capture_output=True, text=True).stdout
    counts: dict[str, int] = {}
    survivors = []
    for line in out.splitlines():
        m = STATUS.match(line)
        if not m:
            continue
        status = m.group(2).strip()
        counts[status] = counts.get(status, 0) + 1
        if status in ("survived", "no tests"):
            diff = subprocess.run([str(MUTMUT), "show", m.group(1)], cwd=where, capture_output=True,
                                  text=True).stdout
            survivors.append((m.group(1), diff))
    counts["seconds"] = int(time.monotonic() - started)
    (where / "survivors.txt").write_text("".join(f"{n}\n{d}\n" for n, d in survivors))
    return counts, survivors


def main(argv: list[str]) -> int:
    names = argv or list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; choose from {', '.join(MODULES)}", file=sys.stderr)
        return 2
    children = int(os.environ.get("MUTATE_CHILDREN", "2"))
    known = explained()
    unexplained = 0
    for name in names:
        counts, survivors = run(name, children)
        open_ones = [(n, d) for n, d in survivors if n not in known]
        unexplained += len(open_ones)
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()) if k != "seconds")
        print(f"{name:13} {MODULES[name][0]:34} {summary or 'no mutants'} ({counts['seconds']} s); "
              f"{len(survivors)} surviving, {len(open_ones)} not explained in docs/MUTATION.md", flush=True)
        for n, d in open_ones:  # the changed lines only
            changed = [line for line in d.splitlines()[3:] if line[:1] in "+-" and line[:3] not in ("+++", "---")]
            print(f"  {n}\n" + "".join(f"    {line}\n" for line in changed), end="", flush=True)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
