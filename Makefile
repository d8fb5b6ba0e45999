# `make run` and `make test` create .venv on first use, on the default stack: Python 3.11 with constraints.txt
# (jax 0.9.2), or where there is no 3.11, Python 3.12 with constraints-latest.txt. `make test-latest` tests the
# newest supported stack (Python 3.12, jax 0.11.2, every extra) in .venv-latest. Set PYTHON to choose another.
PYTHON ?= $(shell tools/find-python 3.11 3.12)
PYTHON_LATEST ?= $(shell tools/find-python 3.12)
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS ?= $(if $(filter 3.11,$(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')),constraints.txt,constraints-latest.txt)
LATEST := .venv-latest/bin
ARGS ?=
PYTEST := -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 tests $(ARGS)  # a file per worker: its fixtures run once; longest files first (tests/conftest.py)

.PHONY: run test test-fast test-latest test-portable lint bench bench-rejax bench-gpu results constraints constraints-latest clean

$(BIN)/.installed: pyproject.toml constraints.txt constraints-latest.txt
	@test -n "$(PYTHON)" || exit 1
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	touch $@

$(LATEST)/.installed: pyproject.toml constraints-latest.txt
	@test -n "$(PYTHON_LATEST)" || exit 1
	$(PYTHON_LATEST) -m venv .venv-latest
	$(LATEST)/pip install -q --upgrade pip
	$(LATEST)/pip install -q -c constraints-latest.txt -e ".[dev]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/python -m purejaxppo.run --env CartPole-v1 $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python $(PYTEST)

test-latest: $(LATEST)/.installed
	$(LATEST)/python $(PYTEST)

# The tests against stored data (reference runs, old checkpoints) and the hang guards, with XLA's CPU code generated
# for an older ISA: they must hold on any processor, not only on the one that stored the data.
test-portable: $(BIN)/.installed
	XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 $(BIN)/python -m pytest -q -n 2 --dist loadfile tests/test_reference_runs.py \
		tests/test_checkpoint_compat.py tests/test_hangs.py $(ARGS)

# Every module's unit tests, none of those marked slow (training runs, most commands): the loop while editing.
test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -n 2 -m "not slow" tests $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks experiments

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,bench]"
	touch $@

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

bench-rejax: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/bench_rejax.py $(ARGS)

bench-gpu: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/gpu.py $(ARGS)

# The results tables and figure, remade from the stored runs; to rerun envs (hours): experiments/reference_results.py --envs ...
results: $(BIN)/.installed
	$(BIN)/python experiments/reference_results.py --table-only $(ARGS)
	$(BIN)/python experiments/suite_results.py --table-only

constraints: $(BIN)/.installed
	{ head -n 1 $(CONSTRAINTS); $(BIN)/pip freeze --exclude-editable | grep -v '^#'; } > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)

constraints-latest: $(LATEST)/.installed
	{ head -n 1 constraints-latest.txt; $(LATEST)/pip freeze --exclude-editable | grep -v '^#'; } > latest.tmp
	mv latest.tmp constraints-latest.txt

clean:
	rm -rf $(VENV) .venv-latest runs
