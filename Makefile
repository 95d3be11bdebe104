# The two commands a fresh clone needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/eventlog demo --db ./data

lint: $(STAMP)
	$(BIN)/ruff check eventlog projections tests benchmarks
	$(BIN)/ruff format --check eventlog projections tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck bench-quick pytest

# The full suite (< 15 min on 2 cores): results in benchmarks/results/, table in benchmarks/README.md.
bench: $(STAMP)
	$(BIN)/python -m benchmarks --readme

# Every workload at tiny sizes (< 1 min), no timing assertion: keeps the benchmark code working.
bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
