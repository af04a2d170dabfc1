# Two commands from a fresh clone: `make demo` and `make test`. Each creates what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BENCH_VENV := .venv-bench

.PHONY: demo test lint typecheck pytest bench bench-quick bench-adapters mutation clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed  ## Run the example on the in-memory default (Redis if VALERIE_SESSION_STORE=redis).
	$(BIN)/python examples/session_store_usage.py

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy

pytest: $(BIN)/.installed
	$(BIN)/pytest

test: lint typecheck pytest  ## Ruff, mypy --strict and the whole pytest suite (starts its own redis-server).

$(BENCH_VENV)/.installed: pyproject.toml benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[redis,fast,pydantic,crypto]' -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed  ## The full benchmark against raw redis-py, Litestar and aiocache (~8 min).
	$(BENCH_VENV)/bin/python -m benchmarks

bench-quick: $(BENCH_VENV)/.installed  ## A smoke run of every scenario (~30 s); its figures are not citable.
	$(BENCH_VENV)/bin/python -m benchmarks --quick

# The peer that langgraph-checkpoint-redis would be is installed only to show whether it runs.
bench-adapters: $(BIN)/.installed  ## aiogram and LangGraph adapters against the frameworks' own storages (~3 min).
	$(BIN)/python -m pip install --quiet 'langgraph-checkpoint-redis>=0.5,<0.6'
	$(BIN)/python -m benchmarks.adapters

$(BIN)/.installed-mutation: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,mutation]'
	touch $@

# The modules mutated and the tests run are listed in pyproject.toml, [tool.mutmut].
mutation: $(BIN)/.installed-mutation  ## Mutation testing of the modules that hold the promises (~15 min on 2 cores); not part of `make test`.
	rm -rf mutants
	start=$$(date +%s); $(BIN)/mutmut run > mutants.log 2>&1 || { tail -50 mutants.log; exit 1; }; \
	  $(BIN)/python mutation/summary.py --seconds $$(( $$(date +%s) - start )) | tee mutation/results-$$(date -u +%F).txt

clean:
	rm -rf $(VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache .coverage mutants mutants.log
