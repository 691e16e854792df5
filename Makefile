# Two commands for a new user: `make demo` and `make test` (README, docs/product.md §3).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The install stamp is rebuilt whenever the project's dependencies change.
STAMP      := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test lint clean browser

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

test: $(TEST_STAMP) browser
	$(BIN)/python -m pytest -q

# The map tests drive a real headless Chromium (tests/test_maps.py); the report tests print with
# WeasyPrint, which needs Pango and a font, and read the PDF with poppler-utils' pdftoppm and
# pdftotext (tests/test_report.py). Debian's packages, installed only when missing; sudo only
# when not already root.
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1 \
			|| ! command -v pdftoppm >/dev/null 2>&1 \
			|| ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then \
		if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
		echo "installing chromium, chromium-driver, Pango and poppler-utils (Debian packages) for the map and report tests"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			chromium chromium-driver libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
			poppler-utils; \
	fi

lint: $(TEST_STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/ruff check kpgeo tests benchmarks
	$(BIN)/mypy kpgeo

clean:
	rm -rf $(VENV) .pytest_cache
