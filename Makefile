# arxiv-bot: each target creates .venv when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DEMO_ARXIV_PORT ?= 8001
PORT ?= 8000

.PHONY: run test demo bench mutate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(VENV)/.installed $@

## One pass against live arXiv, outputs in ./output
run: $(VENV)/.installed
	$(BIN)/arxiv-bot run

## The whole test suite (needs Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432): in
## TEST_WORKERS parallel processes (pytest-xdist; most tests wait on processes and sockets, so more
## workers than cores pay off), then the tests marked `alone` by themselves.
TEST_WORKERS ?= 4
test: $(VENV)/.installed-test
	@status=0; \
	  $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not alone" || status=$$?; \
	  $(BIN)/python -m pytest -q -m alone || status=$$?; \
	  exit $$status

## The pipeline on a recorded announcement day served by the local arXiv stand-in, then the web page.
## Needs only the runtime install (the stand-in uses the standard library and lxml). Both ports are
## checked first: `make demo PORT=8010 DEMO_ARXIV_PORT=8011` picks others.
demo: $(VENV)/.installed
	@$(BIN)/python demo/ports.py $(PORT) $(DEMO_ARXIV_PORT)
	@mkdir -p data/demo
	@$(BIN)/python -m tests.standins.arxiv --port $(DEMO_ARXIV_PORT) > data/demo/arxiv-standin.log 2>&1 & \
	  pid=$$!; trap "kill $$pid 2>/dev/null" EXIT INT TERM; \
	  $(BIN)/python demo/ports.py --wait $(DEMO_ARXIV_PORT) || { cat data/demo/arxiv-standin.log; exit 1; }; \
	  export ARXIV_RSS_URL=http://127.0.0.1:$(DEMO_ARXIV_PORT)/rss ARXIV_API_URL=http://127.0.0.1:$(DEMO_ARXIV_PORT)/api/query \
	         ARXIV_BOT_CONFIG=demo/config.json DATABASE_URL=sqlite:///data/demo/arxiv-bot.db OUTPUT_DIR=output/demo \
	         LLM_API_KEY= DASHSCOPE_API_KEY=; \
	  $(BIN)/arxiv-bot run && \
	  echo "open http://127.0.0.1:$(PORT)/ (Ctrl-C stops)" && \
	  $(BIN)/arxiv-bot serve --port $(PORT)

## Mutation check (mutmut) of the modules that hold the promises, each against its targeted tests;
## not part of `make test`. MODULES="passes lease" runs some; survivors: docs/MUTATION.md.
MODULES ?=
mutate: $(VENV)/.installed-test
	$(BIN)/python -m tests.mutate $(MODULES)

## Benchmarks: print numbers (not part of the tests)
bench: $(VENV)/.installed-test
	@failed=""; for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || failed="$$failed $$b"; done; \
	  if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

clean:
	rm -rf $(VENV) data/demo output/demo .mutation
