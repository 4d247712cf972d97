# geoha: set-up, tests and the local reference topology.
# `make up` and `make test` install whatever is missing first (scripts/setup.sh).

SHELL := /bin/bash
VENV  := .venv/bin

# Paths checked by mypy --strict. app/api joins this list once it exists;
# only paths that exist are passed on.
TYPED = geoha
TYPED_PATHS = $(wildcard $(TYPED))
LINTED_PATHS = $(wildcard geoha tests bench)

.PHONY: setup up down test lint

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
