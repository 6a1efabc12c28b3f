# Haven: `make run` opens the app, `make test` runs the whole suite.
# Both create their own virtual environment in .venv (Python 3.11+).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# llama-cpp-python compiles llama.cpp from source (about 6 minutes on 2 cores, cached by pip).
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test lint bench clean

# scripts/pip_install.py runs pip with its full output in $(VENV)/install.log and shows what
# is happening instead: the compile's progress, how long it takes, the log's end on failure.
INSTALL := $(BIN)/python scripts/pip_install.py --log $(VENV)/install.log

$(BIN)/python:
	@echo "Creating a virtual environment for Haven in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	@$(INSTALL) -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	@$(INSTALL) -e '.[test]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/haven

test: $(VENV)/.installed-test
	$(BIN)/ruff check app tests scripts
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check app tests scripts
	$(BIN)/lint-imports

bench: $(VENV)/.installed
	$(BIN)/haven bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
