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

# The sample's folders are its screened months, and the roster of a year before the first
# (INCOME_DROP compares with it), which the demo only ingests.
SAMPLE_YEAR_BEFORE := 2025-07
SAMPLE_PERIODS := $(filter-out $(SAMPLE_YEAR_BEFORE),$(sort $(notdir $(wildcard sample_data/20[0-9][0-9]-[0-9][0-9]))))
# One month is screened with Liling's 防贫保 schedule: its lists show the relief estimate.
DEMO_RELIEF_PERIOD := 2026-09
DEMO_RELIEF_PARAMS := parameters/examples/liling.yaml
DEMO   := demo

.PHONY: venv demo test test-fast check-xlsx check-report guide lint bench sample-data docs clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --locked --quiet
	@touch $@

venv: $(VENV)/.synced

demo: venv
	@rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "一年前的人口库 the roster of a year before: $(SAMPLE_YEAR_BEFORE)"
	@$(BIN)/screening ingest --demo --period $(SAMPLE_YEAR_BEFORE) --db $(DEMO)/screening.duckdb
	@for p in $(SAMPLE_PERIODS); do \
	  params=""; [ "$$p" = "$(DEMO_RELIEF_PERIOD)" ] && params="--params $(DEMO_RELIEF_PARAMS)"; \
	  $(BIN)/screening run --demo --period $$p --db $(DEMO)/screening.duckdb --out $(DEMO)/out $$params || exit 1; \
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

# Renders every sheet of the published workbooks with LibreOffice (installed from Debian's
# packages if missing; Carlito has Calibri's widths, as Excel lays the sheets out): the
# demo's lists, a 30,000-household county's largest township (generated and screened once
# into .check-xlsx/county-30000) and the widest list there is. Checks the type on every page
# is 9 points or more and each village starts a page; the PDFs stay in .check-xlsx/pdf/ to
# be looked at (pdftoppm -png).
check-xlsx: venv
	@command -v soffice >/dev/null && command -v pdftotext >/dev/null \
	  && fc-list | grep -q Carlito || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    libreoffice-calc-nogui poppler-utils fonts-noto-cjk fonts-crosextra-carlito >/dev/null; }
	CHECK_XLSX=1 $(BIN)/pytest -q -rs tests/pipeline/test_print.py

# Renders the demo's run-report.html in headless Chromium (installed from Debian's packages
# if missing) with the network cut off: the page must load nothing but itself and show the
# summary, three charts and the township table. Full-page screenshots go to demo/shots/ for
# a person to look at; make test runs the same check when Chromium is present.
check-report: venv
	@command -v chromium >/dev/null || { \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends \
	    chromium fonts-noto-cjk >/dev/null; }
	@ls $(DEMO)/out/*/run-report.html >/dev/null 2>&1 || $(MAKE) demo
	$(BIN)/python -m dev.check_report $(DEMO)/out --shots $(DEMO)/shots
	$(BIN)/pytest -q tests/pipeline/test_report_page.py -k chromium

# The Chinese user guide, docs/使用说明.md, as one printable page: docs/使用说明.html.
guide: venv
	$(BIN)/python -m dev.guide docs/使用说明.md docs/使用说明.html

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
	rm -rf $(VENV) $(TOOLS) $(DEMO) .pytest_cache .mypy_cache .ruff_cache .bench .check-xlsx

# The data dictionary page is generated from src/screening/db/dictionary.py (a test checks it);
# written only once it is made, so a failure leaves the page as it was.
docs: venv
	$(BIN)/python -m screening.db.dictionary > docs/data-dictionary.md.tmp
	mv docs/data-dictionary.md.tmp docs/data-dictionary.md
