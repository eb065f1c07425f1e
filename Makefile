# The two commands a user needs: `make demo` and `make test`. Both set up everything first.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out
BENCH_ARGS ?=
# A real Triton for `make test-slow`: the tritonserver in the nvidia-pytriton wheel (python backend
# only). The wheel asks for numpy < 2, which the project's pins forbid, so it goes in without its
# dependencies (only its server binary is used), and its python models run in an environment of
# their own with numpy 1.26 (its backend stub reads numpy 1.x arrays).
PYTRITON   ?= nvidia-pytriton==0.7.0
TRITON_ENV ?= .venv-triton
TRITON_ENV_PACKAGES ?= numpy==1.26.4 onnxruntime==1.32.0

.PHONY: demo test test-slow triton-env bench lint format assets clean

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

test-slow: assets triton-env
	TRITON_PYTHON_ENV=$(abspath $(TRITON_ENV)) $(BIN)/python -m pytest -q -m slow

triton-env: $(TRITON_ENV)/.installed

$(TRITON_ENV)/.installed: $(STAMP)
	$(BIN)/pip install --quiet --no-deps $(PYTRITON)
	test -x $(TRITON_ENV)/bin/python || $(PYTHON) -m venv $(TRITON_ENV)
	$(TRITON_ENV)/bin/pip install --quiet $(TRITON_ENV_PACKAGES)
	touch $@

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
	rm -rf $(VENV) $(TRITON_ENV) $(DEMO_OUT) .pytest_cache
