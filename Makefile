# The two commands of the README: `make run` (install what is missing, launch the app) and
# `make test` (install what is missing, run the whole test suite).
VENV ?= .venv
PY := $(VENV)/bin/python
ARGS ?=

.PHONY: run test setup setup-dev bench lint assets

run: setup
	$(PY) app.py $(ARGS)

test: setup-dev
	$(PY) -m pytest $(ARGS)

setup:
	@scripts/setup.sh app

setup-dev:
	@scripts/setup.sh dev

bench: setup
	$(PY) -m bench $(ARGS)

lint: setup-dev
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .

assets: setup
	$(PY) -m assets.make_assets
