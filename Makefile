# Everything a fresh clone needs: `make demo`, `make test`. The demo screens the bundled
# synthetic county (--demo), into demo/, and every output says it is a synthetic sample. Only Python 3.11+ and the
# package registry are assumed; uv is bootstrapped into .tools/ and installs from uv.lock.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
UV_VERSION := 0.13.9

export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Prefect stays offline and quiet: no telemetry, a private home, patience on 2 cores.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 90

SAMPLE_PERIODS := $(sort $(notdir $(wildcard sample_data/20[0-9][0-9]-[0-9][0-9])))
DEMO   := demo

.PHONY: venv demo test test-fast check-xlsx lint bench sample-data docs clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	@touch $@

venv: $(VENV)/.synced

demo: venv
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@for p in $(SAMPLE_PERIODS); do \
	  $(BIN)/screening run --demo --period $$p --db $(DEMO)/screening.duckdb --out $(DEMO)/out || exit 1; \
	  for f in sample_data/feedback/$$p/*; do \
	    [ -f "$$f" ] || continue; \
	    echo "乡镇核实反馈 township feedback: $$f"; \
	    $(BIN)/screening feedback import "$$f" --period $$p --db $(DEMO)/screening.duckdb || exit 1; \
	  done; \
	done
	@$(BIN)/screening summary --db $(DEMO)/screening.duckdb --out $(DEMO)/out
	@echo "screening 命令在 the command is .venv/bin/screening (or: source .venv/bin/activate), e.g."
	@echo "  .venv/bin/screening explain <户编号> --period 2026-09 --db $(DEMO)/screening.duckdb"

# tests/conftest.py gives Prefect a private temporary PREFECT_HOME and removes it after.
test: venv
	$(BIN)/pytest -q

test-fast: venv
	$(BIN)/pytest -q -m "not slow and not flow"

# Renders a published xlsx with LibreOffice (installed from Debian's packages if missing)
# and checks a page comes out: the officer's view, beyond what openpyxl can tell.
check-xlsx: venv
	@command -v soffice >/dev/null && command -v pdftoppm >/dev/null || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    libreoffice-calc-nogui poppler-utils fonts-noto-cjk >/dev/null; }
	$(BIN)/pytest -q tests/pipeline/test_publish.py -k libreoffice

lint: venv
	$(BIN)/ruff check src tests dev
	$(BIN)/ruff format --check src tests dev
	$(BIN)/mypy

bench: venv
	$(BIN)/python -m dev.bench $(or $(SIZE),small)

# Regenerates the committed sample inbox (deterministic for the seed).
sample-data: venv
	rm -rf sample_data/20*-* sample_data/feedback sample_data/manifest.*
	$(BIN)/python -m dev.sample --out sample_data --households 500 --periods 2026-07,2026-08,2026-09 --seed 20260701

clean:
	rm -rf $(VENV) $(TOOLS) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .bench

# The data dictionary page is generated from src/screening/db/dictionary.py (a test checks it).
docs: venv
	$(BIN)/python -c "from screening import contract; from screening.db import dictionary; print(dictionary.render_markdown(contract.load()))" > docs/data-dictionary.md
