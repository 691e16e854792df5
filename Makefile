# Two commands for a new user: `make demo` and `make test` (README, SPEC §3).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The install stamp is rebuilt whenever the project's dependencies change.
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP)

demo: $(STAMP)
	$(BIN)/kpgeo demo --out outputs/demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q

lint: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check kpgeo tests benchmarks
	$(BIN)/mypy kpgeo

clean:
	rm -rf $(VENV) .pytest_cache
