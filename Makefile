# The two commands of the README: `make run` (install what is missing, launch the app) and
# `make test` (install what is missing, run the whole test suite). `make lock` regenerates the locks.
VENV ?= $(or $(STUDIO_VENV),.venv)
PY := $(VENV)/bin/python
ARGS ?=
# The locks are for CPython 3.11 on Linux x86_64 with glibc >= 2.35 (open3d's wheels need it; Debian 12 has 2.36).
# Pass uv flags with LOCK_ARGS, e.g. LOCK_ARGS="--upgrade-package trimesh" or LOCK_ARGS=--upgrade.
LOCK_ARGS ?=
LOCK := $(VENV)/bin/uv pip compile --quiet --python-version 3.11 --python-platform x86_64-manylinux_2_35 \
	--custom-compile-command "make lock" $(LOCK_ARGS)

.PHONY: run test setup setup-dev bench lint assets lock api-table

run: setup
	$(PY) app.py $(ARGS)

test: setup-dev
	$(PY) -m pytest $(ARGS)

setup:
	@STUDIO_VENV=$(VENV) scripts/setup.sh app

setup-dev:
	@STUDIO_VENV=$(VENV) scripts/setup.sh dev

bench: setup
	$(PY) -m bench $(ARGS)

lint: setup-dev
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .

assets: setup
	$(PY) -m assets.make_assets

# the README's API table, written from the app's own API description (tests/tabs/test_api.py checks it)
api-table: setup
	$(PY) scripts/api_table.py

# requirements*.in hold the wishes; requirements.txt and requirements-dev.txt are the locks compiled from them
# (uv keeps every version already in a lock unless the wishes or LOCK_ARGS ask otherwise). The dev lock is
# constrained by the app lock, so the packages they share have the same versions.
lock: $(VENV)/bin/uv
	$(LOCK) requirements.in -o requirements.txt
	$(LOCK) requirements-dev.in -c requirements.txt -o requirements-dev.txt

# uv alone (the version the dev lock pins), so that `make lock` needs no full install first
$(VENV)/bin/uv:
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $$(grep -m1 '^uv==' requirements-dev.txt || echo uv)
