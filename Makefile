# Centralino: `make run` starts the PBX, `make test` checks it. Everything else is a helper.

PYTHON3 ?= python3
VENV    := .venv
PY      := $(VENV)/bin/python
# Stamps record which requirements the venv was last installed from: pip runs only when they change.
RUN_STAMP := $(VENV)/.installed-requirements
DEV_STAMP := $(VENV)/.installed-requirements-dev

.PHONY: run test lint bench bench-compare soak clean setup setup-dev

run: setup
	scripts/install_runtime_tools.sh
	@# The SQLite file of the embedded default lives there; SQLite will not create the folder.
	mkdir -p "$${CENTRALINO_VAR:-var}"
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py seed_demo
	$(PY) manage.py serve

test: setup-dev
	scripts/install_runtime_tools.sh
	scripts/install_test_peers.sh
	scripts/ensure_services.sh
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy pbx/sip pbx/media pbx/engine pbx/events.py
	$(PY) -m pytest tests/unit tests/integration tests/e2e

lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy pbx/sip pbx/media pbx/engine pbx/events.py

bench: setup-dev
	$(PY) bench/run_all.py

# The engine of commit BASELINE and the working tree's, interleaved in one run (bench/compare.py);
# COMPARE_ARGS passes more options, e.g. COMPARE_ARGS="--rounds 2".
bench-compare: setup-dev
	$(if $(BASELINE),,$(error give the commit to compare with: make bench-compare BASELINE=<git ref>))
	$(PY) bench/compare.py --baseline $(BASELINE) $(COMPARE_ARGS)

# The distributed mode (PostgreSQL, Redis) under 70% of the call rate it holds, watched for
# leaks (bench/soak.py): 30 minutes of load, SOAK_MINUTES=3 for a quick look. Not in `make test`.
SOAK_MINUTES ?= 30
soak: setup-dev
	scripts/ensure_services.sh
	$(PY) bench/soak.py --minutes $(SOAK_MINUTES)

setup: $(RUN_STAMP)
setup-dev: $(DEV_STAMP)

$(PY):
	$(PYTHON3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(RUN_STAMP) $@

clean:
	rm -rf staticfiles .pytest_cache .ruff_cache .mypy_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
	@echo "Kept var/ (database, demo credentials, recordings) and $(VENV). Remove them by hand to start over."
