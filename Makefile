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
# A file per worker: its fixtures run once; longest files first (tests/conftest.py). `make test` leaves three tiers
# to CI: learning quality and whole workflows (make test-learning), and what depends on the machine (make
# test-portable); make test-latest runs all but those two on the newest stack (docs/architecture.md).
PYTEST := -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=15 tests
# The suite's programs compiled with LLVM's cheapest code: half the compile time, the values unchanged to ~1e-8
# (what the tests compare); make test-portable and make test-learning compile as users do.
QUICK_FLAGS := --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true \
	--xla_cpu_parallel_codegen_split_count=1
QUICK := XLA_FLAGS="$$XLA_FLAGS $(QUICK_FLAGS) --xla_cpu_use_fusion_emitters=false"
# jax 0.11's XLA has no fusion-emitters flag (an unknown flag aborts the process)
QUICK_LATEST := XLA_FLAGS="$$XLA_FLAGS $(QUICK_FLAGS)"

.PHONY: run test test-fast test-learning test-latest test-portable test-busy-core lint bench bench-rejax bench-rejax-learning bench-gpu results constraints constraints-latest clean

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
	$(QUICK) $(BIN)/python $(PYTEST) -m "not learning and not end_to_end and not portable" $(ARGS)

# Returns that show learning (solved envs, memory against chance) and whole workflows as users run them (the
# notebook, a benchmark's smoke run, the toolkit on a suite id), compiled as users compile them.
test-learning: $(BIN)/.installed
	$(BIN)/python $(PYTEST) -m "learning or end_to_end" $(ARGS)

test-latest: $(LATEST)/.installed
	$(QUICK_LATEST) $(LATEST)/python $(PYTEST) -m "not learning and not end_to_end" $(ARGS)

# What depends on the machine (stored data, hang guards, injected faults, several devices and processes), with XLA's
# CPU code generated for an older ISA: it must hold on any processor, not only on the one that stored the data.
test-portable: $(BIN)/.installed
	XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 $(BIN)/python $(PYTEST) -m portable $(ARGS)

# The same tests as a machine several times slower runs them: one core, shared with a busy loop, older ISA. Their
# hang limits are multiples of a calibration run timed on the machine as loaded (tests/conftest.py), so they pass.
test-busy-core: $(BIN)/.installed
	taskset -c 0 sh -c 'while :; do :; done' & trap "kill $$!" EXIT INT TERM; \
	XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 taskset -c 0 $(BIN)/python -m pytest -q -m portable tests $(ARGS)

# Every module's unit tests, none of those marked slow (training runs, most commands): the loop while editing.
test-fast: $(BIN)/.installed
	$(QUICK) $(BIN)/python -m pytest -q -n 2 -m "not slow" tests $(ARGS)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests benchmarks experiments

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,bench]"
	touch $@

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench_train.py $(ARGS)

bench-rejax: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/bench_rejax.py $(ARGS)

# Hours of CPU at its full budgets: give ARGS="--out DIR" outside the tree, and it continues where it stopped.
bench-rejax-learning: $(BIN)/.bench-installed
	$(BIN)/python benchmarks/bench_rejax_learning.py $(ARGS)

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
