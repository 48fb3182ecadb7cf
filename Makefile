# Two commands for a new user: `make run` (the back office with demo data) and `make test`.
SHELL := /bin/bash
PYTHON_FOR_VENV := $(shell scripts/find-python)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv system-deps run test test-fast lint typecheck migrations-check check-deploy messages demo-data prod-smoke bench-import bench-claims bench-desk bench-payouts bench-api bench-health clean

help:
	@echo "make run         - set up, load demo data once, run web + Celery worker + beat (Ctrl-C stops all);"
	@echo "                   on a local PostgreSQL + Redis in var/ when the machine has them, else SQLite"
	@echo "make test        - full suite on a throwaway PostgreSQL + Redis it starts and removes"
	@echo "make lint        - ruff + mypy + makemigrations --check"
	@echo "make prod-smoke  - production settings + gunicorn + worker + beat, signed in over HTTP (docs/operations.md)"
	@echo "make bench-import N=1000000 - import benchmark (see docs/benchmarks.md)"
	@echo "make bench-claims N=1000000 - login-outage-2024 preview/run benchmark (see docs/benchmarks.md)"
	@echo "make bench-desk N=1000000 - support desk page latencies (see docs/benchmarks.md)"
	@echo "make bench-payouts N=1000000 - payout creation and notices (see docs/benchmarks.md)"
	@echo "make bench-api N=1000000 - charges over the API (gunicorn, batches of 10,000) vs import_records"
	@echo "make bench-health N=1000000 - /readyz and /metrics latencies (see docs/benchmarks.md)"

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON_FOR_VENV)" || { echo "No Python >= 3.12 found (see README)"; exit 1; }
	@if [ -x $(PY) ] && ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then rm -rf $(VENV); fi
	@[ -x $(PY) ] || $(PYTHON_FOR_VENV) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	scripts/ensure-test-deps

messages: $(STAMP)
	$(PY) manage.py compilemessages --ignore=.venv -v 0

run: export DJANGO_DEBUG := $(or $(DJANGO_DEBUG),true)
run: $(STAMP) messages
	mkdir -p var/celery/broker var/celery/processed var/celery/control
	scripts/with-local-services scripts/run-back-office

test: $(STAMP) system-deps messages
	scripts/with-services $(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(PY) manage.py makemigrations --check --dry-run

check-deploy: $(STAMP)
	DJANGO_SETTINGS_MODULE=support_portal.settings.production \
	DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
	DJANGO_ALLOWED_HOSTS=backoffice.example.jp DATABASE_URL=postgres://u:p@db.invalid/portal \
	DJANGO_ADMIN_URL=ops-7f3a/ METRICS_TOKEN=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(32))') PAYOUT_ENCRYPTION_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	$(PY) manage.py check --deploy --fail-level WARNING

# The production stack without containers: production settings, gunicorn + Celery worker + beat on a
# throwaway PostgreSQL and Redis, 2FA sign-in over HTTP, ticket list, program preview, a payout batch.
prod-smoke: $(STAMP) system-deps messages
	scripts/with-services scripts/prod-smoke

bench-import: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/import_records.py --customers $${N:-1000000}

bench-claims: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/claims_login_outage.py --customers $${N:-1000000}

bench-desk: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/support_desk.py --customers $${N:-1000000}

bench-payouts: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/payout_creation.py --claims $${N:-1000000}

bench-api: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/api_ingest.py --charges $${N:-1000000}
bench-health: $(STAMP)
	PG_SETTINGS="-c shared_buffers=2GB -c max_wal_size=8GB -c maintenance_work_mem=1GB -c work_mem=64MB" \
	  scripts/with-services $(PY) bench/health_endpoints.py --customers $${N:-1000000}

clean:
	rm -rf $(VENV) var db.sqlite3
