# The two commands: `make run` starts the stack, `make test` runs every test. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := -e libs/crm-kit[test] -e services/customer-api[test] -e services/complaint-api[test] -e services/recommend-api[test]
PROJECTS := $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: install run test lint bench

$(STAMP): constraints.txt $(PROJECTS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed (set PYTHON=...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt $(PACKAGES) -r requirements-dev.txt
	touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run_stack.py $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy libs/crm-kit/src/crm_kit $(wildcard services/*/src/*/*/service.py services/*/src/*/analytics/clv.py services/*/src/*/analytics/scoring.py)

# Every suite runs even when an earlier one fails; the exit status says whether all passed.
test: $(STAMP)
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	(cd libs/crm-kit && ../../$(BIN)/pytest) || status=1; \
	(cd services/customer-api && ../../$(BIN)/pytest) || status=1; \
	(cd services/complaint-api && ../../$(BIN)/pytest) || status=1; \
	(cd services/recommend-api && ../../$(BIN)/pytest) || status=1; \
	$(BIN)/pytest tests || status=1; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -r bench/requirements.txt
	$(BIN)/python bench/customer_api_bench.py
