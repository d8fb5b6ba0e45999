# `make run` and `make test` create .venv on first use (Python 3.11; set PYTHON to use another).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: run test test-fast lint bench bench-rejax bench-gpu results constraints clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m purejaxppo.run --env CartPole-v1 $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 --dist loadfile tests $(ARGS)  # a file per worker: its fixtures run once

# Every module's unit tests, none of those marked slow (training runs, most commands): the loop while editing.
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks experiments

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,bench]"
	touch $@

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

bench-rejax: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/bench_rejax.py $(ARGS)

bench-gpu: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/gpu.py $(ARGS)

results: $(BIN)/.installed
	$(BIN)/python experiments/core_results.py $(ARGS)

constraints: $(BIN)/.installed
	$(BIN)/pip freeze --exclude-editable | grep -v '^#' > constraints.txt.new
	{ head -n 1 constraints.txt; cat constraints.txt.new; } > constraints.txt.tmp && rm constraints.txt.new
	mv constraints.txt.tmp constraints.txt

clean:
	rm -rf $(VENV) runs
