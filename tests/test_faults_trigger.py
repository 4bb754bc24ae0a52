"""One pass at a time (issue 8 req 2): two `arxiv-bot trigger` processes started at the same
moment, plus beat's start_pass message sent at the same moment, make one pass, no duplicate rows
and one publication. On SQLite and PostgreSQL."""
from __future__ import annotations

import subprocess
import sys

from sqlalchemy import func, select

from shared.models import Pass, Publication
from tests.faults import LLM_KEY, check_invariants, engine, make_stack, wait_pass
from tests.procs import BIN
from tests.standins.arxiv import ArxivStandin
from tests.standins.llm import LLMStandin

# beat's daily entry, sent the way beat sends it (task name, fetch queue, trigger=beat)
SEND_START_PASS = """
from shared import names
from shared.celery_app import create_app
from shared.config import load_config
from shared.settings import Settings
import os
config = load_config(os.environ["ARXIV_BOT_CONFIG"])
app = create_app(Settings.from_env(config, os.environ["ARXIV_BOT_CONFIG"]), config)
app.send_task(names.START_PASS, kwargs={"trigger": "beat"}, queue=names.FETCH_QUEUE)
"""


def test_simultaneous_triggers_make_one_pass(tmp_path, db_url, redis_url):
    with ArxivStandin() as arxiv, LLMStandin(api_key=LLM_KEY) as llm:
        stack = make_stack(tmp_path, db_url, arxiv, llm, broker_url=redis_url)
        try:
            stack.start_all()
            # The first feed request is held 9 s (under the 10 s fetch timeout): the pass stays active
            # while every trigger arrives, however far apart a loaded machine starts them (the race
            # of truly simultaneous starts is tests/test_shared_passes.py's).
            arxiv.fail_next("slow:9")
            procs = [subprocess.Popen([str(BIN), "trigger"], env=stack.env, cwd=stack.tmp, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
            procs.append(subprocess.Popen([sys.executable, "-c", SEND_START_PASS], env=stack.env, cwd=stack.tmp,
                                          text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
            outs = [p.communicate(timeout=120) for p in procs]
            assert [p.returncode for p in procs] == [0, 0, 0], outs
            said = sorted(out.strip() for out, _ in outs[:2])
            assert said == ["pass 1 already running: resumed", "pass 1 started"] or \
                said == ["pass 1 already running: resumed"] * 2, said  # beat may have opened it first
            wait_pass(db_url, timeout=180)
        finally:
            stack.stop()
        result = check_invariants(db_url, stack.output_dir, llm)
        eng = engine(db_url)
        try:
            with eng.connect() as c:
                assert c.scalar(select(func.count()).select_from(Pass)) == 1
                assert c.scalar(select(func.count()).select_from(Publication)) == 1
        finally:
            eng.dispose()
    assert result["states"]["done"] == 15 and sum(result["calls"].values()) == 15
    published = [line for w in ("publisher-3",) for line in
                 (stack.tmp / f"worker-{w}.log").read_text().splitlines() if ": published " in line]
    assert len(published) == 1, published  # the files were written once
