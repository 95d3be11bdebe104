# The two commands a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two installs, so that `make demo` then `make test` works, and the reverse:
# DEMO_STAMP: the package alone (its six dependencies: all the demo needs);
# STAMP: the package with the dev, bench and postgres extras (tests, linters, benchmarks).
DEMO_STAMP := $(VENV)/.demo-stamp
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck docs pytest bench bench-quick torture torture-postgres fuzz clean

# The venv, an up-to-date pip, and no install left under the distribution's old name
# ("eventlog", before it became agent-eventlog): both would own the `eventlog` script.
define make_venv
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip uninstall --quiet --yes eventlog 2>/dev/null || true
endef

$(DEMO_STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --quiet -e .
	touch $(DEMO_STAMP)

$(STAMP): pyproject.toml
	$(make_venv)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench,postgres]'
	touch $(STAMP) $(DEMO_STAMP)

# A real OpenTelemetry receiver for the exporter's tests (tests/integrations/test_otel.py):
# Arize Phoenix in a venv of its own, so that its dependencies never constrain ours.
PHOENIX_VENV := .venv-phoenix
PHOENIX_STAMP := $(PHOENIX_VENV)/.installed-stamp
PHOENIX_VERSION := 20.26.1

$(PHOENIX_STAMP):
	test -x $(PHOENIX_VENV)/bin/python || $(PYTHON) -m venv $(PHOENIX_VENV)
	$(PHOENIX_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PHOENIX_VENV)/bin/python -m pip install --quiet 'arize-phoenix==$(PHOENIX_VERSION)'
	touch $(PHOENIX_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/eventlog demo --db ./data

lint: $(STAMP)
	$(BIN)/ruff check eventlog projections tests benchmarks docs/*.py
	$(BIN)/ruff format --check eventlog projections tests benchmarks docs/*.py
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# two worker processes (pytest-xdist), a test file per worker at a time: the suite waits on
# fsyncs, subprocesses and servers more than it computes (8 min in one process, under 5 in two)
pytest: $(STAMP) $(PHOENIX_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# The documentation site into site/ (strict: a broken link, reference or docstring fails).
# The docs' code examples run in pytest (tests/docs/).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs bench-quick pytest

# The full suite (< 15 min on 2 cores): results in benchmarks/results/, table in benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --readme

# Every workload at tiny sizes (< 1 min), no timing assertion: keeps the benchmark code working.
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

# The long reliability campaign (~10 min on 2 cores): 1000 SIGKILLs of a durable writer, 200 in
# fast mode, 2 min of chaos (4 writers killed at random, 2 readers). Figures: tests/RELIABILITY.md.
# (make test runs the quick variant: tests/test_crash_campaign.py, 60 + 20 kills, 6 s of chaos.)
torture: $(STAMP)
	cd tests && ../$(BIN)/python -m reliability.campaign --kills 1000 --fast-kills 200 \
		--chaos-seconds 120 --json reliability/torture-results.json

# The same crash loops against the local PostgreSQL server (schemas torture_durable/_fast,
# dropped first): 200 durable + 50 fast kills.
PG_TORTURE_URL ?= postgresql://postgres@127.0.0.1:5432/test?schema=torture
torture-postgres: $(STAMP)
	for mode in durable fast; do psql "$(firstword $(subst ?, ,$(PG_TORTURE_URL)))" -qc \
		"DROP SCHEMA IF EXISTS torture_$$mode CASCADE" 2>/dev/null || true; done
	cd tests && ../$(BIN)/python -m reliability.campaign --kills 200 --fast-kills 50 \
		--chaos-seconds 0 --store '$(PG_TORTURE_URL)' --json reliability/torture-postgres.json

# Coverage-guided fuzzing (atheris, an optional extra) of the decoder and of JSONL import,
# FUZZ_SECONDS each (default 60). Crashing inputs are saved in .fuzz/ as crash-*. Without
# atheris, tests/test_fuzz.py (hypothesis, in make test) checks the same properties.
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[fuzz]'
	mkdir -p .fuzz && $(BIN)/python tests/fuzz/harness.py seed .fuzz/corpus
	cd .fuzz && for target in decoder import; do \
		../$(BIN)/python ../tests/fuzz/harness.py $$target -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 corpus/$$target || exit 1; \
	done

clean:
	rm -rf $(VENV) data site .pytest_cache .mypy_cache .ruff_cache .fuzz
