# cityhub — two commands on a fresh machine: `make demo` (serve a demo city) and `make test` (the whole suite).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
SIZE ?= small
SEED ?= 42

.PHONY: demo test install interop serve migrate lint typecheck i18n bench clean browser services

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "cityhub needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.lock
	$(BIN)/pip install --disable-pip-version-check -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP) ## create .venv and install the pinned dependencies

INTEROP := .venv-interop
$(INTEROP)/.installed: requirements-interop.lock
	$(PYTHON) -m venv $(INTEROP)
	$(INTEROP)/bin/pip install --disable-pip-version-check -q -r requirements-interop.lock
	touch $@

interop: $(INTEROP)/.installed ## the separate virtualenv of the real NGSI-LD clients used by tests/interop

migrate: install
	$(BIN)/cityhub migrate

demo: install ## install, migrate, seed the demo city (SQLite under ./var/) and serve it on http://$(HOST):$(PORT)
	$(BIN)/cityhub migrate
	$(BIN)/cityhub demo --size $(SIZE) --seed $(SEED)
	$(BIN)/cityhub serve --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/cityhub serve --host $(HOST) --port $(PORT)

browser: ## Debian's Chromium and a CJK font for the browser tests (root on Debian; skipped when present)
	@test -x /usr/bin/chromium -a -d /usr/share/fonts/truetype/wqy || { apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei; }

services: ## start PostgreSQL and Mosquitto when they are installed but not running
	@bash scripts/ensure-services.sh

test: install interop browser services ## the whole suite: lint, types, import contracts, both databases, browser
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

i18n: install ## extract messages and update the catalogues
	$(BIN)/pybabel extract -F babel.cfg -o var/messages.pot --no-location --sort-output src
	$(BIN)/pybabel update -i var/messages.pot -d src/cityhub/locale --no-fuzzy-matching --ignore-obsolete

bench: install ## the benchmarks of docs/benchmarks.md (installs wrk with apt-get when missing)
	@command -v wrk >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }
	$(BIN)/python bench/auth_get.py
	$(BIN)/python bench/demo_ready.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache $(INTEROP)
