# `make run` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck format data benchmark report bench-speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

run: $(VENV)/.installed
	$(BIN)/salutary run

test: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks scripts

typecheck: $(VENV)/.installed
	$(BIN)/mypy

format: $(VENV)/.installed
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

# Sources of the two image datasets that are not bundled (MNIST, Fashion-MNIST).
data: $(VENV)/.installed
	PYTHON=$(BIN)/python scripts/install_benchmark_data.sh

# The published comparison: nine datasets, paper and fair protocols, 10 seeds; resumable.
benchmark: data
	$(BIN)/salutary bench --seeds 10 --jobs 2 --store benchmarks/store
	$(MAKE) report

report: $(VENV)/.installed
	$(BIN)/salutary report --min-seeds 10 --store benchmarks/store --output benchmarks/results

bench-speed: $(VENV)/.installed
	$(BIN)/python benchmarks/bench_influence.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache salutary-results
