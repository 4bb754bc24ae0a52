"""The house rules of docs/ARCHITECTURE.md "Layout", checked on the source: no import cycles
(module-level or lazy), no service imports another service, shared/ names no service (not even
as a string), and Celery stays out of every module `arxiv-bot run` imports."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("shared", "services", "web", "arxiv_bot")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Our modules that `name` imports anywhere in its file (top level or inside functions)."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            prefix = ".".join(base[:len(base) - node.level + 1]) if node.level else ""
            mod = ".".join(p for p in (prefix, node.module or "") if p)
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def test_no_import_cycles():
    graph = _graph()
    # Package __init__ modules are implied parents, not edges worth reporting.
    graph = {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_services_do_not_import_each_other_and_shared_names_none():
    for name, targets in _graph().items():
        if name.startswith("services."):
            own = ".".join(name.split(".")[:2])
            others = {t for t in targets if t.startswith("services.") and not t.startswith(own)}
            assert not others, f"{name} imports another service: {others}"
        if name.startswith(("shared", "web")):
            assert not {t for t in targets if t.startswith("services")}, name
    for path in (ROOT / "shared").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"[\"']services\.(fetcher|scorer|summarizer|publisher|deliverer)", text), path


def test_celery_only_where_workers_need_it():
    allowed = {"shared.celery_app", "shared.celery_tasks"}
    for name, path in _modules().items():
        if name in allowed or name.endswith(".tasks"):
            continue
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        mods = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        mods += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        assert not any(m == "celery" or m.startswith("celery.") for m in mods), name
