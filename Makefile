# geoha: set-up, tests and the local reference topology.
# `make up` and `make test` install whatever is missing first (scripts/setup.sh).

SHELL := /bin/bash
VENV  := .venv/bin

# Paths checked by mypy --strict. app/api joins this list once it exists;
# only paths that exist are passed on.
TYPED = geoha app/api
TYPED_PATHS = $(wildcard $(TYPED))
LINTED_PATHS = $(wildcard geoha app tests bench)

.PHONY: setup up down test lint golden docs

setup:
	scripts/setup.sh

up: setup
	$(VENV)/geoha up $(GEOHA_ARGS)

down:
	$(VENV)/geoha down

test: setup
	TYPED="$(TYPED_PATHS)" scripts/test.sh

lint:
	$(VENV)/ruff check $(LINTED_PATHS)
	$(VENV)/mypy $(TYPED_PATHS)

# Regenerate the renderers' golden files after an intended change; review the diff.
golden:
	GEOHA_UPDATE_GOLDEN=1 $(VENV)/python -m pytest -q tests/unit/test_render_golden.py \
		tests/unit/test_cloud_terraform.py tests/unit/test_cloud_init.py

# Regenerate docs/TOPOLOGY.md from the spec models' docstrings, and docs/PROVIDER.md
# from the provider schema table (geoha/cloud/provider_schema.json).
docs:
	$(VENV)/python -m geoha.spec_doc > docs/TOPOLOGY.md
	$(VENV)/python -m geoha.cloud.provider_doc > docs/PROVIDER.md
