# The two commands a user needs: `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out
BENCH_ARGS ?=

.PHONY: demo test test-slow bench lint format assets clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

assets: $(STAMP)
	$(BIN)/privinfer assets fetch

demo: assets
	$(BIN)/privinfer demo --out $(DEMO_OUT)

test: assets
	$(BIN)/python -m pytest -q

test-slow: assets
	$(BIN)/python -m pytest -q -m slow

# privinfer against the alternatives, written to bench/results/ (BENCH_ARGS=--quick for a smoke run)
bench: assets
	$(BIN)/privinfer bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

format: $(STAMP)
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
